// An admin manages people from the pages, as a person would: invites an advertiser, passes the
// one-time link on, gives them a contract; the advertiser opens the link in their own browser,
// sets a password and signs in to see the contract; the admin deactivates them and their open
// session ends at once. Runs alone: it makes its own advertiser (a fresh email per run).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertNoSidewaysScroll, baseUrl, launchBrowser, newPage, phonePage, screenshot, signIn, users } from '../lib.mjs';

let browser;
let admin;
const email = `invited-${Date.now()}@people.test`;
const password = 'a-long-new-password';
let personUrl;
let link;

before(async () => {
  browser = await launchBrowser();
  admin = await newPage(browser);
  await signIn(admin, users.admin.email, users.admin.password);
});
after(() => browser?.close());

test('an admin invites an advertiser and is shown the link once', async () => {
  await admin.goto(`${baseUrl}/admin`);
  await admin.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'People' }).click();
  await admin.waitForURL(`${baseUrl}/admin/people`);
  await admin.getByLabel('Email', { exact: true }).fill(email);
  await admin.getByRole('button', { name: 'Create account and link' }).click();
  await admin.waitForURL(/\/admin\/people\/\d+$/);
  personUrl = admin.url();
  link = (await admin.getByTestId('set-password-link').textContent()).trim();
  assert.match(link, new RegExp(`^${baseUrl}/password/[0-9a-f]{64}$`));
  assert.equal(await admin.getByTestId('person-status').first().textContent(), 'invited');
  await screenshot(admin, 'people-invited');
  // Shown once: a reload does not show it again.
  await admin.reload();
  assert.equal(await admin.getByTestId('set-password-link').count(), 0);

  await admin.getByLabel('Publication').fill('Metropolis Monthly');
  await admin.getByLabel('Ad size').fill('Quarter page');
  await admin.getByRole('button', { name: 'Create contract' }).click();
  await admin.getByTestId('flash').filter({ hasText: 'Metropolis Monthly' }).waitFor();
  assert.match(await admin.getByTestId('person-contracts').textContent(), /Metropolis Monthly · Quarter page · 3 available/);
});

test('the advertiser sets a password through the link, on a phone, and signs in', async () => {
  const phone = await phonePage(browser);
  await phone.goto(link);
  await phone.getByText(email).waitFor();
  await assertNoSidewaysScroll(phone, 'the set-password page');
  await phone.getByLabel(/New password/).fill(password);
  await phone.getByLabel('The same again').fill('a-long-new-passwort');
  await phone.getByRole('button', { name: 'Set password' }).click();
  await phone.getByRole('alert').filter({ hasText: 'The two passwords differ.' }).waitFor();
  await phone.getByLabel(/New password/).fill(password);
  await phone.getByLabel('The same again').fill(password);
  await phone.getByRole('button', { name: 'Set password' }).click();
  await phone.getByTestId('password-set').waitFor();
  await signIn(phone, email, password);
  await phone.getByText('Metropolis Monthly').first().waitFor();
  // The link is spent.
  await phone.goto(link);
  await phone.getByTestId('link-refused').filter({ hasText: 'used already' }).waitFor();

  // Deactivated by the admin: the advertiser's next page asks them to sign in again.
  await phone.goto(`${baseUrl}/contracts`);
  await admin.goto(personUrl);
  await admin.getByRole('button', { name: 'Deactivate' }).click();
  await admin.getByTestId('flash').filter({ hasText: 'signed out everywhere' }).waitFor();
  assert.equal(await admin.getByTestId('person-status').first().textContent(), 'deactivated');
  await phone.goto(`${baseUrl}/contracts`);
  await phone.waitForURL(/\/login\?next=/);
  // The history says who did what.
  const history = await admin.getByTestId('audit').textContent();
  for (const what of ['created the account', 'created a contract', 'set the password', 'deactivated the account']) {
    assert.ok(history.includes(what), `${what} in ${history}`);
  }
  assert.ok(history.includes(users.admin.email));
  assert.deepEqual(admin.consoleErrors, []);
});
