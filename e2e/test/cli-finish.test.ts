/**
 * The CLI's finish against real hubs: `connect doctor` (live hub, stopped hub, expiring token, taken port), --json on
 * every listing command, and the single-file bundle run from a folder outside the repository.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '@private-connect/hub';
import {
  CONNECT_MAIN,
  echoServer,
  enrolAgent,
  enrolAgentAsync,
  removeDirs,
  startHubProcess,
  startInProcessHub,
  startProcess,
  tempDir,
  type AgentHome,
  type HubProcess,
  type TcpServer,
} from '../src/index.js';

const CONNECT_DIR = join(fileURLToPath(new URL('../../../', import.meta.url)), 'apps/connect');
const BUNDLE = join(CONNECT_DIR, 'dist/connect.mjs');

interface Doctor {
  ok: boolean;
  checks: Array<{ name: string; status: 'ok' | 'warn' | 'fail' | 'skip'; detail: string; fix?: string }>;
}
const check = (doctor: Doctor, name: string) => doctor.checks.find((c) => c.name === name);

describe('connect doctor and --json against a live hub', () => {
  let hub: HubProcess;
  let agent: AgentHome;
  let blocker: Server;
  const dirs: string[] = [];

  before(async () => {
    hub = await startHubProcess();
    agent = await enrolAgent(hub, { label: 'doctor-box' });
  });
  after(async () => {
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home, ...dirs);
  });

  test('doctor: every check ✓ against a live hub, exit 0', () => {
    const json = agent.run(['doctor']);
    const text = spawnSync(process.execPath, [CONNECT_MAIN, 'doctor'], { env: { ...process.env, CONNECT_HOME: agent.home, NO_COLOR: '1' }, encoding: 'utf8' });
    assert.equal(text.status, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /^✓ config /m);
    assert.match(text.stdout, /^✓ hub +http:\/\/127\.0\.0\.1:\d+ answers in \d+ ms$/m);
    assert.match(text.stdout, /^✓ token +valid until /m);
    assert.match(text.stdout, /^✓ clock +within a second of the hub's clock$/m);
    assert.match(text.stdout, /everything looks right/);
    assert.equal(json.code, 0);
    const doctor = json.json() as Doctor;
    assert.equal(doctor.ok, true);
    for (const name of ['config', 'hub', 'clock', 'token']) assert.equal(check(doctor, name)?.status, 'ok', JSON.stringify(doctor));
  });

  test('doctor: a remembered reach port held by another program is ✗ with the fix', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    await writeFile(join(agent.home, 'ports.json'), JSON.stringify({ 'prod-db': port }));
    const run = agent.run(['doctor']);
    assert.equal(run.code, 1);
    const conflict = check(run.json() as Doctor, `port ${port}`);
    assert.equal(conflict?.status, 'fail');
    assert.match(conflict!.detail, /prod-db: 127\.0\.0\.1:\d+ is taken by another program/);
    assert.match(conflict!.fix!, /connect reach prod-db --port <port>/);
    await writeFile(join(agent.home, 'ports.json'), '{}');
  });

  test('every listing command answers parseable JSON with --json', async () => {
    for (const args of [['ls'], ['status'], ['share', 'ls'], ['link', 'ls'], ['audit', '--api-key', hub.apiKey, '--limit', '3'], ['daemon', 'status'], ['doctor']]) {
      const run = agent.run(args);
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.doesNotThrow(() => run.json(), `${args.join(' ')} printed: ${run.stdout}`);
    }
  });

  test('the bundle runs from a folder outside the repository: --help, doctor, and an expose over the WebSocket', async () => {
    if (!existsSync(BUNDLE)) {
      const built = spawnSync('npx', ['rolldown', '-c', 'rolldown.config.mjs'], { cwd: CONNECT_DIR, encoding: 'utf8' });
      assert.equal(built.status, 0, built.stderr);
    }
    const dir = await tempDir('bundle');
    dirs.push(dir);
    const copy = join(dir, 'connect.mjs');
    await copyFile(BUNDLE, copy);
    const env = { ...process.env, CONNECT_HOME: agent.home, NO_COLOR: '1', NODE_PATH: '' };
    const help = spawnSync(process.execPath, [copy, '--help'], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: connect /);
    const doctor = spawnSync(process.execPath, [copy, '--json', 'doctor'], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(doctor.status, 0, doctor.stdout + doctor.stderr);
    assert.equal((JSON.parse(doctor.stdout) as Doctor).ok, true);

    const echo: TcpServer = await echoServer();
    const exposer = startProcess(process.execPath, [copy, '--json', 'expose', `127.0.0.1:${echo.port}`, '--name', 'bundled'], { CONNECT_HOME: agent.home }, 'bundle expose');
    try {
      await exposer.waitFor((l) => l.type === 'exposed', 20_000, 'exposed');
    } finally {
      await exposer.stop();
      await echo.close();
    }
  });

  test('doctor: a stopped hub is ✗ with what to check, exit 1', async () => {
    await hub.stop();
    const run = agent.run(['doctor']);
    assert.equal(run.code, 1);
    const hubCheck = check(run.json() as Doctor, 'hub');
    assert.equal(hubCheck?.status, 'fail');
    assert.match(hubCheck!.detail, /cannot reach the hub at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    assert.match(hubCheck!.fix!, /check that the hub runs .*curl http:\/\/127\.0\.0\.1:\d+\/healthz/);
    const human = spawnSync(process.execPath, [CONNECT_MAIN, 'doctor'], { env: { ...process.env, CONNECT_HOME: agent.home, NO_COLOR: '1' }, encoding: 'utf8' });
    assert.match(human.stdout, /^✗ hub /m);
    assert.match(human.stdout, /1 problem\(s\) found/);
  });
});

describe('connect doctor and the token clock', () => {
  test('a token that expires within 7 days is a warning with the fix, not a failure', async () => {
    const clock = new ManualClock(new Date());
    const hub = await startInProcessHub({ clock });
    const agent = await enrolAgentAsync(hub);
    try {
      clock.advance(24 * 24 * 60 * 60 * 1000);
      const run = await agent.run(['doctor']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const token = check(run.json() as Doctor, 'token');
      assert.equal(token?.status, 'warn');
      assert.match(token!.detail, /expires in 6 day\(s\)/);
      assert.equal(token!.fix, 'connect up --rotate-token');
    } finally {
      await hub.stop();
      await removeDirs(hub.dataDir, agent.home);
    }
  });
});
