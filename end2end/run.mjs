// Runs the end-to-end tests: each end2end/tests/*.test.mjs file gets a server of its own (the
// binary in simulator mode on a fresh temp SQLite database and a free port), so no file depends
// on what another left behind and any one runs alone exactly as in the suite. Files run one
// after another with Node's test runner; the runner ends with one line,
// `e2e: N passed, M failed`.
//
//   node end2end/run.mjs [name pattern...]   only the tests whose names match (--test-name-pattern)
//   node end2end/run.mjs --bench             run end2end/bench.mjs (BENCHMARKS.md) instead of the tests
//   BIN=path/to/revision-store               serve another build (default target/release/revision-store)
//   E2E_BASE_URL=http://host:port            test a server that is already running instead (one for all files)
//
// Run .ci/install-browser first. Exits non-zero if any test failed or a server did not come up.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const e2eDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(e2eDir);
const tmp = mkdtempSync(join(tmpdir(), 'revision-store-e2e-'));

if (!existsSync(join(e2eDir, 'node_modules', 'playwright-core'))) {
  finish(0, 0, 'end2end/node_modules is missing: run .ci/install-browser', []);
}

if (process.argv[2] === '--bench') {
  const server = await serve('bench');
  if (server.error) {
    await server.stop();
    finish(0, 0, server.error, [{ name: 'bench', error: null, log: server.log }]);
  }
  const bench = spawnSync(process.execPath, [join(e2eDir, 'bench.mjs')], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, BASE_URL: server.baseUrl },
  });
  await server.stop();
  if (bench.status === 0) rmSync(tmp, { recursive: true, force: true });
  process.exit(bench.status ?? 1);
}

const testsDir = join(e2eDir, 'tests');
const files = readdirSync(testsDir).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join(testsDir, f));
const patterns = process.argv.slice(2).map((p) => `--test-name-pattern=${p}`);
let passed = 0;
let failed = 0;
const problems = [];
for (const file of files) {
  const name = basename(file, '.test.mjs');
  const server = await serve(name);
  if (server.error) {
    problems.push({ name, error: server.error, log: server.log });
    await server.stop();
    continue;
  }
  // Two reporters: spec for people, on stdout; TAP to a file, for its closing counts.
  const tapFile = join(tmp, `${name}.tap`);
  const run = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tapFile}`,
      ...patterns,
      file,
    ],
    { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, BASE_URL: server.baseUrl } },
  );
  await server.stop();
  const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
  const count = (what) => Number(tap.match(new RegExp(`^# ${what} (\\d+)$`, 'm'))?.[1] ?? 0);
  // A cancelled test (its file crashed or timed out) did not pass either.
  const fileFailed = count('fail') + count('cancelled');
  passed += count('pass');
  failed += fileFailed;
  // A runner that exits non-zero with nothing counted as failing still failed (e.g. it crashed).
  if (fileFailed > 0 || run.status !== 0) {
    problems.push({
      name,
      error: fileFailed === 0 ? `the test runner exited with ${run.status ?? run.signal}` : null,
      log: server.log,
    });
  }
}
finish(passed, failed, problems.find((p) => p.error)?.error ?? null, problems);

/**
 * A server for one test file: the binary on a database and data folder of its own, or the one
 * E2E_BASE_URL names. `error` says why it is not usable; `stop` ends it.
 */
async function serve(name) {
  if (process.env.E2E_BASE_URL) {
    const baseUrl = process.env.E2E_BASE_URL;
    const ok = await healthy(baseUrl, null, 30_000);
    return { baseUrl, log: null, error: ok ? null : `${baseUrl} did not answer /healthz`, stop: async () => {} };
  }
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const bin = resolve(repoRoot, process.env.BIN ?? 'target/release/revision-store');
  const log = join(dir, 'server.log');
  // The tests need simulator mode: no Stripe setting from the caller's environment may leak in
  // (with only some of them set, the server rightly refuses to start).
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('STRIPE_') && !['SMTP_URL', 'MAIL_FROM', 'PUBLIC_URL'].includes(k)),
  );
  // Files named mail-*.test.mjs get a server that emails through the SMTP test server
  // (.ci/with-smtp's TEST_SMTP_URL; the test reads what it received from TEST_SMTP_DIR); the
  // others run with email off, as their pages expect (links shown to pass on).
  const mail = name.startsWith('mail-') && process.env.TEST_SMTP_URL
    ? { SMTP_URL: process.env.TEST_SMTP_URL, MAIL_FROM: 'Revision Store <store@e2e.test>', PUBLIC_URL: baseUrl, WORKER_INTERVAL_SECS: '0.5' }
    : {};
  const server = spawn(bin, ['serve', '--demo', '--stripe-simulator'], {
    cwd: repoRoot,
    env: {
      ...env,
      ...mail,
      DATABASE_URL: `sqlite:${join(dir, 'e2e.db')}`,
      BIND_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: 'target/site',
      DATA_DIR: dir,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')],
  });
  const exited = new Promise((done) => server.on('exit', done));
  // A missing or non-executable binary is reported here rather than as an exit.
  server.on('error', (err) => console.error(`e2e: cannot start ${bin}: ${err.message}`));
  const gone = () => server.exitCode !== null || server.signalCode !== null;
  const stop = async () => {
    if (gone()) return;
    server.kill('SIGTERM');
    const hung = setTimeout(() => server.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(hung);
  };
  let error = null;
  if (!(await healthy(baseUrl, gone, 30_000))) {
    error = gone()
      ? `the server for ${name} exited (${server.exitCode ?? server.signalCode}) before answering /healthz`
      : `the server for ${name} did not answer /healthz within 30 s`;
  }
  return { baseUrl, log, error, stop };
}

/** Prints the verdict (with the server logs of files that failed) and exits. */
function finish(passed, failed, error, problems) {
  const ok = failed === 0 && !error && problems.length === 0;
  for (const p of problems) {
    if (p.error) console.error(`e2e: ${p.name}: ${p.error}`);
    if (p.log && existsSync(p.log)) {
      console.error(`----- server log of ${p.name} (${p.log}) -----`);
      console.error(readFileSync(p.log, 'utf8').trimEnd());
      console.error('----- end of server log -----');
    }
  }
  // Keep the temp dir (databases, logs, TAP) of a failed run for a look.
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

/** Polls GET /healthz until it answers 200, the server is `gone`, or the time is up. */
async function healthy(url, gone, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone?.()) {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok) return true;
    } catch {
      // Not listening (or not answering) yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
