// Shared helpers for the end-to-end tests in end2end/tests/. The tests run under Node's own test
// runner, started by end2end/run.mjs, which serves the app and passes its address in BASE_URL.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

if (!process.env.BASE_URL) {
  throw new Error('BASE_URL is not set: run the tests with `node end2end/run.mjs`');
}

/** The app under test, without a trailing slash. */
export const baseUrl = process.env.BASE_URL.replace(/\/$/, '');

/** The logins `serve --demo` creates. */
export const users = {
  admin: { email: 'admin@demo.test', password: 'demo-admin-password' },
  ann: { email: 'ann@demo.test', password: 'demo-ann-password' },
  bob: { email: 'bob@demo.test', password: 'demo-bob-password' },
};

const artifactsDir = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');

/**
 * Debian's Chromium, headless. Playwright gives each launch a fresh temporary profile. The flags
 * keep the browser from talking to anything but the app (no QUIC, updates, sync or first-run
 * pages); --no-sandbox because CI runs as root.
 */
export function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A page in a fresh context (its own cookies) on a desktop-sized window. */
export function newPage(browser) {
  return openPage(browser, { viewport: { width: 1280, height: 800 } });
}

/** A page in a fresh context emulating a phone. */
export function phonePage(browser) {
  return openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
}

/**
 * Opens a page whose console errors and uncaught exceptions are collected in
 * `page.consoleErrors`, so a test can assert there were none.
 */
async function openPage(browser, contextOptions) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.consoleErrors = [];
  // Content-Security-Policy violations, kept apart from other console errors (which some tests
  // clear) so a test can show the page ran entirely within the policy.
  page.cspViolations = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && msg.text().includes('Content Security Policy')) page.cspViolations.push(msg.text());
    // Chromium asks for /favicon.ico by itself; the app has none, so that request failing says
    // nothing about the page under test.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) {
      page.consoleErrors.push(msg.text());
    }
  });
  page.on('pageerror', (err) => page.consoleErrors.push(`uncaught: ${err.message}`));
  return page;
}

/** Saves a full-page screenshot to end2end/artifacts/<name>.png. */
export async function screenshot(page, name) {
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: join(artifactsDir, `${name}.png`), fullPage: true });
}

/**
 * Waits until the wasm has hydrated the server-rendered page (the app marks the body when it
 * has), so clicks and typing reach Leptos' event handlers instead of the inert HTML.
 */
export async function waitForHydration(page) {
  await page.locator('body[data-hydrated="true"]').waitFor({ state: 'attached', timeout: 15_000 });
}

/**
 * Polls `check` (async; done when it returns something truthy, which is returned) every
 * `everyMs` until it holds, for what the page cannot wait on by itself (a webhook from another
 * process, a list that must be reloaded to change). Throws, naming `what`, after `timeoutMs`:
 * a deadline for a loaded machine; a passing test goes on as soon as the condition holds.
 */
export async function waitUntil(what, check, { timeoutMs = 30_000, everyMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = await check();
    if (done) return done;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Signs in through the login form and waits until the app has navigated away from it. */
export async function signIn(page, email, password) {
  await page.goto(`${baseUrl}/login`);
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname !== '/login');
}

/** The built-in Stripe simulator's test controls (only there when the app runs keyless). */
export const simulator = {
  /** Sets its faults, e.g. { copies: 5 } or { delay_ms: 30000 }; {} resets them all. */
  async setFaults(faults) {
    const res = await fetch(`${baseUrl}/stripe-sim/_simulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(faults),
    });
    if (!res.ok) throw new Error(`setting simulator faults: ${res.status} ${await res.text()}`);
    return res.json();
  },
  /** The ids of the events it emitted about one object (a PaymentIntent, with its charges). */
  async eventIdsAbout(objectId) {
    const ids = [];
    let after = '';
    for (;;) {
      const res = await fetch(`${baseUrl}/stripe-sim/v1/events?limit=100${after}`, {
        headers: { authorization: 'Bearer sk_test_simulator' },
      });
      if (!res.ok) throw new Error(`listing simulator events: ${res.status} ${await res.text()}`);
      const page = await res.json();
      for (const e of page.data) {
        const o = e.data.object;
        if (o.id === objectId || o.payment_intent === objectId) ids.push(e.id);
      }
      if (!page.has_more) return ids;
      after = `&starting_after=${page.data[page.data.length - 1].id}`;
    }
  },
  /** Every webhook delivery attempt it has made. */
  async deliveries() {
    const res = await fetch(`${baseUrl}/stripe-sim/_simulator/deliveries`);
    if (!res.ok) throw new Error(`reading simulator deliveries: ${res.status} ${await res.text()}`);
    return res.json();
  },
};

/** Opens one of the signed-in advertiser's contracts from "My contracts", hydrated. */
export async function openContract(page, publication) {
  await page.goto(`${baseUrl}/contracts`);
  await page.getByRole('link', { name: new RegExp(publication) }).click();
  await page.waitForURL(/\/contracts\/\d+$/);
  await waitForHydration(page);
}

/** The contract page's "N available". */
export async function availableOnPage(page) {
  return Number(await page.getByTestId('available').first().textContent());
}

/** Test cards (Stripe's numbers; the simulator honours them). */
export const cards = {
  visa: '4242 4242 4242 4242',
  threeDSecure: '4000 0025 0000 3155',
  declined: '4000 0000 0000 0002',
  insufficientFunds: '4000 0000 0000 9995',
};

/**
 * Opens the buy modal on a contract page, waits for the Payment Element, types the card and
 * presses Pay. Returns the modal's dialog locator, with the price it showed before paying and
 * the PaymentIntent the server created for it.
 */
export async function payWith(page, number) {
  const { dialog, answer } = await openBuyDialog(page);
  return payInDialog(dialog, answer, number);
}

/** Presses "Purchase revisions"; returns the dialog and the server's answer to starting it. */
export async function openBuyDialog(page) {
  const started = page.waitForResponse((r) => r.url().includes('/api/buy_pack'));
  await page.getByRole('button', { name: 'Purchase revisions' }).click();
  const dialog = page.getByRole('dialog', { name: 'Buy revisions' });
  return { dialog, answer: await started };
}

/** Pays in a dialog `openBuyDialog` opened, whose purchase was started (`answer`). */
export async function payInDialog(dialog, answer, number) {
  dialog.paymentIntentId = (await answer.json()).payment_intent_id;
  await dialog.getByLabel('Card number').waitFor({ timeout: 10_000 });
  dialog.price = await dialog.getByTestId('price').textContent();
  await dialog.getByLabel('Card number').fill(number);
  await dialog.getByLabel('Expiration date').fill('12 / 34');
  await dialog.getByLabel('Security code').fill('123');
  await dialog.getByRole('button', { name: /^Pay / }).click();
  return dialog;
}

/**
 * The phone's screen width. Not `window.innerWidth`: on a phone (isMobile) Chromium widens the
 * layout viewport to fit a page that overflows, so innerWidth grows with the overflow and
 * `scrollWidth <= innerWidth` would hold for any page. The configured viewport and the root's
 * clientWidth (the initial containing block, `width=device-width`) stay the real width.
 */
export async function screenWidth(page) {
  const clientWidth = await page.evaluate(() => document.documentElement.clientWidth);
  return Math.min(page.viewportSize().width, clientWidth);
}

/** Fails if the page is wider than the screen (it would scroll sideways), naming the culprits. */
export async function assertNoSidewaysScroll(page, what) {
  const width = await screenWidth(page);
  const { scrollWidth, innerWidth, wide } = await page.evaluate((w) => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    // The elements that stick out past the screen's right edge.
    wide: [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > w + 0.5 && getComputedStyle(e).position !== 'fixed')
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''} (right edge ${Math.round(e.getBoundingClientRect().right)}px)`),
  }), width);
  if (!(scrollWidth <= width && innerWidth <= width)) {
    throw new Error(`${what} is ${scrollWidth}px wide on a ${width}px screen (innerWidth ${innerWidth}); too wide: ${wide.join(', ')}`);
  }
}

