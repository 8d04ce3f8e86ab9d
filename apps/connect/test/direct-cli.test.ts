/**
 * Direct paths in the CLI: --direct/--no-direct/--direct-port and CONNECT_DIRECT turned into AgentOptions.direct,
 * bad values refused before anything connects, `connect up` remembering the setting, and what `connect reach`,
 * `connect expose` and `connect status` print of paths (from fabricated run records; the paths themselves are
 * tested end to end in network namespaces under e2e/).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ConnectError, type ReachPath } from '@private-connect/protocol';
import { updateRun, type AgentConfig, type AgentEvent, type RunRecord } from '@private-connect/sdk';
import { describePath, parseDirectFlags, pathColumn, resolveDirect } from '../src/direct-setting.js';
import { readEnv } from '../src/env.js';
import { agentOptions, directOfRecord, printDirectOff, printEvent } from '../src/run-agent.js';
import { localServices, servicesTable } from '../src/commands/status.js';
import { withDirect } from '../src/commands/up.js';
import type { Output } from '../src/output.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

function jsonLines(run: Run): Array<Record<string, unknown>> {
  return run.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** An Output that keeps what would be printed. */
function recording(json: boolean): Output & { events: Array<Record<string, unknown>>; lines: string[] } {
  const events: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  return {
    json,
    events,
    lines,
    info: (line) => void lines.push(line),
    event: (value, human) => void (json ? events.push(value) : human !== undefined && lines.push(human)),
    result: (_value, human) => void lines.push(human),
    warn: (line) => void lines.push(`warning: ${line}`),
    error: (err) => void lines.push(`error: ${String(err)}`),
  };
}

const badRequest = (message: RegExp) => (err: unknown) => err instanceof ConnectError && err.code === 'BAD_REQUEST' && message.test(err.message);

describe('--direct-port and --no-direct', () => {
  test('a port of 1-65535 is taken as a number', () => {
    assert.deepEqual(parseDirectFlags({ directPort: '41641' }), { port: 41641 });
    assert.deepEqual(parseDirectFlags({ directPort: '1' }), { port: 1 });
    assert.deepEqual(parseDirectFlags({ directPort: '65535', direct: true }), { direct: true, port: 65535 });
    assert.deepEqual(parseDirectFlags({}), {});
    assert.deepEqual(parseDirectFlags({ direct: false }), { direct: false });
  });

  for (const port of ['70000', '65536', '0', '-1', 'abc', '1.5', '', '1e3', '0x50']) {
    test(`refuses --direct-port "${port}" naming the flag and the range`, () => {
      assert.throws(() => parseDirectFlags({ directPort: port }), badRequest(new RegExp(`^--direct-port must be 1-65535, got "${port.replace('.', '\\.')}"$`)));
    });
  }

  test('refuses --direct-port with --no-direct', () => {
    assert.throws(() => parseDirectFlags({ direct: false, directPort: '41641' }), badRequest(/--direct-port and --no-direct contradict/));
  });
});

describe('CONNECT_DIRECT', () => {
  test('on and off (any case) are read; unset or empty is no preference', () => {
    assert.equal(readEnv({ CONNECT_DIRECT: 'off' }).direct, false);
    assert.equal(readEnv({ CONNECT_DIRECT: 'OFF' }).direct, false);
    assert.equal(readEnv({ CONNECT_DIRECT: 'on' }).direct, true);
    assert.equal(readEnv({}).direct, undefined);
    assert.equal(readEnv({ CONNECT_DIRECT: '' }).direct, undefined);
  });

  for (const value of ['maybe', '1', 'true', 'no']) {
    test(`refuses CONNECT_DIRECT=${value} naming the variable and its values`, () => {
      assert.throws(() => readEnv({ CONNECT_DIRECT: value }), badRequest(new RegExp(`^CONNECT_DIRECT must be "on" or "off", got "${value}"$`)));
    });
  }
});

describe('the setting an agent runs with', () => {
  const none = {};
  test('on by default, with no port of its own', () => {
    assert.deepEqual(resolveDirect({}, none, none), { direct: true });
  });

  test('CONNECT_DIRECT is the default when no flag is given, and a flag wins over it', () => {
    assert.deepEqual(resolveDirect({}, { direct: false }, none), { direct: false, off: 'CONNECT_DIRECT=off' });
    assert.deepEqual(resolveDirect({ direct: true }, { direct: false }, none), { direct: true });
    assert.deepEqual(resolveDirect({ port: 41641 }, { direct: false }, none, 'expose'), { direct: { port: 41641 } });
    assert.deepEqual(resolveDirect({ direct: false }, { direct: true }, none), { direct: false, off: '--no-direct' });
  });

  test('config.json (connect up --no-direct, --direct-port) comes after the flags and CONNECT_DIRECT', () => {
    assert.deepEqual(resolveDirect({}, none, { direct: false }), { direct: false, off: 'connect up --no-direct' });
    assert.deepEqual(resolveDirect({}, { direct: true }, { direct: false }), { direct: true });
    assert.deepEqual(resolveDirect({}, none, { directPort: 41641 }, 'expose'), { direct: { port: 41641 } });
    assert.deepEqual(resolveDirect({ port: 5000 }, none, { directPort: 41641 }, 'daemon'), { direct: { port: 5000 } });
    assert.deepEqual(resolveDirect({}, { direct: false }, { directPort: 41641 }), { direct: false, off: 'CONNECT_DIRECT=off' });
  });

  test('a reach process takes no port: config.json\'s port belongs to the exposing agents', () => {
    assert.deepEqual(resolveDirect({}, none, { directPort: 41641 }, 'reach'), { direct: true });
  });

  test('the CLI always passes direct to the SDK explicitly, so the SDK\'s own reading of CONNECT_DIRECT never decides', () => {
    const config: AgentConfig = { hubUrl: 'https://hub.example.com', agentId: 'a', workspaceId: 'w', label: 'l', token: 't', tokenExpiresAt: '2030-01-01T00:00:00Z' };
    const ctx = (env: NodeJS.ProcessEnv) => ({ out: recording(false), home: '/nonexistent', env: readEnv(env) });
    assert.equal(agentOptions(ctx({ CONNECT_DIRECT: 'off' }), config, () => undefined).direct, false);
    assert.equal(agentOptions(ctx({ CONNECT_DIRECT: 'on' }), config, () => undefined).direct, true);
    assert.equal(agentOptions(ctx({}), config, () => undefined).direct, true);
    assert.deepEqual(agentOptions(ctx({}), { ...config, directPort: 41641 }, () => undefined).direct, { port: 41641 });
    assert.equal(agentOptions(ctx({}), { ...config, direct: false }, () => undefined).direct, false);
    assert.equal(agentOptions(ctx({ CONNECT_DIRECT: 'off' }), config, () => undefined, resolveDirect({ direct: true }, { direct: false }, config)).direct, true);
  });
});

describe('connect up remembers the setting in config.json', () => {
  test('--no-direct turns off and keeps a remembered port; --direct and --direct-port turn on again', () => {
    assert.deepEqual(withDirect({}, { direct: false }), { direct: false });
    assert.deepEqual(withDirect({ directPort: 41641 }, { direct: false }), { direct: false, directPort: 41641 });
    assert.deepEqual(withDirect({ direct: false, directPort: 41641 }, { direct: true }), { directPort: 41641 });
    assert.deepEqual(withDirect({ direct: false }, { port: 5000 }), { directPort: 5000 });
    assert.deepEqual(withDirect({ direct: false }, {}), { direct: false });
  });
});

const direct: ReachPath = { name: 'prod-db', mode: 'direct', via: '10.0.0.2:41641' };
const relayed: ReachPath = { name: 'prod-db', mode: 'relay', reason: "the exposing agent's direct port did not answer (10.0.0.2:41641: timed out)" };

describe('what connect reach and connect expose print', () => {
  test('a reach prints one line per path change: direct via the address, or relayed through the hub and why', () => {
    const out = recording(false);
    printEvent(out, { type: 'path', ...direct });
    printEvent(out, { type: 'path', ...relayed });
    printEvent(out, { type: 'path', name: 'prod-db', mode: 'relay' });
    assert.equal(out.lines.length, 3);
    assert.match(out.lines[0]!, /prod-db: direct via 10\.0\.0\.2:41641$/);
    assert.match(out.lines[1]!, /prod-db: relayed through the hub: the exposing agent's direct port did not answer \(10\.0\.0\.2:41641: timed out\)$/);
    assert.match(out.lines[2]!, /prod-db: relayed through the hub$/);
  });

  test('with --json a path change is an event line with its fields', () => {
    const out = recording(true);
    const event: AgentEvent = { type: 'path', ...relayed };
    printEvent(out, event);
    assert.deepEqual(out.events, [event]);
  });

  test('a reason from the hub with control characters is one line without them', () => {
    const line = describePath({ name: 'prod-db', mode: 'relay', reason: 'bad\u001b[2J\u0007\nforged line', via: '\u001b]0;x' });
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f]/);
    assert.match(line, /^prod-db: relayed through the hub: bad \[2J forged line$/);
  });

  test('with direct paths off, an expose says so once and a reach says its streams are relayed, naming the setting', () => {
    const expose = recording(false);
    printDirectOff(expose, { direct: false, off: '--no-direct' }, { command: 'expose', name: 'prod-db' });
    assert.deepEqual(expose.lines, ['direct connections off (--no-direct)']);
    const reach = recording(true);
    printDirectOff(reach, { direct: false, off: 'CONNECT_DIRECT=off' }, { command: 'reach', name: 'prod-db' });
    assert.deepEqual(reach.events, [{ type: 'path', name: 'prod-db', mode: 'relay', reason: 'direct paths are off on this agent (CONNECT_DIRECT=off)' }]);
    const on = recording(false);
    printDirectOff(on, { direct: true }, { command: 'expose', name: 'prod-db' });
    assert.deepEqual(on.lines, []);
  });

  test('an expose prints its direct port', () => {
    const out = recording(false);
    printEvent(out, { type: 'direct_listening', host: '0.0.0.0', port: 41641 });
    assert.match(out.lines[0]!, /direct connections on port 41641$/);
    const json = recording(true);
    printEvent(json, { type: 'direct_listening', host: '0.0.0.0', port: 41641 });
    assert.deepEqual(json.events, [{ type: 'direct_listening', host: '0.0.0.0', port: 41641 }]);
  });
});

describe('run records and connect status', () => {
  const agent = { paths: (): ReachPath[] => [direct, { ...relayed, name: 'cache' }] };

  test('a reach record carries its agent\'s current path; an expose record its direct port or why it has none', () => {
    assert.deepEqual(directOfRecord(agent, { command: 'reach', name: 'prod-db' }, undefined, { direct: true }), { path: direct });
    assert.deepEqual(directOfRecord(agent, { command: 'reach', name: 'other' }, undefined, { direct: true }), {});
    // The SDK's paths() says "--no-direct" when off; the record names the setting that turned them off.
    assert.deepEqual(directOfRecord(agent, { command: 'reach', name: 'prod-db' }, undefined, { direct: false, off: 'connect up --no-direct' }), {
      path: { name: 'prod-db', mode: 'relay', reason: 'direct paths are off on this agent (connect up --no-direct)' },
    });
    assert.deepEqual(directOfRecord(agent, { command: 'expose', name: 'prod-db' }, { host: '0.0.0.0', port: 41641 }, { direct: true }), { direct: { host: '0.0.0.0', port: 41641 } });
    assert.deepEqual(directOfRecord(agent, { command: 'expose', name: 'prod-db' }, undefined, { direct: false, off: '--no-direct' }), { direct: { off: '--no-direct' } });
  });

  test('the PATH column says direct via the address, relayed and why, the direct port, or off and why', () => {
    assert.equal(pathColumn({ command: 'reach', path: direct }), 'direct via 10.0.0.2:41641');
    assert.equal(pathColumn({ command: 'reach', path: relayed }), `relayed: ${relayed.reason}`);
    assert.equal(pathColumn({ command: 'reach' }), '');
    assert.equal(pathColumn({ command: 'expose', direct: { host: '0.0.0.0', port: 41641 } }), 'direct on port 41641');
    assert.equal(pathColumn({ command: 'expose', direct: { off: 'CONNECT_DIRECT=off' } }), 'direct off (CONNECT_DIRECT=off)');
  });

  test('the table shows each running service\'s path; services remembered only show none', () => {
    const base = { pid: 4242, startedAt: '2026-12-07T21:00:00Z', state: 'connected' as const };
    const runs: RunRecord[] = [
      { ...base, command: 'reach', name: 'prod-db', host: '127.0.0.1', port: 5432, path: direct },
      { ...base, command: 'reach', name: 'cache', host: '127.0.0.1', port: 6379, path: { ...relayed, name: 'cache' } },
      { ...base, command: 'expose', name: 'web', target: 'localhost:8080', direct: { host: '0.0.0.0', port: 41641 } },
      { ...base, command: 'expose', name: 'api', target: 'localhost:3000', direct: { off: '--no-direct' } },
    ];
    const services = localServices(runs, [{ kind: 'reach', name: 'old', host: '127.0.0.1', port: 7000 }]);
    assert.deepEqual(services.find((s) => s.name === 'prod-db')?.path, direct);
    assert.deepEqual(services.find((s) => s.name === 'api')?.direct, { off: '--no-direct' });
    const lines = servicesTable(services).split('\n');
    assert.match(lines[0]!, /KIND\s+SERVICE\s+DETAIL\s+STATE\s+PATH\s+TRAFFIC\s+PID/);
    const row = (name: string) => lines.find((l) => l.split(/\s+/)[1] === name) ?? '';
    assert.match(row('prod-db'), /connected\s+direct via 10\.0\.0\.2:41641\s+4242/);
    assert.match(row('cache'), /connected\s+relayed: the exposing agent's direct port did not answer/);
    assert.match(row('web'), /direct on port 41641/);
    assert.match(row('api'), /direct off \(--no-direct\)/);
    assert.match(row('old'), /stopped\s*$/);
  });
});

describe('the built CLI', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-direct-'));
    // The test runner sets CONNECT_DIRECT=off for every test; these start from no preference.
    env = { CONNECT_HOME: home, CONNECT_HUB_URL: '', CONNECT_DIRECT: '' };
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  for (const args of [
    ['expose', 'localhost:5432', '--direct-port', '70000'],
    ['5432', '--direct-port', 'abc'],
    ['daemon', 'run', '--direct-port', '0'],
    ['up', '--hub', 'http://127.0.0.1:1', '--direct-port', '65536'],
  ]) {
    test(`\`connect ${args.join(' ')}\`: BAD_REQUEST naming --direct-port, exit 1, before the missing config`, async () => {
      const run = await cli(['--json', ...args], env);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const [error] = jsonLines(run);
      assert.equal(error?.code, 'BAD_REQUEST');
      assert.match(String(error?.message), /^--direct-port must be 1-65535, got /);
    });
  }

  test('--no-direct with --direct-port: BAD_REQUEST, exit 1', async () => {
    const run = await cli(['expose', 'localhost:5432', '--no-direct', '--direct-port', '41641'], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: --direct-port and --no-direct contradict each other; pass one of them \(BAD_REQUEST\)\n$/);
  });

  test('CONNECT_DIRECT=maybe: BAD_REQUEST naming the variable, exit 1, on any command', async () => {
    for (const args of [['ls'], ['reach', 'prod-db'], ['status']]) {
      const run = await cli(args, { ...env, CONNECT_DIRECT: 'maybe' });
      assert.equal(run.code, 1, args.join(' '));
      assert.equal(run.stderr, 'error: CONNECT_DIRECT must be "on" or "off", got "maybe" (BAD_REQUEST)\n');
    }
  });

  test('reach takes --no-direct but not --direct-port (a usage error, exit 2)', async () => {
    const accepted = await cli(['--json', 'reach', 'prod-db', '--no-direct'], env);
    assert.equal(accepted.code, 1);
    assert.equal(jsonLines(accepted)[0]?.code, 'NOT_ENROLLED');
    const refused = await cli(['reach', 'prod-db', '--direct-port', '41641'], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /unknown option '--direct-port'/);
  });

  test('the flags are in the help of expose, reach, up and daemon run', async () => {
    for (const [command, flags] of [
      [['expose'], ['--no-direct', '--direct-port <port>']],
      [['reach'], ['--no-direct']],
      [['up'], ['--no-direct', '--direct-port <port>']],
      [['daemon', 'run'], ['--no-direct', '--direct-port <port>']],
    ] as const) {
      const run = await cli([...command, '--help'], env);
      assert.equal(run.code, 0);
      for (const flag of flags) assert.ok(run.stdout.includes(flag), `${command.join(' ')} --help lacks ${flag}`);
    }
  });

  describe('with a config folder whose hub does not answer', () => {
    let folder: string;
    const config = { hubUrl: 'http://127.0.0.1:1', agentId: 'agent-1', workspaceId: 'ws-1', label: 'laptop', token: 'pc_agent_x', tokenExpiresAt: '2030-01-01T00:00:00.000Z' };
    const readConfigFile = async () => JSON.parse(await readFile(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
    before(async () => {
      folder = join(home, 'enrolled');
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, 'config.json'), JSON.stringify(config));
    });

    test('connect up --no-direct / --direct-port / --direct rewrite config.json even when the hub is away', async () => {
      const off = await cli(['--json', 'up', '--no-direct'], { ...env, CONNECT_HOME: folder });
      assert.equal(jsonLines(off)[0]?.type, 'direct_setting');
      assert.equal(jsonLines(off)[0]?.direct, false);
      assert.equal((await readConfigFile()).direct, false);
      assert.equal((await readConfigFile()).token, 'pc_agent_x');

      const port = await cli(['up', '--direct-port', '41641'], { ...env, CONNECT_HOME: folder });
      assert.match(port.stdout, /direct paths on; exposing agents here take direct connections on port 41641 \(saved in /);
      assert.equal((await readConfigFile()).directPort, 41641);
      assert.equal((await readConfigFile()).direct, undefined);

      await cli(['up', '--no-direct'], { ...env, CONNECT_HOME: folder });
      const status = await cli(['status'], { ...env, CONNECT_HOME: folder });
      assert.match(status.stdout, /^direct  off for agents started here \(connect up --no-direct\); every stream goes through the hub$/m);
      const overridden = await cli(['status'], { ...env, CONNECT_HOME: folder, CONNECT_DIRECT: 'on' });
      assert.match(overridden.stdout, /^direct  on, exposing agents listen on port 41641; /m);

      await cli(['up', '--direct'], { ...env, CONNECT_HOME: folder });
      assert.equal((await readConfigFile()).direct, undefined);
      assert.equal((await readConfigFile()).directPort, 41641);
    });

    test('connect daemon install hands CONNECT_DIRECT to the daemon when it is set', async () => {
      const root = join(home, 'root');
      const off = await cli(['--json', 'daemon', 'install', '--platform', 'linux', '--root', root], { ...env, CONNECT_HOME: folder, CONNECT_DIRECT: 'off' });
      assert.equal(off.code, 0, off.stdout + off.stderr);
      const file = (JSON.parse(off.stdout) as { file: string }).file;
      assert.match(await readFile(file, 'utf8'), /^Environment="CONNECT_DIRECT=off"$/m);
      await cli(['--json', 'daemon', 'install', '--platform', 'linux', '--root', root], { ...env, CONNECT_HOME: folder, CONNECT_DIRECT: '' });
      assert.doesNotMatch(await readFile(file, 'utf8'), /CONNECT_DIRECT/);
    });

    test('connect status shows the paths the running processes wrote in their run records, and --json carries them', async () => {
      // A record of this (live) test process, as a running `connect reach` and `connect expose` write them.
      const base = { pid: process.pid, startedAt: new Date().toISOString(), state: 'connected' as const, hubUrl: config.hubUrl };
      await updateRun(folder, { ...base, command: 'reach', name: 'prod-db', host: '127.0.0.1', port: 5432, path: direct });
      await updateRun(folder, { ...base, command: 'reach', name: 'cache', host: '127.0.0.1', port: 6379, path: { ...relayed, name: 'cache' } });
      await updateRun(folder, { ...base, command: 'expose', name: 'web', target: 'localhost:8080', direct: { off: '--no-direct' } });

      const human = await cli(['status'], { ...env, CONNECT_HOME: folder });
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /prod-db\s+127\.0\.0\.1:5432\s+connected\s+direct via 10\.0\.0\.2:41641/);
      assert.match(human.stdout, /cache\s+127\.0\.0\.1:6379\s+connected\s+relayed: the exposing agent's direct port did not answer/);
      assert.match(human.stdout, /web\s+localhost:8080\s+connected\s+direct off \(--no-direct\)/);

      const json = await cli(['--json', 'status'], { ...env, CONNECT_HOME: folder });
      const result = jsonLines(json)[0] as { services: Array<{ name: string; path?: ReachPath; direct?: unknown }> };
      assert.deepEqual(result.services.find((s) => s.name === 'prod-db')?.path, direct);
      assert.deepEqual(result.services.find((s) => s.name === 'cache')?.path, { ...relayed, name: 'cache' });
      assert.deepEqual(result.services.find((s) => s.name === 'web')?.direct, { off: '--no-direct' });
    });
  });
});
