// Forwarding, as an admin works it from the pages: adds a destination on the Forwarding page
// (its signing secret shown once), an advertiser's purchase reaches that receiver signed with it
// (a real HTTP server here, verifying with node:crypto as a Standard Webhooks library would),
// the delivery shows on the destination's page, is replayed under the same webhook-id, and the
// destination is paused and resumed. One test: it stands alone and in the suite.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import {
  baseUrl, cards, launchBrowser, newPage, openContract, payWith, screenshot, signIn, users, waitUntil,
} from '../lib.mjs';

let browser;
let receiver;
/** Every request the receiver got: its Standard Webhooks headers and raw body. */
const got = [];

before(async () => {
  browser = await launchBrowser();
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({
        id: req.headers['webhook-id'],
        ts: req.headers['webhook-timestamp'],
        sig: req.headers['webhook-signature'] ?? '',
        source: req.headers['webhook-source'],
        body: Buffer.concat(chunks),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise((listening) => receiver.listen(0, '127.0.0.1', listening));
});
after(async () => {
  await browser?.close();
  receiver?.close();
});

/** Whether a request carries a `v1,` signature by `secret` over `{id}.{timestamp}.{body}`. */
function verifies(secret, g) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key).update(`${g.id}.${g.ts}.`).update(g.body).digest('base64');
  return g.sig.split(' ').includes(`v1,${mac}`);
}

test('an admin adds a destination; a purchase reaches it signed; replayed, paused, resumed', async () => {
  const admin = await newPage(browser);
  await signIn(admin, users.admin.email, users.admin.password);
  await admin.goto(`${baseUrl}/admin`);
  await admin.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Forwarding' }).click();
  await admin.waitForURL(`${baseUrl}/admin/destinations`);

  // A refused form says why and keeps what was typed.
  const name = `books-${Date.now()}`;
  const url = `http://127.0.0.1:${receiver.address().port}/hook`;
  const form = admin.getByTestId('add-destination');
  await form.getByLabel(/^Name/).fill(name);
  await form.getByLabel(/^URL/).fill(url);
  await form.getByLabel(/^Only event types/).fill('payment_intent.succeeded');
  await form.getByLabel('Deliveries a second, at most').fill('0');
  await form.getByRole('button', { name: 'Add destination' }).click();
  await admin.getByTestId('flash').filter({ hasText: 'the rate is 1 to 1000 a second' }).waitFor();
  assert.equal(await form.getByLabel(/^URL/).inputValue(), url, 'the form comes back as typed');
  assert.equal(await form.getByLabel(/^Only event types/).inputValue(), 'payment_intent.succeeded');

  await form.getByLabel('Deliveries a second, at most').fill('10');
  await form.getByRole('button', { name: 'Add destination' }).click();
  await admin.waitForURL(`${baseUrl}/admin/destinations/${name}`);
  const notice = await admin.getByTestId('flash').textContent();
  const secret = notice.match(/(whsec_[A-Za-z0-9+/=]+)/)?.[1];
  assert.ok(secret, `the secret is shown: ${notice}`);
  assert.match(await admin.getByTestId('destination-state').textContent(), /sending/);
  await screenshot(admin, 'forwarding-added');
  await admin.reload();
  assert.equal(await admin.getByText(secret).count(), 0, 'the secret is shown once');

  // An advertiser buys a pack; its payment_intent.succeeded is forwarded, signed with the secret.
  const ann = await newPage(browser);
  await signIn(ann, users.ann.email, users.ann.password);
  await openContract(ann, 'Daily Planet');
  await payWith(ann, cards.visa);
  await ann.getByRole('dialog', { name: 'Payment' }).getByTestId('payment-succeeded').waitFor();
  const paid = await waitUntil('the purchase forwarded', () => got.find((g) => JSON.parse(g.body).type === 'payment_intent.succeeded'));
  assert.ok(verifies(secret, paid), 'signed with the secret the page showed');
  assert.equal(paid.source, 'stripe');
  assert.equal(paid.id, JSON.parse(paid.body).id, 'webhook-id is the Stripe event id');
  assert.ok(got.every((g) => JSON.parse(g.body).type === 'payment_intent.succeeded'), 'only the types it takes');

  // The delivery on the destination's page, with its attempt; replayed under the same id.
  const row = admin.getByRole('row').filter({ hasText: paid.id });
  await waitUntil('the delivery shown delivered', async () => {
    await admin.reload();
    return (await row.filter({ hasText: 'delivered' }).count()) === 1;
  });
  assert.match(await row.textContent(), / · 204 · /);
  await row.getByRole('button', { name: 'Replay' }).click();
  await admin.getByTestId('flash').filter({ hasText: 'is due again' }).waitFor();
  await waitUntil('the replay received', () => got.filter((g) => g.id === paid.id).length === 2);
  assert.ok(got.filter((g) => g.id === paid.id).every((g) => verifies(secret, g)));

  // Paused, then resumed.
  await admin.getByRole('button', { name: 'Pause' }).click();
  await admin.getByTestId('flash').filter({ hasText: 'is paused' }).waitFor();
  assert.match(await admin.getByTestId('destination-state').textContent(), /paused since/);
  await admin.getByRole('button', { name: 'Resume' }).click();
  await admin.getByTestId('flash').filter({ hasText: 'is sending again' }).waitFor();
  assert.match(await admin.getByTestId('destination-state').textContent(), /sending/);
  await screenshot(admin, 'forwarding-destination');
  assert.deepEqual(admin.consoleErrors, []);
});
