// Runs the end-to-end tests: serves the release binary on a temp SQLite database and a free
// port, waits for it, runs every end2end/tests/*.test.mjs one file at a time with Node's test
// runner, stops the server and ends with one line, `e2e: N passed, M failed`.
//
//   node end2end/run.mjs [name pattern...]   only the tests whose names match (--test-name-pattern)
//   node end2end/run.mjs --bench             run end2end/bench.mjs (BENCHMARKS.md) instead of the tests
//   BIN=path/to/revision-store               serve another build (default target/release/revision-store)
//   E2E_BASE_URL=http://host:port            test a server that is already running instead
//
// Run .ci/install-browser first. Exits non-zero if any test failed or the server did not come up.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const e2eDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(e2eDir);
const tmp = mkdtempSync(join(tmpdir(), 'revision-store-e2e-'));
const serverLog = join(tmp, 'server.log');
const tapFile = join(tmp, 'tap.txt');
let server = null;

if (!existsSync(join(e2eDir, 'node_modules', 'playwright-core'))) {
  finish(0, 0, 'end2end/node_modules is missing: run .ci/install-browser');
}

let baseUrl = process.env.E2E_BASE_URL;
if (!baseUrl) {
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const bin = resolve(repoRoot, process.env.BIN ?? 'target/release/revision-store');
  const log = openSync(serverLog, 'w');
  // The tests need simulator mode: no Stripe setting from the caller's environment may leak in
  // (with only some of them set, the server rightly refuses to start).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STRIPE_')));
  server = spawn(bin, ['serve', '--demo', '--stripe-simulator'], {
    cwd: repoRoot,
    env: {
      ...env,
      DATABASE_URL: `sqlite:${join(tmp, 'e2e.db')}`,
      BIND_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: 'target/site',
      DATA_DIR: tmp,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', log, log],
  });
  server.exited = new Promise((done) => server.on('exit', done));
  // A missing or non-executable binary is reported here rather than as an exit.
  server.on('error', (err) => console.error(`e2e: cannot start ${bin}: ${err.message}`));
}

if (!(await healthy(baseUrl, 30_000))) {
  const why = serverExited()
    ? `the server exited (${server.exitCode ?? server.signalCode}) before answering /healthz`
    : `${baseUrl} did not answer /healthz within 30 s`;
  await stopServer();
  finish(0, 0, why);
}

if (process.argv[2] === '--bench') {
  const bench = spawnSync(process.execPath, [join(e2eDir, 'bench.mjs')], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, BASE_URL: baseUrl },
  });
  await stopServer();
  if (bench.status === 0) rmSync(tmp, { recursive: true, force: true });
  process.exit(bench.status ?? 1);
}

const testsDir = join(e2eDir, 'tests');
const files = readdirSync(testsDir).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join(testsDir, f));
const patterns = process.argv.slice(2).map((p) => `--test-name-pattern=${p}`);
// Two reporters: spec for people, on stdout; TAP to a file, for its closing `# pass`/`# fail` counts.
const run = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...patterns,
    ...files,
  ],
  { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, BASE_URL: baseUrl } },
);
await stopServer();

const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
const count = (name) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
// A cancelled test (its file crashed or timed out) did not pass either.
const failed = count('fail') + count('cancelled');
const passed = count('pass');
// A runner that exits non-zero with nothing counted as failing still failed (e.g. it crashed).
const crashed = run.status !== 0 && failed === 0;
finish(passed, failed, crashed ? `the test runner exited with ${run.status ?? run.signal}` : null);

/** Prints the verdict (with the server log when something went wrong) and exits. */
function finish(passed, failed, error) {
  const ok = failed === 0 && !error;
  if (error) console.error(`e2e: ${error}`);
  if (!ok && server) {
    console.error(`----- server log (${serverLog}) -----`);
    console.error(readFileSync(serverLog, 'utf8').trimEnd());
    console.error('----- end of server log -----');
  }
  // Keep the temp dir (database, log, TAP) of a failed run for a look.
  if (ok) rmSync(tmp, { recursive: true, force: true });
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(ok ? 0 : 1);
}

/** A TCP port nothing listens on right now. */
function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** Polls GET /healthz until it answers 200, the server exits, or the time is up. */
async function healthy(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !serverExited()) {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok) return true;
    } catch {
      // Not listening (or not answering) yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Whether the server this runner started has exited (or never started). */
function serverExited() {
  return server !== null && (server.exitCode !== null || server.signalCode !== null);
}

/** Stops the server this runner started, if any (killing it if it ignores SIGTERM for 5 s). */
async function stopServer() {
  if (!server || serverExited()) return;
  server.kill('SIGTERM');
  const hung = setTimeout(() => server.kill('SIGKILL'), 5_000);
  await server.exited;
  clearTimeout(hung);
}
