/**
 * The import rules of .dependency-cruiser.mjs (`npm run check:deps`, run by .ci/run) bite: on a small tree written
 * for the purpose, with the repository's own config, they refuse a circle of type-only imports, the relay importing
 * the API, and each other rule broken once; they leave alone the imports that go downward; and the repository's
 * own sources pass them.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const config = join(root, '.dependency-cruiser.mjs');
const depcruise = join(root, 'scripts/depcruise.mjs');

interface Violation {
  rule: string;
  from: string;
  to: string;
}

/**
 * A dependency-cruiser reporter that prints the violations as JSON and exits as the `err` reporter of
 * `npm run check:deps` does: with the number of errors.
 */
const REPORTER = `export default (result) => ({
  output: JSON.stringify(result.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }))),
  exitCode: result.summary.error,
});
`;

/** Runs the checker in `cwd` (a tree written by writeTree) with the repository's config, over `dirs`. */
function cruise(cwd: string, dirs: string[]): { status: number | null; violations: Violation[]; output: string } {
  const reporter = join(cwd, 'violations-reporter.mjs');
  writeFileSync(reporter, REPORTER);
  const run = spawnSync(process.execPath, [depcruise, '--config', config, '--output-type', `plugin:${reporter}`, ...dirs], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
  let violations: Violation[] = [];
  try {
    violations = JSON.parse(run.stdout) as Violation[];
  } catch {
    // Not JSON: the checker itself failed; the status and output say why.
  }
  return { status: run.status, violations, output: `${run.stderr}${run.stdout}` };
}

/** Writes `files` (path -> source) under a new temporary folder and returns it. */
function writeTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dependency-rules-'));
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), source);
  }
  return dir;
}

const hub = 'apps/hub/src';

describe('import rules (.dependency-cruiser.mjs)', () => {
  it('refuses an import circle made of type-only imports', () => {
    const dir = writeTree({
      [`${hub}/sharing/shares.ts`]: `import type { Link } from './links.js';\nexport interface Share { link?: Link }\n`,
      [`${hub}/sharing/links.ts`]: `import type { Share } from './shares.js';\nexport interface Link { share?: Share }\n`,
    });
    try {
      const run = cruise(dir, ['apps']);
      assert.notEqual(run.status, 0, run.output);
      // One violation per circle, named from one of its modules to the next.
      assert.equal(run.violations.length, 1, run.output);
      const circle = run.violations[0];
      assert.ok(circle, run.output);
      assert.equal(circle.rule, 'no-circular');
      assert.deepEqual([circle.from, circle.to].sort(), [`${hub}/sharing/links.ts`, `${hub}/sharing/shares.ts`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses the relay importing the API, sharing or pages, and names the rule', () => {
    const dir = writeTree({
      [`${hub}/api/guard.ts`]: `export const guard = 1;\n`,
      [`${hub}/sharing/shares.ts`]: `export const share = 1;\n`,
      [`${hub}/pages/html.ts`]: `export const page = 1;\n`,
      [`${hub}/relay/control-handler.ts`]:
        `import { guard } from '../api/guard.js';\nimport { share } from '../sharing/shares.js';\nimport { page } from '../pages/html.js';\n` +
        `export const handled = guard + share + page;\n`,
    });
    try {
      const run = cruise(dir, ['apps']);
      assert.notEqual(run.status, 0, run.output);
      assert.deepEqual(
        run.violations.map((v) => `${v.rule}: ${v.from} -> ${v.to}`).sort(),
        [
          `hub-relay-below-sharing: ${hub}/relay/control-handler.ts -> ${hub}/api/guard.ts`,
          `hub-relay-below-sharing: ${hub}/relay/control-handler.ts -> ${hub}/pages/html.ts`,
          `hub-relay-below-sharing: ${hub}/relay/control-handler.ts -> ${hub}/sharing/shares.ts`,
        ],
        run.output,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses each other upward import: store, auth, sharing, api, the SDK in the hub, app to app, package to app, among packages', () => {
    const dir = writeTree({
      [`${hub}/hub.ts`]: `export const hub = 1;\n`,
      [`${hub}/auth/principal.ts`]: `export const principal = 1;\n`,
      [`${hub}/relay/streams.ts`]: `export const streams = 1;\n`,
      [`${hub}/api/routes.ts`]: `export const routes = 1;\n`,
      [`${hub}/pages/pages.ts`]: `export const pages = 1;\n`,
      [`${hub}/store/agents.ts`]: `import { principal } from '../auth/principal.js';\nexport const agents = principal;\n`,
      [`${hub}/db/open.ts`]: `import { hub } from '../hub.js';\nexport const open = hub;\n`,
      [`${hub}/auth/guard.ts`]: `import { streams } from '../relay/streams.js';\nexport const guard = streams;\n`,
      [`${hub}/cluster/cluster.ts`]: `import { routes } from '../api/routes.js';\nexport const cluster = routes;\n`,
      [`${hub}/api/error-handler.ts`]: `import { pages } from '../pages/pages.js';\nexport const handler = pages;\n`,
      [`${hub}/services.ts`]: `export interface HubServices { hub: number }\n`,
      [`${hub}/pages/spa.ts`]: `import type { HubServices } from '../services.js';\nexport type Spa = HubServices;\n`,
      [`${hub}/relay/local-peer.ts`]: `import { TunnelStream } from '@private-connect/sdk';\nexport const peer = TunnelStream;\n`,
      ['apps/connect/src/cli.ts']: `import { hub } from '../../hub/src/hub.js';\nexport const cli = hub;\n`,
      ['apps/web/src/api.ts']: `import { startHub } from '@private-connect/hub';\nexport const api = startHub;\n`,
      ['packages/sdk/src/index.ts']: `import { cli } from '../../../apps/connect/src/cli.js';\nexport const sdk = cli;\n`,
      ['packages/tunnel/src/tunnel-stream.ts']: `import { sdk } from '../../sdk/src/index.js';\nexport const stream = sdk;\n`,
      ['packages/protocol/src/frame.ts']: `import type { Stream } from '@private-connect/tunnel';\nexport type Frame = Stream;\n`,
    });
    try {
      const run = cruise(dir, ['apps', 'packages']);
      assert.notEqual(run.status, 0, run.output);
      assert.deepEqual(
        run.violations.map((v) => `${v.rule}: ${v.from} -> ${v.to}`).sort(),
        [
          `hub-api-not-pages: ${hub}/api/error-handler.ts -> ${hub}/pages/pages.ts`,
          `hub-auth-below-relay: ${hub}/auth/guard.ts -> ${hub}/relay/streams.ts`,
          `hub-not-sdk: ${hub}/relay/local-peer.ts -> @private-connect/sdk`,
          `hub-pages-not-wiring: ${hub}/pages/spa.ts -> ${hub}/services.ts`,
          `hub-sharing-cluster-below-api: ${hub}/cluster/cluster.ts -> ${hub}/api/routes.ts`,
          `hub-store-is-lowest: ${hub}/db/open.ts -> ${hub}/hub.ts`,
          `hub-store-is-lowest: ${hub}/store/agents.ts -> ${hub}/auth/principal.ts`,
          `no-app-to-other-app: apps/connect/src/cli.ts -> ${hub}/hub.ts`,
          `no-app-to-other-app: apps/web/src/api.ts -> @private-connect/hub`,
          `no-package-to-app: packages/sdk/src/index.ts -> apps/connect/src/cli.ts`,
          `protocol-imports-no-package: packages/protocol/src/frame.ts -> @private-connect/tunnel`,
          `tunnel-api-not-sdk: packages/tunnel/src/tunnel-stream.ts -> packages/sdk/src/index.ts`,
        ],
        run.output,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes on the repository itself (npm run check:deps, as .ci/run runs it)', () => {
    const run = spawnSync('npm', ['run', '--silent', 'check:deps'], { cwd: root, encoding: 'utf8', timeout: 180_000 });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /no dependency violations found/);
  });

  it('leaves alone imports that go downward, type-only ones included', () => {
    const dir = writeTree({
      [`${hub}/store/agents.ts`]: `export interface Agent { id: string }\nexport const agents = 1;\n`,
      [`${hub}/auth/principal.ts`]: `import type { Agent } from '../store/agents.js';\nexport const principal = (a: Agent) => a.id;\n`,
      [`${hub}/relay/streams.ts`]: `import { principal } from '../auth/principal.js';\nexport const streams = principal;\n`,
      [`${hub}/sharing/shares.ts`]: `import { streams } from '../relay/streams.js';\nexport const shares = streams;\n`,
      [`${hub}/api/routes.ts`]: `import { shares } from '../sharing/shares.js';\nexport const routes = shares;\n`,
      [`${hub}/pages/pages.ts`]: `import { routes } from '../api/routes.js';\nexport const pages = routes;\n`,
      [`${hub}/hub.ts`]: `import { pages } from './pages/pages.js';\nimport { agents } from './store/agents.js';\nexport const hub = [pages, agents];\n`,
      ['apps/connect/src/cli.ts']: `import { ApiClient } from '@private-connect/sdk';\nexport const cli = ApiClient;\n`,
    });
    try {
      const run = cruise(dir, ['apps']);
      assert.deepEqual(run.violations, [], run.output);
      assert.equal(run.status, 0, run.output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
