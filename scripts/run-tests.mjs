#!/usr/bin/env node
// Runs every compiled test file (`<workspace>/dist/test/**/*.test.js`) with node's test runner.
// Usage: node scripts/run-tests.mjs [--only SUBSTRING ...] [--browser]   (TEST_DATABASE=postgres switches db-backed tests)
// Files named browser-*.test.js need chromium (/usr/bin/chromium, or BROWSER_PATH): only `--browser` runs them
// (`npm run test:browser`), and only them; the default run leaves them out.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const workspaces = ['packages/protocol', 'packages/tunnel', 'packages/sdk', 'apps/hub', 'apps/connect', 'e2e', 'bench', 'examples/staging-db-tests', 'examples/webhook-link'];
const only = [];
let browser = false;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--only') only.push(process.argv[++i]);
  // The suites that talk to the database directly: what `npm run test:postgres` repeats against PostgreSQL.
  else if (process.argv[i] === '--db-only') only.push('apps/hub/dist/test/');
  else if (process.argv[i] === '--browser') browser = true;
}
const isBrowserTest = (file) => /(^|\/)browser-[^/]*\.test\.js$/.test(file);

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = workspaces
  .flatMap((ws) => walk(join(root, ws, 'dist', 'test'), []))
  .filter((file) => only.length === 0 || only.some((part) => relative(root, file).includes(part)))
  .filter((file) => isBrowserTest(file) === browser)
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found; did the build run?');
  process.exit(1);
}
console.log(`run-tests: ${files.length} ${browser ? 'browser ' : ''}files (database: ${process.env.TEST_DATABASE ?? 'pglite'})`);
// TAP on stdout as before; the spec reporter's copy goes to a file, and its "failing tests" section (every
// failure with its error, hooks included) is printed again at the very end, where a truncated CI log still shows it.
const specFile = join(mkdtempSync(join(tmpdir(), 'run-tests-')), 'spec.txt');
const result = spawnSync(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    '--test-concurrency=2',
    '--test-timeout=300000',
    '--test-reporter=tap',
    '--test-reporter-destination=stdout',
    '--test-reporter=spec',
    `--test-reporter-destination=${specFile}`,
    ...files,
  ],
  // Agents take no direct paths in tests (they would bypass the hub these tests look at) unless a test turns them
  // on: AgentOptions.direct, or CONNECT_DIRECT=on for the agent processes it spawns (docs/direct.md).
  { stdio: 'inherit', cwd: root, env: { ...process.env, CONNECT_DIRECT: process.env.CONNECT_DIRECT ?? 'off' } },
);
if (result.status !== 0 && existsSync(specFile)) {
  const spec = readFileSync(specFile, 'utf8');
  const at = spec.lastIndexOf('failing tests:');
  if (at >= 0) {
    // Tests cancelled because their suite's hook failed say nothing of why: counted, and the cause shown whole.
    const blocks = spec.slice(at + 'failing tests:'.length).split(/\n(?=test at )/).map((b) => b.trim()).filter(Boolean);
    const cancelled = blocks.filter((b) => b.includes('test did not finish before its parent and was cancelled'));
    const causes = blocks.filter((b) => !cancelled.includes(b)).map((b) => (b.length > 6000 ? `${b.slice(0, 3000)}\n[…]\n${b.slice(-3000)}` : b));
    console.log(`\nrun-tests: failing tests (${cancelled.length} more cancelled by a failed hook or suite):\n\n${causes.join('\n\n')}`);
  }
}
rmSync(dirname(specFile), { recursive: true, force: true });
process.exit(result.status ?? 1);
