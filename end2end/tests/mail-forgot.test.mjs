// "Forgot your password?" as a person would: from the sign-in page, asks for a link, finds it in
// the email (the SMTP test server's folder, .ci/with-smtp), sets a new password with it and signs
// in; the session they had signed in with before has ended. The server of this file emails
// (run.mjs gives mail-*.test.mjs files SMTP_URL); without TEST_SMTP_DIR the file is skipped.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { baseUrl, launchBrowser, newPage, signIn, users, waitForHydration, waitUntil } from '../lib.mjs';

const mailDir = process.env.TEST_SMTP_DIR;
const { email, password } = users.bob;
const newPassword = 'bob-remembered-at-last';
let browser;

before(async () => {
  if (mailDir) browser = await launchBrowser();
});
after(() => browser?.close());

/** The set-password link in the newest message the SMTP server received for `to`, if any. */
function linkMailedTo(to) {
  const files = readdirSync(mailDir).filter((f) => f.endsWith('.eml')).sort();
  for (const f of files.reverse()) {
    const raw = readFileSync(join(mailDir, f), 'latin1');
    if (!raw.split('\n', 1)[0].toLowerCase().includes(to)) continue;
    // The text part may be quoted-printable (soft line breaks) or base64: look in both readings.
    const soft = raw.replace(/=\r?\n/g, '');
    const decoded = (raw.match(/^[A-Za-z0-9+/=]{16,}\r?$/gm) ?? []).join('');
    for (const text of [soft, Buffer.from(decoded, 'base64').toString('utf8')]) {
      const m = text.match(/https?:\/\/[^\s"<]+\/password\/[0-9a-f]{64}/);
      if (m) return m[0];
    }
  }
  return null;
}

test('a person who forgot their password gets a link by email and sets a new one', { skip: !mailDir && 'needs .ci/with-smtp' }, async () => {
  const before = await newPage(browser);
  await signIn(before, email, password);
  const page = await newPage(browser);
  await page.goto(`${baseUrl}/login`);
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.waitForURL(`${baseUrl}/forgot-password`);
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Email me a link' }).click();
  await page.getByTestId('forgot-answer').waitFor();
  assert.match(await page.getByTestId('forgot-answer').textContent(), /If an account exists for that address/);

  let link = null;
  await waitUntil('the email with the link', () => (link = linkMailedTo(email)) !== null);
  assert.match(link, new RegExp(`^${baseUrl}/password/[0-9a-f]{64}$`));
  await page.goto(link);
  await page.getByLabel(/New password/).fill(newPassword);
  await page.getByLabel('The same again').fill(newPassword);
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.getByTestId('password-set').waitFor();
  await signIn(page, email, newPassword);
  assert.match(page.url(), /\/contracts/);

  // The session from before the new password has ended: its next page asks to sign in.
  await before.goto(`${baseUrl}/contracts`);
  await before.waitForURL(/\/login/);
});
