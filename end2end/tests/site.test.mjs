// The site as a visitor first sees it: the home page renders, loads its scripts cleanly, and
// fits a phone's screen.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertNoSidewaysScroll, baseUrl, launchBrowser, newPage, phonePage, screenshot, users } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

test('the home page shows the simulator banner and the pack terms, and loads its scripts', async () => {
  const page = await newPage(browser);
  const pkgProblems = [];
  page.on('requestfailed', (req) => {
    if (new URL(req.url()).pathname.startsWith('/pkg/')) pkgProblems.push(`${req.url()}: ${req.failure()?.errorText}`);
  });
  page.on('response', (res) => {
    if (new URL(res.url()).pathname.startsWith('/pkg/') && !res.ok()) pkgProblems.push(`${res.url()}: ${res.status()}`);
  });
  const js = page.waitForResponse((res) => new URL(res.url()).pathname === '/pkg/revision-store.js');
  const wasm = page.waitForResponse((res) => new URL(res.url()).pathname === '/pkg/revision-store.wasm');

  await page.goto(`${baseUrl}/`);
  await page.getByText('Simulated payments — no money moves').waitFor();
  await page.getByText('A revision pack adds 2 for $150.00').waitFor();
  assert.equal((await js).status(), 200);
  assert.equal((await wasm).status(), 200);
  // Quiet network: the wasm has been fetched and run, so any error it logs has been logged.
  await page.waitForLoadState('networkidle');

  assert.deepEqual(pkgProblems, []);
  assert.deepEqual(page.consoleErrors, []);
  await screenshot(page, 'home');
});

test('the home page fits a phone without scrolling sideways', async () => {
  const page = await phonePage(browser);
  await page.goto(`${baseUrl}/`);
  await page.getByText('A revision pack adds 2 for $150.00').waitFor();
  await assertNoSidewaysScroll(page, 'the home page');
  await screenshot(page, 'home-phone');
});

test('without JavaScript the pages still work: sign in, read a contract, request a revision', async () => {
  // Server-rendered HTML and plain forms: everything before the wasm loads (or if it never does).
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('Email').fill(users.ann.email);
  await page.getByLabel('Password').fill(users.ann.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${baseUrl}/contracts`);
  await page.getByRole('link', { name: /Daily Planet/ }).click();
  await page.waitForURL(/\/contracts\/\d+$/);
  const available = Number(await page.getByTestId('available').first().textContent());
  await page.getByText(/included \+ \d+ purchased − \d+ revoked − \d+ requested = \d+ available/).first().waitFor();
  // Ann's Daily Planet is only ever topped up by the other tests, so a credit is left.
  assert.ok(available > 0, `Daily Planet has ${available} available`);
  // Paying cannot work without JavaScript; the page says so instead of a silent button.
  await page.getByTestId('needs-js').getByText('Paying for revisions needs JavaScript').waitFor();
  await page.getByLabel('What should change?').fill('Works without JavaScript too');
  await page.getByRole('button', { name: 'Request a revision' }).click();
  await page.getByText('Your revision request was sent.').waitFor();
  assert.equal(Number(await page.getByTestId('available').first().textContent()), available - 1);
  await screenshot(page, 'no-javascript-contract');
  await context.close();
});
