/**
 * The CLI's answers, each with the fix in it, from real `connect` processes against a real hub: health in `connect ls`
 * and `connect reach`, "did you mean" for a misspelt service, `connect audit` with an agent token, `connect up` with
 * nobody at a terminal, a second reach of one service, and --json as one object per line on every command.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { listRuns } from '@private-connect/sdk';
import {
  CONNECT_MAIN,
  echoServer,
  enrolAgent,
  eventually,
  freePort,
  removeDirs,
  startHubProcess,
  tempDir,
  type AgentHome,
  type HubProcess,
  type Proc,
  type TcpServer,
} from '../src/index.js';

/** `connect ARGS` for people (no --json, no colours, stdin and stdout not terminals), with its exit code and output. */
function human(agent: { home: string }, args: string[], timeout = 30_000): { code: number; stdout: string; stderr: string; ms: number } {
  const started = Date.now();
  const run = spawnSync(process.execPath, [CONNECT_MAIN, ...args], {
    env: { ...process.env, CONNECT_HOME: agent.home, NO_COLOR: '1', CONNECT_RECONNECT_MAX_MS: '500' },
    encoding: 'utf8',
    timeout,
  });
  return { code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr, ms: Date.now() - started };
}

/** Every line of `text` is one JSON object; returns them. */
function jsonLines(text: string, what: string): Array<Record<string, unknown>> {
  const lines = text.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0, `${what} printed nothing`);
  return lines.map((line) => {
    let value: unknown;
    assert.doesNotThrow(() => (value = JSON.parse(line)), `${what}: a line that is not JSON: ${JSON.stringify(line)}\n${text}`);
    assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what}: not an object: ${line}`);
    return value as Record<string, unknown>;
  });
}

describe('connect answers with the fix', () => {
  let hub: HubProcess;
  let exposer: AgentHome;
  let reacher: AgentHome;
  let echo: TcpServer;
  const procs: Proc[] = [];

  before(async () => {
    hub = await startHubProcess();
    exposer = await enrolAgent(hub, { label: 'db-box' });
    reacher = await enrolAgent(hub, { label: 'laptop' });
    echo = await echoServer();
    procs.push(await exposer.expose(`127.0.0.1:${echo.port}`, 'prod-db'));
    // A target nobody listens on: its agent's first check fails, and says so to the hub.
    const closed = await freePort();
    const failing = await exposer.expose(`127.0.0.1:${closed}`, 'cache', ['--check-interval', '1']);
    procs.push(failing);
    await failing.waitFor((l) => l.type === 'health' && l.name === 'cache' && l.ok === false, 20_000, 'the failing health report of cache');
    // One that was exposed and whose agent then stopped: offline.
    const gone = await exposer.expose(`127.0.0.1:${echo.port}`, 'old-api');
    await gone.stop();
  });
  after(async () => {
    for (const proc of procs) await proc.stop();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, exposer?.home, reacher?.home);
  });

  test('ls shows online, failing its checks with the reason, and offline with the reason', () => {
    const run = human(reacher, ['ls']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^prod-db +127\.0\.0\.1:\d+ +db-box +online *$/m, run.stdout);
    assert.match(run.stdout, /^cache +127\.0\.0\.1:\d+ +db-box +failing checks: TCP .*ECONNREFUSED/m, run.stdout);
    assert.match(run.stdout, /^old-api +127\.0\.0\.1:\d+ +db-box +offline: agent db-box is not connected/m, run.stdout);
  });

  test('ls --json: one line, and each service says its status and reason', () => {
    const run = reacher.run(['ls']);
    assert.equal(run.code, 0, run.stderr);
    const [only, ...more] = jsonLines(run.stdout, 'ls --json');
    assert.equal(more.length, 0, `more than one line:\n${run.stdout}`);
    const services = only!.services as Array<{ name: string; status: string; reason?: string }>;
    const byName = new Map(services.map((s) => [s.name, s]));
    assert.equal(byName.get('prod-db')?.status, 'online');
    assert.equal(byName.get('cache')?.status, 'failing');
    assert.match(byName.get('cache')?.reason ?? '', /TCP .*ECONNREFUSED/);
    assert.equal(byName.get('old-api')?.status, 'offline');
  });

  test('reach of a service whose target fails its checks says so instead of a plain ✓', async () => {
    const proc = reacher.start(['reach', 'cache', '--port', '0']);
    procs.push(proc);
    const listening = await proc.waitFor((l) => l.type === 'listening' && l.name === 'cache', 20_000, 'listening');
    assert.equal((listening.service as { health?: { ok: boolean } }).health?.ok, false, JSON.stringify(listening));
    await proc.stop();
    // For people: the listening line warns, naming the failed check.
    const text = spawnSync(process.execPath, [CONNECT_MAIN, 'reach', 'cache', '--port', '0'], {
      env: { ...process.env, CONNECT_HOME: reacher.home, NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 4000,
      killSignal: 'SIGINT',
    });
    assert.match(text.stdout, /cache listens on 127\.0\.0\.1:\d+, but its target fails its checks: TCP .*ECONNREFUSED/, text.stdout + text.stderr);
    assert.doesNotMatch(text.stdout, /✓ cache is reachable/);
  });

  test('reach of a misspelt name suggests the close one and connect ls', () => {
    const run = human(reacher, ['reach', 'prod-dbb']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /Service not found: prod-dbb; did you mean prod-db\?/);
    assert.match(run.stderr, /connect ls/);
    const far = human(reacher, ['reach', 'zzzzzzzz']);
    assert.equal(far.code, 1);
    assert.doesNotMatch(far.stderr, /did you mean/);
    assert.match(far.stderr, /connect ls/);
  });

  test('audit with the agent token says to pass --api-key or sign in', () => {
    const run = human(reacher, ['audit']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /FORBIDDEN/);
    assert.match(run.stderr, /--api-key/);
    assert.match(run.stderr, /sign in/);
  });

  test('up without --api-key and without a terminal fails at once with the two ways to enrol', async () => {
    const home = await tempDir('no-tty');
    try {
      const run = human({ home }, ['up', '--hub', hub.url], 20_000);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stderr, /--api-key/);
      assert.match(run.stderr, /--device/);
      assert.match(run.stderr, /NO_TERMINAL/);
      assert.doesNotMatch(run.stdout, /approve the code/);
    } finally {
      await removeDirs(home);
    }
  });

  test('a second reach of a service this config folder already reaches says where, and exits 1', async () => {
    const first = await reacher.reach('prod-db', ['--port', '0']);
    procs.push(first.proc);
    // Its run record (what `connect status` reads) is written right after it listens.
    await eventually(async () => assert.ok((await listRuns(reacher.home)).some((r) => r.command === 'reach' && r.name === 'prod-db')));
    const run = human(reacher, ['reach', 'prod-db']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, new RegExp(`prod-db is already reachable on 127\\.0\\.0\\.1:${first.port} \\(connect reach in process \\d+\\)`));
    assert.match(run.stderr, /ALREADY_REACHED/);
    const json = reacher.run(['reach', 'prod-db']);
    assert.equal(json.code, 1);
    // Each line is one object (the connection to the hub, which answered for the name first), and one error.
    assert.deepEqual(jsonLines(json.stdout, 'reach --json').filter((l) => l.type === 'error').map((l) => l.code), ['ALREADY_REACHED']);
    await first.proc.stop();
  });

  test('--json prints one object per line on every command', () => {
    const commands = [
      ['ls'],
      ['status'],
      ['doctor'],
      ['trust'],
      ['up'],
      ['share', 'ls'],
      ['link', 'ls'],
      ['invitations', '--api-key', hub.apiKey],
      ['audit', '--api-key', hub.apiKey, '--limit', '2'],
      ['daemon', 'status'],
      ['reach', 'prod-db', '--check'],
    ];
    for (const args of commands) {
      const run = reacher.run(args);
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      jsonLines(run.stdout, args.join(' '));
    }
  });
});
