// The per-buyer budget of Stripe calls, as a buyer meets it: a burst of purchases started in a
// row (a script, or a very impatient person) is refused, and the "Buy revisions" dialog says
// what happened and when to try again instead of waiting for a card form that never comes.
// A file of its own: it spends Ann's budget, which no other test should have to wait for.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { baseUrl, launchBrowser, newPage, openContract, screenshot, signIn, users } from '../lib.mjs';

let browser;
let page;
before(async () => {
  browser = await launchBrowser();
  page = await newPage(browser);
  await signIn(page, users.ann.email, users.ann.password);
});
after(() => browser?.close());

/**
 * Starts purchases the way a looping script would, posting to the server function `url` the
 * dialog itself calls, until one is refused; returns that answer.
 */
async function spendTheBudget(url, contractId) {
  for (let i = 0; i < 100; i++) {
    const answer = await page.request.post(url, {
      form: { contract_id: contractId },
      headers: { origin: baseUrl },
    });
    if (answer.status() === 429) return answer;
    assert.equal(answer.status(), 200, await answer.text());
  }
  assert.fail('100 purchases in a row were all started: nothing limits them');
}

test('too many purchases in a row: the dialog says so and when to try again', async () => {
  await openContract(page, 'Daily Planet');
  const contractId = new URL(page.url()).pathname.split('/').pop();
  const dialog = page.getByRole('dialog', { name: 'Buy revisions' });
  const refusal = dialog.getByRole('alert');
  const cardForm = dialog.getByLabel('Card number');
  // One purchase by hand first, to learn the server function's address (leptos suffixes it).
  const started = page.waitForRequest((r) => r.url().includes('/api/buy_pack'));
  await page.getByRole('button', { name: 'Purchase revisions' }).click();
  const url = (await started).url();
  await cardForm.waitFor();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  // The budget refills one call a second, so one may come back between the last refused start
  // and the click; then the card form shows, and the dialog is closed and the budget spent again.
  let shown = 'card form';
  for (let attempt = 0; attempt < 5 && shown === 'card form'; attempt++) {
    const refused = await spendTheBudget(url, contractId);
    assert.match(refused.headers()['retry-after'] ?? '', /^\d+$/, 'a refusal says when to come back');
    await page.getByRole('button', { name: 'Purchase revisions' }).click();
    await refusal.or(cardForm).waitFor();
    if (await refusal.isVisible()) {
      shown = 'refusal';
    } else {
      await dialog.getByRole('button', { name: 'Close' }).click();
      await dialog.waitFor({ state: 'detached' });
    }
  }
  assert.equal(shown, 'refusal', 'every click came after the budget refilled');
  assert.match(
    await refusal.textContent(),
    /Too many purchases were tried in a short time\. Please try again in \d+ seconds?\./,
  );
  assert.equal(await cardForm.count(), 0, 'no card form for a refused purchase');
  await screenshot(page, 'purchase-too-many');
});
