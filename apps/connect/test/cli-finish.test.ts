/** The built CLI's finish without a hub: completion scripts, doctor's answers, one-line errors, colours, daemon logs. */

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { colorsAllowed } from '../src/output.js';
import { formatBytes, localServices } from '../src/commands/status.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe('connect CLI finish (no hub)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-finish-'));
    env = { CONNECT_HOME: home, CONNECT_HUB_URL: '' };
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  for (const shell of ['bash', 'zsh', 'fish']) {
    test(`\`connect completion ${shell}\` prints a script naming the commands`, async () => {
      const run = await cli(['completion', shell], env);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.stdout.length > 200);
      for (const word of ['expose', 'reach', 'daemon', 'doctor']) assert.ok(run.stdout.includes(word), `${shell} script lacks ${word}`);
    });
  }

  test('the bash script completes commands, subcommands and options in a real bash', async () => {
    const script = (await cli(['completion', 'bash'], env)).stdout;
    const complete = (...words: string[]) => {
      const body = `${script}\nCOMP_WORDS=(connect ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _connect_complete; echo "\${COMPREPLY[*]}"`;
      const run = spawnSync('bash', ['-c', body], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      return run.stdout.trim().split(/\s+/);
    };
    assert.deepEqual(complete('dae'), ['daemon']);
    assert.deepEqual(complete('daemon', 'i'), ['install']);
    assert.deepEqual(complete('--json', 'daemon', 'logs', '--f'), ['--follow']);
    assert.ok(complete('link', '').includes('revoke'));
  });

  test('an unknown shell is one line with the choices', async () => {
    const run = await cli(['completion', 'tcsh'], env);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, 'error: no completion for "tcsh"; pick one of: bash, zsh, fish (e.g. source <(connect completion bash)) (BAD_REQUEST)\n');
  });

  test('doctor without a config: ✗ config with the fix, exit 1; --json parses', async () => {
    const human = await cli(['doctor'], env);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^✗ config +no .*config\.json: this machine is not enrolled\n +fix: connect up --hub <url> --api-key <pc_\.\.\.>$/m);
    const json = await cli(['--json', 'doctor'], env);
    assert.equal(json.code, 1);
    const result = JSON.parse(json.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; fix?: string }> };
    assert.equal(result.ok, false);
    assert.equal(result.checks[0]!.name, 'config');
    assert.equal(result.checks[0]!.status, 'fail');
  });

  test('doctor reads a corrupt config.json as a failure that says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pc-finish-bad-'));
    try {
      await writeFile(join(dir, 'config.json'), '{ nope');
      const result = JSON.parse((await cli(['--json', 'doctor'], { CONNECT_HOME: dir })).stdout) as { checks: Array<{ name: string; status: string; detail: string }> };
      assert.match(result.checks[0]!.detail, /is not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an unexpected error is one line without a stack; --debug adds the stack', async () => {
    const bad = { ...env, CONNECT_RECONNECT_MAX_MS: 'soon' };
    const plain = await cli(['status'], bad);
    assert.equal(plain.code, 1);
    assert.equal(plain.stderr.split('\n').filter(Boolean).length, 1, plain.stderr);
    assert.match(plain.stderr, /^error: CONNECT_RECONNECT_MAX_MS must be/);
    assert.doesNotMatch(plain.stderr, /\n\s+at /);
    const debug = await cli(['--debug', 'status'], bad);
    assert.match(debug.stderr, /\n\s+at /);
  });

  test('no colour codes when stdout is not a terminal, nor with NO_COLOR on a terminal', async () => {
    const run = await cli(['doctor'], { ...env, NO_COLOR: '' });
    assert.doesNotMatch(run.stdout + run.stderr, /\x1b\[/);
    const terminal = { isTTY: true } as NodeJS.WriteStream;
    assert.equal(colorsAllowed(terminal, {}), true);
    assert.equal(colorsAllowed(terminal, { NO_COLOR: '1' }), false);
    assert.equal(colorsAllowed(terminal, { TERM: 'dumb' }), false);
    assert.equal(colorsAllowed({ isTTY: false } as NodeJS.WriteStream, {}), false);
  });

  test('daemon logs: NOT_FOUND before the daemon ran, then the last -n lines', async () => {
    const missing = await cli(['daemon', 'logs'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no daemon log yet .*connect daemon install \(NOT_FOUND\)/);
    const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ time: `2030-01-01T00:00:0${i}Z`, type: 'restored', name: `s${i}` }));
    await writeFile(join(home, 'daemon.log'), lines.join('\n') + '\n');
    const two = await cli(['daemon', 'logs', '-n', '2'], env);
    assert.equal(two.stdout, '2030-01-01 00:00:03  restored  s3\n2030-01-01 00:00:04  restored  s4\n');
    const json = await cli(['--json', 'daemon', 'logs', '-n', '1'], env);
    assert.deepEqual(JSON.parse(json.stdout), JSON.parse(lines[4]!));
    const bad = await cli(['daemon', 'logs', '-n', 'many'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /-n must be a whole number/);
  });

  test('down with nothing running or remembered says so', async () => {
    const run = await cli(['--json', 'down', 'nothing-here'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { stopped: [], stuck: [], forgotten: [], daemonNotified: false });
  });
});

describe('status helpers', () => {
  test('formatBytes uses decimal units', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1500), '1.5 kB');
    assert.equal(formatBytes(25_000_000), '25 MB');
  });

  test('running services come first; remembered ones that run nowhere are "stopped"', () => {
    const services = localServices(
      [{ pid: 7, command: 'reach', name: 'db', port: 15432, host: '127.0.0.1', startedAt: '', state: 'connected', daemon: true, traffic: { connections: 1, open: 0, bytesIn: 3, bytesOut: 4 } }],
      [
        { kind: 'reach', name: 'db', host: '127.0.0.1', port: 15432 },
        { kind: 'expose', name: 'web', target: '127.0.0.1:80' },
      ],
    );
    assert.deepEqual(
      services.map((s) => [s.kind, s.name, s.detail, s.state, s.daemon ?? false]),
      [
        ['reach', 'db', '127.0.0.1:15432', 'connected', true],
        ['expose', 'web', '127.0.0.1:80', 'stopped', false],
      ],
    );
  });
});
