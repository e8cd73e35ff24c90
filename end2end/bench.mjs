// Browser benchmark (BENCHMARKS.md): how long after the payment is confirmed in the page the new
// balance is on screen, over 20 purchases with webhooks on time and 20 with webhooks 30 s late.
// The page marks both moments with performance.mark ('rs-confirmed' when Stripe.js's confirm
// resolves, i.e. the return to the page; 'rs-balance-shown' when the credited balance renders).
// Run through `node end2end/run.mjs --bench` (it serves the release build in simulator mode).
import {
  availableOnPage, cards, launchBrowser, newPage, openContract, payWith, signIn, simulator, users,
} from './lib.mjs';

const PURCHASES = Number(process.env.PURCHASES ?? 20);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(page, label, faults) {
  await simulator.setFaults(faults);
  const times = [];
  for (let i = 0; i < PURCHASES; i++) {
    await openContract(page, 'Daily Planet');
    const before = await availableOnPage(page);
    await payWith(page, cards.visa);
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
      `p99 ${f(percentile(times, 99))}, min ${f(times[0])}, max ${f(times[times.length - 1])}`,
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
