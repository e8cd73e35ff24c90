// Requesting revisions on bob's Metropolis Weekly (no other test file touches it): a request
// with artwork uses exactly one revision, a disguised SVG is refused without using one, at 0
// the form is disabled and the server refuses forged requests, and other sites cannot post.
//
// The tests run in order and share one signed-in page; each reads the balance it starts from.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  availableOnPage, baseUrl, launchBrowser, newPage, openContract, screenshot, signIn, users, waitForHydration,
} from '../lib.mjs';

/** A real 1×1 PNG: its first bytes are the PNG signature the server sniffs for. */
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);
/** SVG can carry script; a .png name and an image/png type do not make it a PNG. */
const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');

let browser;
let page;
let contractUrl;
before(async () => {
  browser = await launchBrowser();
  page = await newPage(browser);
  await signIn(page, users.bob.email, users.bob.password);
  await openContract(page, 'Metropolis Weekly');
  contractUrl = `${baseUrl}${new URL(page.url()).pathname}`;
});
after(() => browser?.close());

/** The contract page's numbers. */
async function balance() {
  const n = async (id) => Number(await page.getByTestId(id).first().textContent());
  return { available: await availableOnPage(page), requested: await n('requested'), purchased: await n('purchased') };
}

/** Opens the contract page without any notice in its address. */
async function openClean() {
  await page.goto(contractUrl);
  await page.getByRole('heading', { name: 'Request a revision' }).waitFor();
}

/** Fills and submits the "Request a revision" form (a plain form post: the page reloads). */
async function requestRevision(notes, file) {
  await page.getByLabel('What should change?').fill(notes);
  if (file) await page.getByLabel(/^Artwork file/).setInputFiles(file);
  await page.getByRole('button', { name: 'Request a revision' }).click();
  await page.waitForURL((url) => url.pathname === new URL(contractUrl).pathname && url.search !== '');
}

test('a request with notes and a PNG uses one revision and shows in the history', async () => {
  await openClean();
  const before = await balance();
  assert.ok(before.available >= 2, `bob starts with revisions to spend (has ${before.available})`);
  const notes = `Make the logo bigger (${Date.now()})`;
  await requestRevision(notes, { name: 'logo.png', mimeType: 'image/png', buffer: png });
  assert.equal(new URL(page.url()).searchParams.get('requested'), '1', `ended at ${page.url()}`);
  await page.getByText('Your revision request was sent. It used one revision.').waitFor();
  const now = await balance();
  assert.equal(now.available, before.available - 1);
  assert.equal(now.requested, before.requested + 1);
  const entry = page.locator('ul.history li').filter({ hasText: notes });
  assert.equal(await entry.count(), 1, 'the request is in the history');
  const link = entry.getByRole('link', { name: 'logo.png' });
  await link.waitFor();
  // Opening it (with this browser's session) gives the image itself, as uploaded.
  const shown = await page.request.get(`${baseUrl}${await link.getAttribute('href')}`);
  assert.equal(shown.status(), 200);
  assert.equal(shown.headers()['content-type'], 'image/png');
  assert.match(shown.headers()['content-disposition'], /^inline; filename="logo\.png"/);
  assert.deepEqual(Buffer.from(await shown.body()), png);
  await screenshot(page, 'revision-requested');
});

test('an SVG named .png is refused with the accepted types, and uses nothing', async () => {
  await openClean();
  const before = await balance();
  const notes = `Sneaky vector (${Date.now()})`;
  await requestRevision(notes, { name: 'evil.png', mimeType: 'image/png', buffer: svg });
  assert.equal(new URL(page.url()).searchParams.has('requested'), false, 'it was not accepted');
  const error = page.locator('p.error');
  await error.waitFor();
  assert.equal(
    await error.textContent(),
    'That file type is not accepted. Upload PNG, JPEG, PDF or TIFF, up to 20 MB.',
  );
  assert.deepEqual(await balance(), before, 'nothing was used');
  assert.equal(await page.locator('ul.history li').filter({ hasText: notes }).count(), 0);
  assert.equal(await page.getByText('Artwork: evil.png').count(), 0);
  await waitForHydration(page);
  assert.equal(await page.getByLabel('What should change?').inputValue(), notes, 'what was typed is kept');
  await screenshot(page, 'artwork-refused');
  // Given back once: a reload starts a fresh form.
  await page.reload();
  await waitForHydration(page);
  assert.equal(await page.getByLabel('What should change?').inputValue(), '');
});

test('a cross-site post (Origin: another site) is refused with 403 and uses nothing', async () => {
  await openClean();
  const before = await balance();
  assert.ok(before.available > 0, 'a revision is available, so only the origin check can refuse');
  // The browser's own cookies, sent as if another site's page posted the form.
  const res = await page.request.post(`${contractUrl}/revisions`, {
    multipart: { notes: 'cross-site' },
    headers: { origin: 'http://evil.example' },
  });
  assert.equal(res.status(), 403);
  await page.reload();
  assert.deepEqual(await balance(), before);
});

test('another advertiser\'s contract: a post is "not found" and changes nothing', async () => {
  const ann = await newPage(browser);
  await signIn(ann, users.ann.email, users.ann.password);
  await openContract(ann, 'Gotham Gazette');
  const annAvailable = await availableOnPage(ann);
  const annUrl = `${baseUrl}${new URL(ann.url()).pathname}`;
  const res = await page.request.post(`${annUrl}/revisions`, {
    multipart: { notes: 'bob writes on ann\'s contract' },
    headers: { origin: baseUrl },
  });
  assert.equal(res.status(), 404);
  await ann.reload();
  assert.equal(await availableOnPage(ann), annAvailable);
  await ann.context().close();
});

test('at 0 available the form is disabled and says why', async () => {
  await openClean();
  let { available } = await balance();
  // Spend what is left, one request at a time through the form.
  for (let i = 0; available > 0; i++) {
    await openClean();
    await requestRevision(`Round ${i} of changes`);
    await page.getByText('Your revision request was sent. It used one revision.').waitFor();
    const now = await availableOnPage(page);
    assert.equal(now, available - 1, 'each request uses exactly one');
    available = now;
  }
  await openClean();
  assert.equal(await availableOnPage(page), 0);
  assert.equal(await page.getByLabel('What should change?').isDisabled(), true);
  assert.equal(await page.getByLabel(/^Artwork file/).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Request a revision' }).isDisabled(), true);
  await page.getByText('No revisions left: purchase a revision pack to request more.').waitFor();
  // Buying stays possible.
  assert.equal(await page.getByRole('button', { name: 'Purchase revisions' }).isEnabled(), true);
  await screenshot(page, 'no-revisions-left');
});

test('a forged request at 0 is refused with 409 and records nothing', async () => {
  await openClean();
  const before = await balance();
  assert.equal(before.available, 0);
  // Same site, signed in, but the page's disabled form bypassed.
  const res = await page.request.post(`${contractUrl}/revisions`, {
    multipart: { notes: 'forged' },
    headers: { origin: baseUrl },
  });
  assert.equal(res.status(), 409);
  assert.match(await res.text(), /no revisions left/i);
  await page.reload();
  assert.deepEqual(await balance(), before, 'still 0, requested count unchanged');
  assert.equal(await page.locator('ul.history li').filter({ hasText: 'forged' }).count(), 0);
});
