/**
 * `connect daemon run` as a real process against a real hub: it restores what `connect expose` and `connect reach`
 * remembered in state.json, comes back on the same reach port after kill -9, and drops what `connect down` forgets.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { echoServer, enrolAgent, removeDirs, roundTrip, startHubProcess, type AgentHome, type HubProcess, type Proc, type TcpServer } from '../src/index.js';

interface StatusJson {
  services: Array<{ kind: string; name: string; detail: string; state: string; daemon?: boolean; pid?: number; traffic?: { connections: number; bytesIn: number; bytesOut: number } }>;
}

describe('connect daemon run', () => {
  let hub: HubProcess;
  let agent: AgentHome;
  let echo: TcpServer;
  const procs: Proc[] = [];

  before(async () => {
    hub = await startHubProcess();
    agent = await enrolAgent(hub, { label: 'always-on' });
    echo = await echoServer();
  });

  after(async () => {
    for (const proc of procs) await proc.kill();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  const startDaemon = async (): Promise<Proc> => {
    const daemon = agent.start(['daemon', 'run']);
    procs.push(daemon);
    await daemon.waitFor((l) => l.type === 'restored' && l.kind === 'expose' && l.name === 'echo', 20_000, 'restored expose echo');
    await daemon.waitFor((l) => l.type === 'restored' && l.kind === 'reach' && l.name === 'echo', 20_000, 'restored reach echo');
    return daemon;
  };

  let reachPort: number;

  test('connect expose and connect reach remember what they run in state.json, and it stays after they stop', async () => {
    const exposer = await agent.expose(`127.0.0.1:${echo.port}`, 'echo');
    const { proc: reacher, port } = await agent.reach('echo');
    reachPort = port;
    assert.equal((await roundTrip(port, 'before the daemon\n')).toString(), 'before the daemon\n');
    await reacher.stop();
    await exposer.stop();
    const state = JSON.parse(await readFile(join(agent.home, 'state.json'), 'utf8')) as { services: unknown[] };
    assert.deepEqual(state.services, [
      { kind: 'expose', name: 'echo', target: `127.0.0.1:${echo.port}` },
      { kind: 'reach', name: 'echo', host: '127.0.0.1', port },
    ]);
  });

  test('the daemon restores both on the same port; traffic flows and status shows it', async () => {
    const daemon = await startDaemon();
    assert.equal((await roundTrip(reachPort, 'hello from the daemon\n')).toString(), 'hello from the daemon\n');

    const daemonStatus = agent.run(['daemon', 'status']);
    assert.equal(daemonStatus.code, 0, daemonStatus.stderr);
    const ds = daemonStatus.json() as { running: boolean; pid: number; services: Array<{ name: string; command: string }> };
    assert.equal(ds.running, true);
    assert.equal(ds.pid, daemon.child.pid);
    assert.deepEqual(ds.services.map((s) => `${s.command} ${s.name}`).sort(), ['expose echo', 'reach echo']);

    // Traffic is written every couple of seconds: wait for the reach's bytes to show.
    const deadline = Date.now() + 10_000;
    let reach: StatusJson['services'][number] | undefined;
    while (Date.now() < deadline) {
      reach = (agent.run(['status']).json() as StatusJson).services.find((s) => s.kind === 'reach' && s.name === 'echo');
      if (reach?.traffic && reach.traffic.bytesIn > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(reach?.state, 'connected');
    assert.equal(reach?.daemon, true);
    assert.equal(reach?.detail, `127.0.0.1:${reachPort}`);
    assert.ok(reach?.traffic && reach.traffic.connections >= 1 && reach.traffic.bytesIn >= 'hello from the daemon\n'.length, JSON.stringify(reach));
  });

  test('after kill -9 a new daemon brings the same reach port back with no other command', async () => {
    const first = procs.at(-1)!;
    assert.equal(await first.kill(), 'SIGKILL');
    await assert.rejects(roundTrip(reachPort, 'nobody home\n'));
    await startDaemon();
    assert.equal((await roundTrip(reachPort, 'back again\n')).toString(), 'back again\n');
    const log = await readFile(join(agent.home, 'daemon.log'), 'utf8');
    assert.equal(log.split('\n').filter((l) => l.includes('"daemon_started"')).length, 2, 'both daemons logged to daemon.log');
  });

  test('connect down echo stops the daemon\'s echo and forgets it; the daemon keeps running', async () => {
    const daemon = procs.at(-1)!;
    const down = agent.run(['down', 'echo']);
    assert.equal(down.code, 0, down.stdout + down.stderr);
    const result = down.json() as { forgotten: unknown[]; daemonNotified: boolean; stopped: Array<{ daemon?: boolean }> };
    assert.equal(result.forgotten.length, 2);
    assert.equal(result.daemonNotified, true);
    assert.equal(result.stopped.filter((s) => s.daemon).length, 2);
    await daemon.waitFor((l) => l.type === 'reloaded', 10_000, 'reloaded');
    await assert.rejects(roundTrip(reachPort, 'gone\n'));
    assert.equal(daemon.child.exitCode, null);
    const state = JSON.parse(await readFile(join(agent.home, 'state.json'), 'utf8')) as { services: unknown[] };
    assert.deepEqual(state.services, []);
    const listing = agent.run(['ls']).json() as { services: Array<{ name: string }> };
    assert.equal(listing.services.some((s) => s.name === 'echo'), false, 'the expose was removed from the workspace');
    assert.equal(await daemon.stop(), 0);
    assert.equal((agent.run(['daemon', 'status']).json() as { running: boolean }).running, false);
  });
});
