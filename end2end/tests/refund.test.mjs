// An admin refunds a pack from the browser, partly then fully, through the confirmation step;
// the ledger goes down by whole revisions. An advertiser cannot refund (tried first, while the
// pack is still refundable, so a refund that went through would show). Runs alone: it buys its
// own pack first.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  availableOnPage, baseUrl, cards, launchBrowser, newPage, openContract, payWith, screenshot, signIn, users,
} from '../lib.mjs';

let browser;
let ann;
let admin;
let contractPath;
let paymentIntentId;

before(async () => {
  browser = await launchBrowser();
  ann = await newPage(browser);
  await signIn(ann, users.ann.email, users.ann.password);
  // A pack of Ann's to refund, bought as she would.
  await openContract(ann, 'Gotham Gazette');
  contractPath = new URL(ann.url()).pathname;
  const dialog = await payWith(ann, cards.visa);
  paymentIntentId = dialog.paymentIntentId;
  const pending = ann.getByRole('dialog', { name: 'Payment' });
  await pending.getByTestId('payment-succeeded').waitFor();
  await pending.getByRole('button', { name: 'Done' }).click();
  admin = await newPage(browser);
  await signIn(admin, users.admin.email, users.admin.password);
});
after(() => browser?.close());

const adminContract = () => `${baseUrl}/admin${contractPath}`;

async function adminAvailable() {
  return Number(await admin.getByTestId('available').textContent());
}

/** Fills the refund form on the pack's row and confirms; returns the confirmation's text. */
async function refundFromAdmin(revisions) {
  await admin.goto(adminContract());
  const row = admin.locator(`[data-testid=credit][data-payment="${paymentIntentId}"]`);
  await row.getByLabel('How much to refund').selectOption(revisions);
  await row.getByLabel('Reason').selectOption('requested_by_customer');
  await row.getByLabel('Note').fill('artwork was late');
  await row.getByRole('button', { name: 'Refund…' }).click();
  await admin.waitForURL(/\/refund\?/);
  const quote = await admin.getByTestId('refund-quote').textContent();
  await screenshot(admin, `refund-confirm-${revisions}`);
  await admin.getByRole('button', { name: /^Refund \$/ }).click();
  await admin.waitForURL((u) => u.pathname === `/admin${contractPath}`);
  return quote;
}

test('an advertiser cannot refund', async () => {
  await admin.goto(adminContract());
  const before = await adminAvailable();
  // Ann's session posts the form an admin would.
  const status = await ann.evaluate(async ({ path, pi }) => {
    const body = new URLSearchParams({ payment: pi, revisions: 'all', reason: 'duplicate', attempt: 'abc123' });
    const res = await fetch(`/admin${path}/refund`, { method: 'POST', body });
    return res.status;
  }, { path: contractPath, pi: paymentIntentId });
  assert.equal(status, 403);
  const page = await ann.goto(`${baseUrl}/admin${contractPath}/refund?payment=${paymentIntentId}&revisions=all`);
  assert.equal(page.status(), 403);
  assert.equal(await ann.getByTestId('refund-quote').count(), 0);
  await admin.reload();
  assert.equal(await adminAvailable(), before, 'nothing was refunded');
});

test('an admin refunds one revision, then the rest of the pack', async () => {
  await admin.goto(adminContract());
  const before = await adminAvailable();
  const quote = await refundFromAdmin('1');
  assert.match(quote, /Refund \$75\.00 of payment/);
  assert.match(quote, /revokes 1 revision;/);
  assert.match(await admin.getByTestId('flash').textContent(), /Refunded \$75\.00 .*1 revision revoked/);
  assert.equal(await adminAvailable(), before - 1);
  await admin.getByTestId('adjustments').getByRole('cell', { name: '-1' }).first().waitFor();
  assert.match(await admin.getByTestId('refunds').textContent(), /admin@demo\.test: artwork was late/);

  const rest = await refundFromAdmin('all');
  assert.match(rest, /Refund \$75\.00 of payment/, 'what remains of the pack');
  assert.equal(await adminAvailable(), before - 2);
  const row = admin.locator(`[data-testid=credit][data-payment="${paymentIntentId}"]`);
  assert.match(await row.textContent(), /fully revoked/);
  await screenshot(admin, 'refund-done');
  // The advertiser's page says it too.
  await ann.goto(`${baseUrl}${contractPath}`);
  assert.equal(Number(await ann.getByTestId('revoked').textContent()), 2);
  assert.deepEqual(admin.consoleErrors, []);
});
