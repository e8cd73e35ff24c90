// Who may see what: signing in and out, the session cookie, sign-in throttling, advertisers
// kept to their own contracts, and the admin pages (every contract, search, a contract's money
// trail down to a Stripe event's raw payload).
//
// Ann's balances change in other test files (purchase.test.mjs), so every balance here is read
// at test time and compared, never assumed.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import {
  availableOnPage, baseUrl, cards, launchBrowser, newPage, openContract, payWith, screenshot, signIn, users,
  waitForHydration, waitUntil,
} from '../lib.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
// Each test opens its own contexts (one per user); close them so they do not pile up.
afterEach(async () => {
  for (const context of browser.contexts()) await context.close();
});
after(() => browser?.close());

/** The three contracts `serve --demo` creates, with their owners. */
const demoContracts = [
  { owner: 'ann', publication: 'Daily Planet', size: 'Half page' },
  { owner: 'ann', publication: 'Gotham Gazette', size: 'Full page' },
  { owner: 'bob', publication: 'Metropolis Weekly', size: 'Quarter page' },
];

/** Fills the login form already on the page (hydrated) and presses "Sign in". */
async function submitLogin(page, email, password) {
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname.startsWith('/api/sign_in'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  return answered;
}

/** Where the login page would send the user back to (`next`), or null when not on it. */
function nextOf(page) {
  const url = new URL(page.url());
  return url.pathname === '/login' ? url.searchParams.get('next') : null;
}

/** Signs `who` in on a fresh desktop page. */
async function signedIn(who) {
  const page = await newPage(browser);
  await signIn(page, users[who].email, users[who].password);
  return page;
}

/**
 * Opens the admin's contract table, server-rendered whole (signing in lands on /admin through a
 * client-side navigation, where the table arrives a moment after the heading).
 */
async function openAdminTable(page) {
  const res = await page.goto(`${baseUrl}/admin`);
  assert.equal(res.status(), 200);
  await page.locator('table.contracts').waitFor();
  await waitForHydration(page);
  return page.locator('table.contracts tbody tr');
}

/** The id of one of the signed-in advertiser's contracts (from its page's address). */
async function contractId(page, publication) {
  await openContract(page, publication);
  return Number(new URL(page.url()).pathname.split('/').pop());
}

test('signed out, /contracts sends you to sign in, and signing in brings you back', async () => {
  const page = await newPage(browser);
  const res = await page.goto(`${baseUrl}/contracts`);
  // Proves the data page is not shown to strangers: the browser ends on the login page, which
  // remembers where it was going (either encoding of the slash is fine).
  assert.equal(nextOf(page), '/contracts', `ended at ${page.url()}`);
  assert.equal(res.status(), 200, 'the login page itself answers 200 after the redirect');
  assert.equal(await page.getByTestId('available').count(), 0, 'no contract data on the way');
  await page.getByRole('link', { name: 'Sign in' }).waitFor();

  await submitLogin(page, users.ann.email, users.ann.password);
  await page.waitForURL((url) => url.pathname !== '/login');
  assert.equal(new URL(page.url()).pathname, '/contracts');
  await page.getByRole('heading', { name: 'My contracts' }).waitFor();
  // Ann's two contracts load (the cards arrive just after the heading).
  await page.getByTestId('available').nth(1).waitFor();
  assert.deepEqual(page.consoleErrors, []);
});

test('`next` is honoured even where it differs from the user\'s home page', async () => {
  // /contracts is also ann's home, so the test above would pass with `next` ignored. The admin's
  // home is /admin: landing on /admin/events proves `next` was used.
  const page = await newPage(browser);
  await page.goto(`${baseUrl}/admin/events`);
  assert.equal(nextOf(page), '/admin/events', `ended at ${page.url()}`);
  await submitLogin(page, users.admin.email, users.admin.password);
  await page.waitForURL((url) => url.pathname !== '/login');
  assert.equal(new URL(page.url()).pathname, '/admin/events');
  await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
});

test('a wrong password is refused with a clear message and no session', async () => {
  const page = await newPage(browser);
  await page.goto(`${baseUrl}/login`);
  const res = await submitLogin(page, users.ann.email, 'not-ann-s-password');
  assert.equal(res.status(), 422);
  await page.getByRole('alert').filter({ hasText: 'That email and password do not match an account.' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/login', 'still on the login page');
  // Still signed out: the header offers to sign in and data pages redirect.
  await page.goto(`${baseUrl}/contracts`);
  assert.equal(nextOf(page), '/contracts');
});

test('the session cookie is HttpOnly and SameSite=Lax', async () => {
  const page = await signedIn('ann');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'revision_store_session');
  assert.ok(session, `a session cookie is set (cookies: ${cookies.map((c) => c.name).join(', ')})`);
  assert.equal(session.httpOnly, true, 'scripts cannot read the session');
  assert.equal(session.sameSite, 'Lax', 'other sites cannot post with it');
  assert.equal(await page.evaluate(() => document.cookie.includes('revision_store_session')), false);
});

test('signing out ends the session on the server, not just in this browser', async () => {
  const page = await signedIn('ann');
  const session = (await page.context().cookies()).find((c) => c.name === 'revision_store_session');
  assert.ok(session);
  await waitForHydration(page);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByText(users.ann.email).waitFor();
  await nav.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL((url) => url.pathname === '/login');
  // Signed-out header: a "Sign in" link, no email, no "My contracts".
  await nav.getByRole('link', { name: 'Sign in' }).waitFor();
  assert.equal(await nav.getByText(users.ann.email).count(), 0);
  assert.equal(await nav.getByRole('link', { name: 'My contracts' }).count(), 0);
  await page.goto(`${baseUrl}/contracts`);
  assert.equal(nextOf(page), '/contracts', 'data pages redirect again');

  // The old cookie, replayed in a fresh browser, opens nothing: the session is gone server-side.
  const replay = await newPage(browser);
  await replay.context().addCookies([{ ...session }]);
  await replay.goto(`${baseUrl}/contracts`);
  assert.equal(nextOf(replay), '/contracts', 'the signed-out session id still works');
});

test('after 5 wrong passwords for one email from one address, the 6th attempt is throttled', async () => {
  const page = await newPage(browser);
  await page.goto(`${baseUrl}/login`);
  for (let i = 1; i <= 5; i++) {
    const res = await submitLogin(page, 'nobody@demo.test', `wrong-${i}`);
    assert.equal(res.status(), 422, `attempt ${i} is an ordinary refusal`);
    await page.getByRole('alert').filter({ hasText: 'That email and password do not match an account.' }).waitFor();
  }
  const res = await submitLogin(page, 'nobody@demo.test', 'wrong-6');
  assert.equal(res.status(), 429);
  const alert = page.getByRole('alert').filter({ hasText: 'Too many failed sign-ins' });
  await alert.waitFor();
  assert.match(await alert.textContent(), /^Too many failed sign-ins\. Try again in \d+ minutes?\.$/);
  await screenshot(page, 'sign-in-throttled');
  // Throttled per (email, address): another account from the same browser still signs in.
  await page.goto(`${baseUrl}/login`);
  await submitLogin(page, users.bob.email, users.bob.password);
  await page.waitForURL((url) => url.pathname === '/contracts');
});

test('bob cannot open ann\'s contract: "Not found", a 404, and none of her data', async () => {
  const ann = await signedIn('ann');
  const annId = await contractId(ann, 'Daily Planet');
  const bob = await signedIn('bob');
  const res = await bob.goto(`${baseUrl}/contracts/${annId}`);
  assert.equal(res.status(), 404);
  await bob.getByRole('heading', { name: 'Not found' }).waitFor();
  // And still once the wasm has loaded: nothing in the browser may bring her data back.
  await waitForHydration(bob);
  await bob.getByRole('heading', { name: 'Not found' }).waitFor();
  const text = await bob.locator('main').textContent();
  assert.ok(!text.includes('Daily Planet'), 'the publication name leaks');
  assert.equal(await bob.getByTestId('available').count(), 0, 'a balance leaks');
  assert.equal(await bob.getByRole('button', { name: 'Purchase revisions' }).count(), 0);
  await screenshot(bob, 'not-found');
});

test('an advertiser on /admin gets 403 "You do not have access to this page."', async () => {
  const bob = await signedIn('bob');
  const res = await bob.goto(`${baseUrl}/admin`);
  assert.equal(res.status(), 403);
  await bob.getByText('You do not have access to this page.').waitFor();
  assert.equal(await bob.getByTestId('available').count(), 0, 'no contract rows');
  assert.ok(!(await bob.locator('main').textContent()).includes('ann@demo.test'), 'other advertisers leak');
});

test('the admin sees every contract with the balance its owner sees', async () => {
  // What each owner sees on their own contract pages, read now.
  const owners = { ann: await signedIn('ann'), bob: await signedIn('bob') };
  const seen = [];
  for (const c of demoContracts) {
    const page = owners[c.owner];
    const id = await contractId(page, c.publication);
    seen.push({ ...c, id, available: await availableOnPage(page) });
  }

  const admin = await signedIn('admin');
  assert.equal(new URL(admin.url()).pathname, '/admin', 'the admin lands on /admin');
  const rows = await openAdminTable(admin);
  for (const c of seen) {
    const row = rows.filter({
      has: admin.getByRole('link', { name: String(c.id), exact: true }),
    });
    assert.equal(await row.count(), 1, `contract #${c.id} (${c.publication}) is listed once`);
    const cells = await row.locator('td').allTextContents();
    assert.deepEqual(cells.slice(1, 4), [users[c.owner].email, c.publication, c.size]);
    assert.equal(
      Number(await row.getByTestId('available').textContent()),
      c.available,
      `${c.publication}: the admin's Available matches what ${c.owner} sees`,
    );
    // Available = Included + Purchased − Revoked − Requested, in the row itself.
    const [base, purchased, revoked, requested] = cells.slice(4, 8).map(Number);
    assert.equal(base + purchased - revoked - requested, c.available);
  }
  await admin.getByText(/^Page 1 of \d+$/).waitFor();
  await screenshot(admin, 'admin-contracts');
});

test('admin search "gotham" shows exactly the one matching contract', async () => {
  const admin = await signedIn('admin');
  const rows = await openAdminTable(admin);
  assert.ok((await rows.count()) >= 3, 'all contracts before searching');
  await admin.getByLabel('Search by advertiser or publication').fill('gotham');
  await admin.getByRole('button', { name: 'Search' }).click();
  await admin.waitForURL((url) => url.searchParams.get('q') === 'gotham');
  await admin.waitForFunction(() => document.querySelectorAll('table.contracts tbody tr').length === 1);
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /Gotham Gazette/);
  assert.match(await rows.first().textContent(), /ann@demo\.test/);
  assert.equal(await admin.getByLabel('Search by advertiser or publication').inputValue(), 'gotham');
});

test('the admin follows a credited purchase to its Stripe event and raw payload', async () => {
  // Find a contract with a credited pack; if this file runs before any purchase (on a fresh
  // database it does: files run alphabetically), buy one as ann so there is a trail to follow.
  const admin = await signedIn('admin');
  const purchasedCounts = async () => {
    const out = [];
    for (const row of await (await openAdminTable(admin)).all()) {
      const cells = await row.locator('td').allTextContents();
      out.push({ id: Number(cells[0]), publication: cells[2], purchased: Number(cells[5]) });
    }
    return out;
  };
  let rows = await purchasedCounts();
  if (!rows.some((r) => r.purchased > 0)) {
    const ann = await signedIn('ann');
    await openContract(ann, 'Daily Planet');
    await payWith(ann, cards.visa);
    await ann.getByRole('dialog', { name: 'Payment' }).getByTestId('payment-succeeded').waitFor();
    rows = await purchasedCounts();
  }
  const credited = rows.find((r) => r.publication === 'Daily Planet' && r.purchased > 0)
    ?? rows.find((r) => r.purchased > 0);
  assert.ok(credited, 'a contract shows purchased revisions');

  // The ledger lists the credited packs; the purchases list their webhook events. The webhook
  // may land a moment after the credit (the return page can credit first): wait for its link.
  const eventLink = admin.locator('main a[href^="/admin/events/"]');
  await waitUntil('a link from the credited purchase to its Stripe event', async () => {
    await admin.goto(`${baseUrl}/admin/contracts/${credited.id}`);
    return (await eventLink.count()) > 0;
  }, { everyMs: 500 });
  await admin.getByRole('heading', { name: 'Ledger: credited packs' }).waitFor();
  await admin.getByRole('heading', { name: 'Payment attempts and their Stripe events' }).waitFor();
  assert.equal(await admin.getByText('No credits.').count(), 0, 'the ledger has a credit');
  await admin.getByRole('cell', { name: '+2' }).first().waitFor();
  assert.ok((await eventLink.count()) > 0, 'a purchase links to its Stripe events');
  const purchaseIds = await admin.locator('main h3 code').allTextContents();
  assert.ok(purchaseIds.length > 0 && purchaseIds.every((pi) => pi.startsWith('pi_')), `purchases: ${purchaseIds}`);

  const href = await eventLink.first().getAttribute('href');
  await eventLink.first().click();
  await admin.waitForURL((url) => url.pathname === href);
  const payload = admin.getByTestId('payload');
  await payload.waitFor();
  const raw = await payload.textContent();
  assert.match(raw, /payment_intent/);
  assert.ok(purchaseIds.some((pi) => raw.includes(pi)), 'the payload names one of the purchases');
  assert.doesNotThrow(() => JSON.parse(raw), 'the payload is the JSON as received');
  assert.match(await admin.getByTestId('event-status').textContent(), /^(processed|ignored|pending|failed)$/);
  await screenshot(admin, 'admin-event');
});
