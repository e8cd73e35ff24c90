// Browser benchmark (BENCHMARKS.md): how long after the payment is confirmed in the page the new
// balance is on screen, over 20 purchases with webhooks on time and 20 with webhooks 30 s late.
// The page marks both moments with performance.mark ('rs-confirmed' when Stripe.js's confirm
// resolves, i.e. the return to the page; 'rs-balance-shown' when the credited balance renders).
// Run through `node end2end/run.mjs --bench` (it serves the release build in simulator mode).
import {
  availableOnPage, cards, launchBrowser, newPage, openBuyDialog, openContract, payInDialog, signIn, simulator, users,
} from './lib.mjs';

const PURCHASES = Number(process.env.PURCHASES ?? 20);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Pays like a well-behaved client: purchases back to back, two a second, are more than a
 * buyer's budget of Stripe calls allows (each spends one to start and often one to confirm
 * before the webhook is in), so a refused start (429) waits the `Retry-After` it was given and
 * tries again. The wait is before the confirmation, outside what is measured; returns it (ms).
 */
async function payPatiently(page, number) {
  let waited = 0;
  for (let attempt = 0; attempt < 30; attempt++) {
    const { dialog, answer } = await openBuyDialog(page);
    if (answer.status() !== 429) {
      await payInDialog(dialog, answer, number);
      return waited;
    }
    const seconds = Number(answer.headers()['retry-after'] ?? '1');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    waited += seconds * 1000;
  }
  throw new Error('a purchase was refused 30 times in a row');
}

async function measure(page, label, faults) {
  await simulator.setFaults(faults);
  const times = [];
  let waited = 0;
  for (let i = 0; i < PURCHASES; i++) {
    await openContract(page, 'Daily Planet');
    const before = await availableOnPage(page);
    waited += await payPatiently(page, cards.visa);
    await page.getByTestId('new-available').waitFor({ timeout: 60_000 });
    const shown = Number(await page.getByTestId('new-available').textContent());
    if (shown !== before + 2) throw new Error(`${label}: expected ${before + 2}, saw ${shown}`);
    times.push(
      await page.evaluate(() => {
        const [c] = performance.getEntriesByName('rs-confirmed');
        const [b] = performance.getEntriesByName('rs-balance-shown');
        return b.startTime - c.startTime;
      }),
    );
  }
  await simulator.setFaults({});
  times.sort((a, b) => a - b);
  const f = (ms) => `${ms.toFixed(0)} ms`;
  console.log(
    `${label}: ${PURCHASES} purchases, confirm → balance on screen: p50 ${f(percentile(times, 50))}, ` +
      `p99 ${f(percentile(times, 99))}, min ${f(times[0])}, max ${f(times[times.length - 1])}; ` +
      `waited ${(waited / 1000).toFixed(0)} s in all for the Stripe-call budget (429, Retry-After)`,
  );
}

const browser = await launchBrowser();
try {
  const page = await newPage(browser);
  await signIn(page, users.ann.email, users.ann.password);
  await measure(page, 'webhooks on time', {});
  await measure(page, 'webhooks 30 s late', { delay_ms: 30_000 });
} finally {
  await browser.close();
}
