/** The connect CLI: the `connect <host:port>` shorthand, and the built binary's answers without a hub. */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { rewriteShorthand } from '../src/cli.js';
import { suggestName } from '../src/commands/reach.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

describe('suggestName (did you mean)', () => {
  const names = ['prod-db', 'prod-api', 'cache', 'acme/db'];
  test('suggests the closest name one to three edits away', () => {
    assert.equal(suggestName('prod-dbb', names), 'prod-db');
    assert.equal(suggestName('prd-db', names), 'prod-db');
    assert.equal(suggestName('cahce', names), 'cache');
    assert.equal(suggestName('acme/dv', names), 'acme/db');
  });
  test('suggests nothing for a name far from all, for the exact name, or among no names', () => {
    assert.equal(suggestName('zzzzzzzz', names), undefined);
    assert.equal(suggestName('prod-db', ['prod-db']), undefined);
    assert.equal(suggestName('a-very-long-service-name', ['a-very-different-thing']), undefined);
    assert.equal(suggestName('db', []), undefined);
  });
});

describe('rewriteShorthand', () => {
  test('host:port, a bare port and a bracketed IPv6 address become `expose`', () => {
    assert.deepEqual(rewriteShorthand(['localhost:5432']), ['expose', 'localhost:5432']);
    assert.deepEqual(rewriteShorthand(['5432']), ['expose', '5432']);
    assert.deepEqual(rewriteShorthand(['[::1]:80']), ['expose', '[::1]:80']);
    assert.deepEqual(rewriteShorthand(['127.0.0.1:8080']), ['expose', '127.0.0.1:8080']);
    assert.deepEqual(rewriteShorthand(['db.internal:5432']), ['expose', 'db.internal:5432']);
  });

  test('options before and after the target stay where they are', () => {
    assert.deepEqual(rewriteShorthand(['--json', '5432', '--name', 'db']), ['--json', 'expose', '5432', '--name', 'db']);
    assert.deepEqual(rewriteShorthand(['localhost:5432', '--replace']), ['expose', 'localhost:5432', '--replace']);
  });

  test('the value of --config is not mistaken for the target', () => {
    assert.deepEqual(rewriteShorthand(['--config', '/tmp/pc', 'localhost:5432']), ['--config', '/tmp/pc', 'expose', 'localhost:5432']);
    assert.deepEqual(rewriteShorthand(['--json', '--config', '/tmp/pc', '5432']), ['--json', '--config', '/tmp/pc', 'expose', '5432']);
    assert.deepEqual(rewriteShorthand(['--config', '/tmp/pc', '--json', '[::1]:80']), ['--config', '/tmp/pc', '--json', 'expose', '[::1]:80']);
    // A config folder named like a port or a command is still the folder.
    assert.deepEqual(rewriteShorthand(['--config', '5432', 'ls']), ['--config', '5432', 'ls']);
    assert.deepEqual(rewriteShorthand(['--config', 'ls', '5432']), ['--config', 'ls', 'expose', '5432']);
    assert.deepEqual(rewriteShorthand(['--config=/tmp/pc', '5432']), ['--config=/tmp/pc', 'expose', '5432']);
    assert.deepEqual(rewriteShorthand(['--config', '/tmp/pc']), ['--config', '/tmp/pc']);
  });

  test('known commands are left unchanged, even when an argument looks like a port', () => {
    for (const args of [
      ['up', '--hub', 'http://127.0.0.1:3001', '--api-key', 'pc_x'],
      ['expose', 'localhost:5432', '--name', 'db'],
      ['reach', '5432'],
      ['reach', 'prod-db', '--port', '5433'],
      ['reach', 'acme/prod-db'],
      ['share', 'prod-db', '--name', 'acme', '--expires', '7d'],
      ['share', 'ls'],
      ['share', 'revoke', '1234'],
      ['invitations'],
      ['invitations', 'revoke', '1234'],
      ['join', 'pcs_abc', '--as', 'acme'],
      ['ls'],
      ['list'],
      ['status'],
      ['down'],
      ['help', 'expose'],
      ['--json', 'ls'],
      ['--config', '/tmp/pc', 'status'],
    ]) {
      assert.deepEqual(rewriteShorthand(args), args, args.join(' '));
    }
  });

  test('no arguments, only options, or an unknown word: unchanged (commander reports it)', () => {
    for (const args of [[], ['--help'], ['--version'], ['--json'], ['frobnicate'], ['localhost'], ['host:port']]) {
      assert.deepEqual(rewriteShorthand(args), args, args.join(' '));
    }
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runCliProcess(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

function jsonError(run: Run): { type: string; code: string; message: string } {
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1, run.stdout);
  return JSON.parse(lines[0]!) as { type: string; code: string; message: string };
}

describe('the built CLI without a hub', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-cli-'));
    env = { CONNECT_HOME: home, CONNECT_HUB_URL: '' };
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  for (const args of [['ls'], ['reach', 'prod-db'], ['expose', 'localhost:5432'], ['5432']]) {
    test(`\`connect ${args.join(' ')}\` with no config: NOT_ENROLLED, exit 1`, async () => {
      const human = await runCliProcess(args, env);
      assert.equal(human.code, 1, human.stdout + human.stderr);
      assert.match(human.stderr, /^error: this machine is not connected to a hub yet \(no .*config\.json\); run: connect up --hub <url> --api-key <pc_\.\.\.> \(NOT_ENROLLED\)\n$/);
      assert.equal(human.stdout, '');

      const json = await runCliProcess(['--json', ...args], env);
      assert.equal(json.code, 1);
      const error = jsonError(json);
      assert.equal(error.type, 'error');
      assert.equal(error.code, 'NOT_ENROLLED');
      assert.match(error.message, new RegExp(`no ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/config\\.json`));
    });
  }

  test('--config wins over CONNECT_HOME in the message', async () => {
    const other = join(home, 'other');
    const run = await runCliProcess(['--json', '--config', other, 'ls'], env);
    assert.equal(run.code, 1);
    assert.match(jsonError(run).message, new RegExp(`no ${other.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/config\\.json`));
  });

  test('`connect status` with no config says so and exits 1', async () => {
    const run = await runCliProcess(['--json', 'status'], env);
    assert.equal(run.code, 1);
    const result = JSON.parse(run.stdout) as { enrolled: boolean; configDir: string };
    assert.equal(result.enrolled, false);
    assert.equal(result.configDir, home);
  });

  for (const port of ['70000', '-1', 'abc', '1.5', '65536']) {
    test(`\`connect reach x --port ${port}\`: BAD_REQUEST, exit 1`, async () => {
      const run = await runCliProcess(['--json', 'reach', 'x', '--port', port], env);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const error = jsonError(run);
      assert.equal(error.code, 'BAD_REQUEST');
      assert.equal(error.message, `--port must be 0-65535, got "${port}"`);
    });
  }

  test('`connect up` without a hub URL: BAD_REQUEST naming the flag', async () => {
    const run = await runCliProcess(['--json', 'up', '--api-key', 'pc_' + 'a'.repeat(32)], env);
    assert.equal(run.code, 1);
    const error = jsonError(run);
    assert.equal(error.code, 'BAD_REQUEST');
    assert.match(error.message, /pass --hub/);
  });

  test('`connect up` to a plain-http hub that is not on loopback: INSECURE_HUB, nothing written', async () => {
    const run = await runCliProcess(['--json', 'up', '--hub', 'http://hub.example.com', '--api-key', 'pc_' + 'a'.repeat(32)], env);
    assert.equal(run.code, 1);
    assert.equal(jsonError(run).code, 'INSECURE_HUB');
    const status = await runCliProcess(['--json', 'status'], env);
    assert.equal((JSON.parse(status.stdout) as { enrolled: boolean }).enrolled, false);
  });

  test('an invalid target is INVALID_TARGET before anything else', async () => {
    const run = await runCliProcess(['--json', 'expose', 'localhost:99999'], env);
    assert.equal(run.code, 1);
    assert.equal(jsonError(run).code, 'INVALID_TARGET');
  });

  test('an unknown command is a usage error: exit 2', async () => {
    const run = await runCliProcess(['frobnicate'], env);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown command 'frobnicate'/);
  });

  test('--version prints the version and exits 0', async () => {
    const run = await runCliProcess(['--version'], env);
    assert.equal(run.code, 0);
    assert.equal(run.stdout.trim(), '0.1.0');
  });
});
