// Ann on a phone: her pages fit the screen without scrolling sideways, and the buy modal fits
// too, closes with Esc and keeps keyboard focus inside while it is open.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertNoSidewaysScroll, baseUrl, cards, launchBrowser, openContract, payWith, phonePage, screenWidth, screenshot, signIn,
  users,
} from '../lib.mjs';

let browser;
let page;
before(async () => {
  browser = await launchBrowser();
  page = await phonePage(browser);
  await signIn(page, users.ann.email, users.ann.password);
});
after(() => browser?.close());

/** Opens the buy modal and waits until Stripe's card form is in it (its widest state). */
async function openBuyModal() {
  await page.getByRole('button', { name: 'Purchase revisions' }).click();
  const dialog = page.getByRole('dialog', { name: 'Buy revisions' });
  await dialog.getByLabel('Card number').waitFor({ timeout: 10_000 });
  return dialog;
}

test('"My contracts" and a contract page fit a phone', async () => {
  await page.goto(`${baseUrl}/contracts`);
  await page.getByTestId('available').first().waitFor();
  await screenshot(page, 'phone-contracts');
  await assertNoSidewaysScroll(page, '/contracts');

  await openContract(page, 'Daily Planet');
  await page.getByRole('heading', { name: 'Request a revision' }).waitFor();
  await screenshot(page, 'phone-contract');
  await assertNoSidewaysScroll(page, 'the contract page');
  assert.deepEqual(page.consoleErrors, []);
});

test('the buy modal fits the phone\'s width, and Esc closes it', async () => {
  await openContract(page, 'Daily Planet');
  const dialog = await openBuyModal();
  await screenshot(page, 'phone-buy-modal');
  assert.equal(await dialog.getAttribute('aria-modal'), 'true');
  const box = await dialog.boundingBox();
  const width = await screenWidth(page);
  assert.ok(box.x >= 0 && box.x + box.width <= width, `the dialog spans ${box.x}..${box.x + box.width} of a ${width}px screen`);
  // Nothing inside it (the card form, the Pay button) is cut off on the right.
  const overflow = await dialog.evaluate((d) => d.scrollWidth - d.clientWidth);
  assert.ok(overflow <= 0, `the dialog's content is ${overflow}px wider than the dialog`);

  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.getByRole('dialog').count(), 0);
});

test('Tab keeps keyboard focus inside the open buy modal', async () => {
  await openContract(page, 'Daily Planet');
  const dialog = await openBuyModal();
  const inside = () => page.evaluate(() => {
    const d = document.querySelector('[role=dialog][aria-modal=true]');
    return { inside: !!d && d.contains(document.activeElement), on: document.activeElement?.outerHTML.slice(0, 80) };
  });
  // Opening it moved focus in.
  assert.equal((await inside()).inside, true, `focus on open: ${(await inside()).on}`);
  const visited = new Set();
  for (let i = 1; i <= 15; i++) {
    await page.keyboard.press('Tab');
    const where = await inside();
    assert.equal(where.inside, true, `after Tab #${i} focus left the dialog, to ${where.on}`);
    visited.add(where.on);
  }
  // It cycled through the dialog's controls rather than sticking on one.
  assert.ok(visited.size >= 2, `Tab visited ${[...visited].join(' | ')}`);
  // Shift+Tab from the first control wraps backwards and stays inside too.
  for (let i = 1; i <= 5; i++) {
    await page.keyboard.press('Shift+Tab');
    assert.equal((await inside()).inside, true, `after Shift+Tab #${i}`);
  }
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
});

/** Every element `locator` finds lies within the phone's screen, left to right. */
async function allOnScreen(page, locator, what) {
  const width = await screenWidth(page);
  const boxes = await locator.evaluateAll((els) => els.map((e) => {
    const r = e.getBoundingClientRect();
    return { left: r.left + window.scrollX, right: r.right + window.scrollX, text: e.textContent.trim() };
  }));
  assert.ok(boxes.length > 0, `no ${what} on the page`);
  for (const b of boxes) {
    assert.ok(b.left >= 0 && b.right <= width + 0.5, `${what} "${b.text}" spans ${b.left}..${b.right} of a ${width}px screen`);
  }
}

test('at 390 px the figures each page is for are on screen without scrolling sideways', async () => {
  // A purchase of Ann's own, so this test needs no other to have run.
  await openContract(page, 'Gotham Gazette');
  await payWith(page, cards.visa);
  const pending = page.getByRole('dialog', { name: 'Payment' });
  await pending.getByTestId('payment-succeeded').waitFor();
  await pending.getByRole('button', { name: 'Done' }).click();
  await page.reload();
  await allOnScreen(page, page.locator('table.purchases td.status'), 'a purchase status');
  await assertNoSidewaysScroll(page, 'the contract page with purchases');
  const contractId = new URL(page.url()).pathname.split('/').pop();

  const admin = await phonePage(browser);
  await signIn(admin, users.admin.email, users.admin.password);
  await admin.goto(`${baseUrl}/admin`);
  await allOnScreen(admin, admin.getByTestId('available'), 'an Available figure');
  await assertNoSidewaysScroll(admin, '/admin');
  await screenshot(admin, 'phone-admin-contracts');

  await admin.goto(`${baseUrl}/admin/contracts/${contractId}`);
  await allOnScreen(admin, admin.locator('[data-testid=credit] td.amount'), 'a credited amount');
  await allOnScreen(admin, admin.getByTestId('attempt-status'), 'a payment attempt status');
  await allOnScreen(admin, admin.locator('table.events td.status'), 'an event status');
  // The credited pack's refund form, every control and its button, lies on screen too, and its
  // table does not scroll sideways inside its wrapper (which the page-wide check cannot see).
  const refundForm = admin.getByTestId('refund-form');
  await allOnScreen(admin, refundForm, 'a refund form');
  await allOnScreen(admin, refundForm.locator('select, input:not([type=hidden]), button'), 'a refund form control');
  const button = refundForm.first().getByRole('button', { name: 'Refund…' });
  await button.scrollIntoViewIfNeeded();
  const box = await button.boundingBox();
  const { height } = admin.viewportSize();
  const width = await screenWidth(admin);
  assert.ok(box && box.x >= 0 && box.y >= 0 && box.x + box.width <= width && box.y + box.height <= height,
    `the refund button spans ${JSON.stringify(box)} of a ${width}x${height} screen`);
  const ledger = admin.locator('.table-wrap').filter({ has: refundForm });
  const overflow = await ledger.evaluate((wrap) => wrap.scrollWidth - wrap.clientWidth);
  assert.ok(overflow <= 0, `the ledger's table is ${overflow}px wider than its wrapper: it scrolls sideways`);
  await assertNoSidewaysScroll(admin, 'the admin contract page');
  await screenshot(admin, 'phone-admin-contract');
});
