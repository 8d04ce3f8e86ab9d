/**
 * One way to install the CLI (issue 22): the README, docs/install.md and the hub's first-start banner give the same
 * command, no page gives another, and that command, run as printed (into a scratch npm prefix), gives a `connect`
 * that runs.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { eventually, removeDirs, startHubProcess, tempDir, type HubProcess } from '../src/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const INSTALL = 'npm install -g ./apps/connect';

/** Other ways to put `connect` on a PATH that pages once gave: any of them is a second instruction. */
const OTHER_WAYS = [/npm link\b/, /npm (?:i|install) -g (?!\.\/apps\/connect)\S+/, /npm install --global/, /npx (?:-p \S+ )?connect (?:up|expose|reach)\b/, /node apps\/connect\/\S+ (?:up|expose|reach)\b/];

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('the install instruction of the CLI', () => {
  let hub: HubProcess;
  let banner = '';

  before(async () => {
    // A first start, as `npm start` makes it: the banner with the bootstrap key and the install line.
    hub = await startHubProcess({ env: { HUB_BOOTSTRAP_API_KEY: '' } });
    banner = await eventually(async () => {
      const text = hub.proc.stderr();
      assert.match(text, /connect up --hub/);
      return text;
    }, 15_000);
  });
  after(async () => {
    await hub?.stop();
    await removeDirs(hub?.dataDir);
  });

  test('README, docs/install.md and the banner give the same command', () => {
    for (const [where, text] of [['README.md', read('README.md')], ['docs/install.md', read('docs/install.md')], ['the banner', banner]] as const) {
      assert.ok(text.includes(INSTALL), `${where} says ${INSTALL}`);
    }
  });

  test('no page of the docs, the README nor the banner gives another way', () => {
    const pages = [['README.md', read('README.md')], ['the banner', banner], ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => [`docs/${f}`, read(`docs/${f}`)])];
    const found = pages.flatMap(([where, text]) => OTHER_WAYS.flatMap((way) => (way.test(text!) ? [`${where}: ${way.exec(text!)![0]}`] : [])));
    assert.deepEqual(found, []);
  });

  test('the command, run as printed, installs a connect that runs', async () => {
    const prefix = await tempDir('npm-prefix');
    try {
      const install = spawnSync('npm', [...INSTALL.split(' ').slice(1), '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      assert.equal(install.status, 0, install.stderr);
      const version = spawnSync(join(prefix, 'bin', 'connect'), ['--version'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(version.status, 0, version.stderr);
      assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
      const help = spawnSync(join(prefix, 'bin', 'connect'), ['--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.match(help.stdout, /expose/);
      assert.match(help.stdout, /reach/);
    } finally {
      await removeDirs(prefix);
    }
  });
});
