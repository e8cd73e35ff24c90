// The admin's Events page in Chromium: Ann buys a pack, the admin finds its events by her email
// and a type prefix, then by the PaymentIntent id typed as payload text, and downloads the
// search as CSV and NDJSON, which hold the rows the page shows, in its order. Runs alone: it
// buys its own pack and only ever looks for what that pack left.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import {
  baseUrl, cards, launchBrowser, newPage, openContract, payWith, screenshot, signIn, users, waitUntil,
} from '../lib.mjs';

let browser;
let admin;

before(async () => {
  browser = await launchBrowser();
  admin = await newPage(browser);
  await signIn(admin, users.admin.email, users.admin.password);
});
after(() => browser?.close());

/** The result rows: event id, type and PaymentIntent of each, in page order. */
function rowsOf(page) {
  return page.locator('[data-testid="event-results"] tbody tr').evaluateAll((trs) => trs.map((tr) => {
    const cells = tr.querySelectorAll('td');
    return { id: cells[1].innerText.trim(), type: cells[2].innerText.trim(), pi: cells[4].innerText.trim() };
  }));
}

async function download(page, name) {
  const [file] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('p.exports').getByRole('link', { name, exact: true }).click(),
  ]);
  return readFileSync(await file.path(), 'utf8');
}

test('an admin searches events by email, type and payload text, and exports the search', async () => {
  // Ann's newest payment before this test buys one (other tests may have bought before).
  await admin.goto(`${baseUrl}/admin`);
  await admin.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Events', exact: true }).click();
  await admin.waitForURL(/\/admin\/events/);
  const form = admin.getByRole('search', { name: 'Search events' });
  await form.getByLabel('Advertiser email').fill(users.ann.email);
  await form.getByLabel('Type starts with').fill('payment_intent.succeeded');
  await form.getByRole('button', { name: 'Search' }).click();
  await admin.waitForURL((u) => u.searchParams.get('type') === 'payment_intent.succeeded');
  const newestBefore = (await rowsOf(admin))[0]?.id;

  const ann = await newPage(browser);
  await signIn(ann, users.ann.email, users.ann.password);
  await openContract(ann, 'Daily Planet');
  await payWith(ann, cards.visa);
  await ann.getByRole('dialog', { name: 'Payment' }).getByTestId('payment-succeeded').waitFor();

  // The webhook may land a moment after the payment shows as done: search again until this
  // pack's event heads the list.
  let rows = [];
  await waitUntil('the new payment to head the search results', async () => {
    await admin.reload();
    rows = await rowsOf(admin);
    return rows.length > 0 && rows[0].id !== newestBefore;
  });
  assert.ok(rows.length > 0 && rows[0].id !== newestBefore, 'the new payment is listed first');
  assert.ok(rows.every((r) => r.type.startsWith('payment_intent.succeeded')), JSON.stringify(rows));
  const pi = rows[0].pi;
  assert.ok(pi.startsWith('pi_'), `a PaymentIntent id: ${pi}`);
  await screenshot(admin, 'events-search');

  // The exports hold the page's rows in its order (a page shows 50; the file every match).
  const csv = (await download(admin, 'CSV')).split('\r\n').filter((l) => l);
  assert.equal(csv[0], 'received_at,event_id,type,mode,status,payment_intent,amount,currency,contract_id,note,source');
  const csvIds = csv.slice(1).map((l) => l.split(',')[1]);
  assert.deepEqual(csvIds.slice(0, rows.length), rows.map((r) => r.id));
  const ndjson = (await download(admin, 'NDJSON')).split('\n').filter((l) => l).map((l) => JSON.parse(l));
  assert.deepEqual(ndjson.map((h) => h.event_id), csvIds);
  assert.ok(ndjson.every((h) => h.event_type === 'payment_intent.succeeded' && h.payment_intent));

  // The PaymentIntent id typed as payload text finds this payment's events and nothing else.
  await admin.getByRole('link', { name: 'Clear' }).click();
  await admin.waitForURL((u) => u.pathname === '/admin/events' && !u.search);
  await form.getByLabel('Text in payload').fill(pi);
  await form.getByRole('button', { name: 'Search' }).click();
  await admin.waitForURL((u) => u.searchParams.get('q') === pi);
  const found = await rowsOf(admin);
  assert.ok(found.some((r) => r.id === rows[0].id), JSON.stringify(found));
  assert.ok(found.every((r) => r.pi === pi), JSON.stringify(found));
});

test('a mistyped filter is named on the page and the form keeps what was typed', async () => {
  await admin.goto(`${baseUrl}/admin/events?status=processed&min=ten&currency=usd`);
  await admin.getByText('min: `ten` is not an amount').waitFor();
  const form = admin.getByRole('search', { name: 'Search events' });
  assert.equal(await form.getByLabel('Amount from').inputValue(), 'ten');
  assert.equal(await form.getByLabel('Status').inputValue(), 'processed');
});
