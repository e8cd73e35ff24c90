// The admin's Revenue page in Chromium: a pack Ann buys shows in today's bar and row, every bar
// of the server-drawn chart has the same net as its row in the table, the chart is an image with
// an accessible name, and the CSV download carries the same figures. Runs alone: it buys its
// own pack first, and compares the page with itself rather than with fixed totals (other test
// files may have bought or refunded on the same server).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { baseUrl, cards, launchBrowser, newPage, openContract, payWith, screenshot, signIn, users } from '../lib.mjs';

let browser;
let admin;

/** Today's net (minor units) in the table, 0 if today has no row yet. */
async function todaysNet(page) {
  const today = new Date().toISOString().slice(0, 10);
  const cell = page.locator(`table.revenue tr[data-period="${today}"] td.net`).first();
  return (await cell.count()) ? Number(await cell.getAttribute('data-net')) : 0;
}

before(async () => {
  browser = await launchBrowser();
  admin = await newPage(browser);
  await signIn(admin, users.admin.email, users.admin.password);
});
after(() => browser?.close());

test('a pack bought today shows in the chart and the table, which agree bar for bar', async () => {
  await admin.goto(`${baseUrl}/admin`);
  await admin.getByRole('link', { name: 'Revenue' }).click();
  await admin.waitForURL(/\/admin\/revenue/);
  const before = await todaysNet(admin);

  const ann = await newPage(browser);
  await signIn(ann, users.ann.email, users.ann.password);
  await openContract(ann, 'Daily Planet');
  await payWith(ann, cards.visa);
  await ann.getByRole('dialog', { name: 'Payment' }).getByTestId('payment-succeeded').waitFor();

  await admin.reload();
  assert.equal(await todaysNet(admin), before + 15000);
  const chart = admin.getByRole('img', { name: /Net revenue in USD by day/ });
  await chart.waitFor();
  const bars = await chart.locator('rect.bar').evaluateAll((rs) =>
    rs.map((r) => ({ period: r.dataset.period, net: Number(r.dataset.net), box: r.getBoundingClientRect().height })));
  const rows = await admin.locator('table.revenue tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({ period: tr.dataset.period, net: Number(tr.querySelector('td.net').dataset.net) })));
  assert.equal(bars.length, 30);
  assert.deepEqual(bars.map(({ period, net }) => ({ period, net })), rows);
  const today = bars.at(-1);
  assert.ok(today.net >= 15000 && today.box > 0, 'today has a visible bar');
  const total = Number(await admin.locator('table.revenue tfoot [data-total-net]').last().getAttribute('data-total-net'));
  assert.equal(total, rows.reduce((sum, r) => sum + r.net, 0), 'the total is the sum of the rows');
  await screenshot(admin, 'revenue');

  const [download] = await Promise.all([
    admin.waitForEvent('download'),
    admin.getByRole('link', { name: 'Download as CSV' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8').split('\r\n');
  assert.equal(csv[0], 'period,currency,source,gross,refunds,disputes_lost,net,payments');
  const csvNet = Object.fromEntries(csv.filter((l) => /^\d{4}-\d\d-\d\d,usd,all,/.test(l))
    .map((l) => { const c = l.split(','); return [c[0], Math.round(Number(c[6]) * 100)]; }));
  assert.deepEqual(csvNet, Object.fromEntries(rows.map((r) => [r.period, r.net])));
});
