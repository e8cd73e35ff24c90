// Buying revision packs in the browser, against the built-in Stripe simulator: every card
// outcome, duplicated webhooks, and late webhooks (the return page's own confirmation).
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import {
  availableOnPage, baseUrl, cards, launchBrowser, newPage, openContract, payWith, screenshot, signIn, simulator, users,
  waitUntil,
} from '../lib.mjs';

let browser;
let page;
before(async () => {
  browser = await launchBrowser();
  page = await newPage(browser);
  await signIn(page, users.ann.email, users.ann.password);
});
afterEach(() => simulator.setFaults({}));
after(() => browser?.close());

/** How many deliveries of `type` about one PaymentIntent the app answered with a 2xx. */
async function answered(paymentIntentId, type) {
  const ids = new Set(await simulator.eventIdsAbout(paymentIntentId));
  const all = await simulator.deliveries();
  return all.filter((d) => ids.has(d.event_id) && d.event_type === type && d.status >= 200 && d.status < 300).length;
}

/** Waits for `count` answered deliveries (failing after 30 s); returns how many there are then. */
async function waitForAnswered(paymentIntentId, type, count) {
  await waitUntil(`${count} answered deliveries of ${type}`, async () => (await answered(paymentIntentId, type)) >= count);
  return answered(paymentIntentId, type);
}

test('a 4242 card: pending modal, then +2 on the contract', async () => {
  await openContract(page, 'Daily Planet');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, cards.visa);
  assert.equal(dialog.price, '2 revisions for $150.00', 'the price is shown before paying');
  await dialog.waitFor({ state: 'detached' });
  const pending = page.getByRole('dialog', { name: 'Payment' });
  await pending.getByTestId('payment-succeeded').waitFor();
  assert.equal(Number(await pending.getByTestId('new-available').textContent()), before + 2);
  await screenshot(page, 'purchase-succeeded');
  await pending.getByRole('button', { name: 'Done' }).click();
  await page.waitForFunction((n) => document.querySelector('[data-testid=available]')?.textContent === String(n), before + 2);
  assert.equal(await availableOnPage(page), before + 2);
  // The purchase is in the history, credited.
  await page.getByRole('cell', { name: 'credited' }).first().waitFor();
  assert.deepEqual(page.consoleErrors, []);
});

test('3-D Secure completed: +2, within the page\'s Content-Security-Policy', async () => {
  await openContract(page, 'Daily Planet');
  const policy = (await page.request.get(page.url())).headers()['content-security-policy'] ?? '';
  assert.match(policy, /script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
  assert.match(policy, /frame-ancestors 'none'/);
  const before = await availableOnPage(page);
  await payWith(page, cards.threeDSecure);
  const challenge = page.getByRole('dialog', { name: '3D Secure 2 test page' });
  await challenge.waitFor();
  await screenshot(page, 'three-d-secure-challenge');
  await challenge.getByRole('button', { name: 'Complete authentication' }).click();
  await page.getByTestId('new-available').waitFor();
  assert.equal(Number(await page.getByTestId('new-available').textContent()), before + 2);
  assert.deepEqual(page.cspViolations, [], 'Stripe.js, the islands and 3-D Secure ran within the policy');
});

test('3-D Secure failed: a clear message, nothing credited, and the form stays to try again', async () => {
  await openContract(page, 'Daily Planet');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, cards.threeDSecure);
  await page.getByRole('button', { name: 'Fail authentication' }).click();
  const alert = dialog.getByRole('alert').filter({ hasText: 'unable to authenticate' });
  await alert.waitFor();
  await screenshot(page, 'three-d-secure-failed');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await page.reload();
  assert.equal(await availableOnPage(page), before);
});

test('declined cards show Stripe\'s message and credit nothing', async () => {
  await openContract(page, 'Daily Planet');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, cards.declined);
  const declined = dialog.getByText('Your card was declined.');
  await declined.first().waitFor();
  assert.equal(await declined.count(), 1, 'the decline is said once');
  await screenshot(page, 'card-declined');
  // Same form, another card: insufficient funds has its own message.
  await dialog.getByLabel('Card number').fill(cards.insufficientFunds);
  await dialog.getByRole('button', { name: /^Pay / }).click();
  await dialog.getByRole('alert').filter({ hasText: 'insufficient funds' }).first().waitFor();
  assert.equal(await dialog.getByText(/insufficient funds/).count(), 1, 'and so is the next one');
  // An incomplete card never reaches Stripe.
  await dialog.getByLabel('Card number').fill('4242 4242');
  await dialog.getByRole('button', { name: /^Pay / }).click();
  const incomplete = dialog.getByText('Your card number is incomplete.');
  await incomplete.first().waitFor();
  assert.equal(await incomplete.count(), 1, 'a field problem shows beside the field only');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  await page.reload();
  assert.equal(await availableOnPage(page), before);
});

test('every event delivered 5 times at once still credits +2 exactly', async () => {
  await simulator.setFaults({ copies: 5 });
  await openContract(page, 'Gotham Gazette');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, cards.visa);
  await page.getByTestId('new-available').waitFor();
  // All five copies of payment_intent.succeeded answered, then look again.
  assert.equal(await waitForAnswered(dialog.paymentIntentId, 'payment_intent.succeeded', 5), 5);
  await page.reload();
  assert.equal(await availableOnPage(page), before + 2);
});

test('webhooks 30 s late: the return page confirms with Stripe and the credit shows at once', async () => {
  await simulator.setFaults({ delay_ms: 30_000 });
  await openContract(page, 'Gotham Gazette');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, cards.visa);
  // Before the webhook: the server asked Stripe itself. The deadline is the webhook's 30 s
  // delay with room to spare, and the delivery log shows none had been answered by then.
  await page.getByTestId('new-available').waitFor({ timeout: 20_000 });
  assert.equal(await answered(dialog.paymentIntentId, 'payment_intent.succeeded'), 0, 'credited before any webhook');
  assert.equal(Number(await page.getByTestId('new-available').textContent()), before + 2);
  const { rs } = await page.evaluate(() => {
    const [c] = performance.getEntriesByName('rs-confirmed');
    const [b] = performance.getEntriesByName('rs-balance-shown');
    return { rs: b.startTime - c.startTime };
  });
  assert.ok(rs < 5_000, `balance shown ${rs} ms after the confirm`);
  await screenshot(page, 'credited-before-webhook');
});

test('a payment Stripe keeps processing: "Processing", then "safe, no need to pay again", then +2', async () => {
  // Well past the modal's 20 s patience (it polls at about 18 s and 23 s), so every state
  // shows in turn.
  await simulator.setFaults({ processing_ms: 30_000 });
  page.consoleErrors.length = 0; // earlier tests' declined cards logged their 402s
  await openContract(page, 'Daily Planet');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, cards.visa);
  await dialog.waitFor({ state: 'detached' });
  const pending = page.getByRole('dialog', { name: 'Payment' });
  await pending.getByText('Processing your payment…').waitFor();
  await screenshot(page, 'payment-processing');
  await pending.getByTestId('payment-slow').waitFor({ timeout: 30_000 });
  assert.match(await pending.getByTestId('payment-slow').textContent(), /no need to pay again/);
  assert.equal(await pending.getByRole('button').filter({ hasText: /pay|try again|purchase/i }).count(), 0,
    'no second purchase is offered while the first is still processing');
  await screenshot(page, 'payment-still-processing');
  await pending.getByTestId('payment-succeeded').waitFor({ timeout: 20_000 });
  assert.equal(Number(await pending.getByTestId('new-available').textContent()), before + 2);
  assert.deepEqual(page.consoleErrors, []);
});

/**
 * Starts a purchase the way the page does, pays it as a redirect-based method would, outside
 * the page, with `paymentMethod` (expecting the confirm to answer `confirmStatus`), and comes
 * back to return_url with Stripe's query parameters and `redirectStatus`.
 */
async function payAwayAndReturn(paymentMethod, confirmStatus, redirectStatus) {
  const started = page.waitForResponse((r) => r.url().includes('/api/buy_pack'));
  await page.getByRole('button', { name: 'Purchase revisions' }).click();
  const body = await (await started).json();
  await page.keyboard.press('Escape');
  const confirm = await fetch(`${baseUrl}/stripe-sim/v1/payment_intents/${body.payment_intent_id}/confirm`, {
    method: 'POST',
    headers: { authorization: 'Bearer pk_test_simulator', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_secret: body.client_secret, payment_method: paymentMethod }),
  });
  assert.equal(confirm.status, confirmStatus);
  const back = new URL(page.url());
  back.search = new URLSearchParams({
    payment_intent: body.payment_intent_id,
    payment_intent_client_secret: body.client_secret,
    redirect_status: redirectStatus,
  }).toString();
  await page.goto(back.toString());
}

test('coming back from a redirect (return_url with payment_intent) confirms once and cleans the address', async () => {
  await openContract(page, 'Daily Planet');
  const before = await availableOnPage(page);
  await payAwayAndReturn('pm_card_visa', 200, 'succeeded');
  await page.getByTestId('new-available').waitFor();
  assert.equal(Number(await page.getByTestId('new-available').textContent()), before + 2);
  assert.equal(new URL(page.url()).search, '', 'the query string is cleaned');
  await page.reload();
  assert.equal(await page.getByRole('dialog', { name: 'Payment' }).count(), 0, 'a reload re-triggers nothing');
  assert.equal(await availableOnPage(page), before + 2);
});

test('coming back from a failed redirect: the reason, nothing credited, and "Try again" opens a new purchase', async () => {
  await openContract(page, 'Daily Planet');
  const before = await availableOnPage(page);
  // The bank refused it away from the page (a declined card stands in for that).
  await payAwayAndReturn('pm_card_chargeDeclined', 402, 'failed');
  const pending = page.getByRole('dialog', { name: 'Payment' });
  await pending.getByRole('alert').waitFor();
  assert.match(await pending.getByRole('alert').textContent(), /did not go through and nothing was charged/);
  assert.equal(await availableOnPage(page), before, 'nothing credited');
  await screenshot(page, 'redirect-failed');
  await pending.getByRole('button', { name: 'Try again' }).click();
  await page.getByRole('dialog', { name: 'Buy revisions' }).getByLabel('Card number').waitFor({ timeout: 10_000 });
  await page.keyboard.press('Escape');
  assert.equal(await availableOnPage(page), before);
});

test('the Stripe.js stand-in: retrievePaymentIntent, and confirmPayment with redirect "always" returns to return_url', async () => {
  // The app itself confirms with redirect: 'if_required'; a redirect-based method takes the
  // other road. Drive the stand-in's redirect directly, as Stripe.js would for such a method,
  // and check the page picks the payment up from the address it comes back to.
  await openContract(page, 'Gotham Gazette');
  const before = await availableOnPage(page);
  const started = page.waitForResponse((r) => r.url().includes('/api/buy_pack'));
  await page.getByRole('button', { name: 'Purchase revisions' }).click();
  const body = await (await started).json();
  const dialog = page.getByRole('dialog', { name: 'Buy revisions' });
  await dialog.getByLabel('Card number').waitFor();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  const retrieved = await page.evaluate(async (cs) => {
    const stripe = Stripe('pk_test_simulator');
    const { paymentIntent, error } = await stripe.retrievePaymentIntent(cs);
    return error ?? { id: paymentIntent.id, status: paymentIntent.status, amount: paymentIntent.amount };
  }, body.client_secret);
  assert.deepEqual(retrieved, { id: body.payment_intent_id, status: 'requires_payment_method', amount: 15_000 });

  await page.evaluate((cs) => {
    const host = document.createElement('div');
    host.id = 'redirect-test';
    document.body.appendChild(host);
    const stripe = Stripe('pk_test_simulator');
    const elements = stripe.elements({ clientSecret: cs });
    elements.create('payment').mount('#redirect-test');
    host.querySelector('input[name=cardnumber]').value = '4242424242424242';
    host.querySelector('input[name=exp-date]').value = '12/34';
    host.querySelector('input[name=cvc]').value = '123';
    // Navigates away: this promise never settles, as with Stripe.js.
    stripe.confirmPayment({ elements, confirmParams: { return_url: location.href }, redirect: 'always' });
  }, body.client_secret);
  // Keep the address as it arrived: the pending modal removes the query string as soon as the
  // page hydrates, which can be before page.url() is read.
  let back;
  await page.waitForURL((url) => {
    if (url.searchParams.get('redirect_status') !== 'succeeded') return false;
    back = url;
    return true;
  });
  assert.equal(back.searchParams.get('payment_intent'), body.payment_intent_id);
  assert.equal(back.searchParams.get('payment_intent_client_secret'), body.client_secret);
  await page.getByTestId('new-available').waitFor();
  assert.equal(Number(await page.getByTestId('new-available').textContent()), before + 2);
  await page.waitForURL((url) => url.search === '');
});

test('the dispute card pays (+2), then Stripe reports a dispute, which is recorded and changes nothing', async () => {
  await openContract(page, 'Gotham Gazette');
  const before = await availableOnPage(page);
  const dialog = await payWith(page, '4000 0000 0000 0259');
  await page.getByTestId('new-available').waitFor();
  assert.equal(Number(await page.getByTestId('new-available').textContent()), before + 2);
  assert.equal(await waitForAnswered(dialog.paymentIntentId, 'charge.dispute.created', 1), 1, 'the dispute was delivered and acknowledged');
  await page.reload();
  assert.equal(await availableOnPage(page), before + 2);
});
