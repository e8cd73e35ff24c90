// The site as a visitor first sees it: the home page renders, loads its scripts cleanly, and
// fits a phone's screen.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertNoSidewaysScroll, baseUrl, launchBrowser, newPage, phonePage, screenshot } from '../lib.mjs';

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
