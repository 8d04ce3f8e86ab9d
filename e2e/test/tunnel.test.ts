/** The core path with real processes: a hub, agent A exposing, agent B reaching, real clients through the tunnel. */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { echoServer, enrolAgent, removeDirs, roundTrip, startHubProcess, type AgentHome, type HubProcess, type TcpServer } from '../src/index.js';

const run = promisify(execFile);

describe('expose on A, reach on B', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let echo: TcpServer;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'server-a' }), enrolAgent(hub, { label: 'laptop-b' })]);
    echo = await echoServer();
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home);
  });

  test('bytes sent into the reach port come back from the exposed echo server', async () => {
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, 'echo');
    stops.push(() => exposer.stop());
    const { proc, port } = await b.reach('echo', ['--port', '0']);
    stops.push(() => proc.stop());
    const reply = await roundTrip(port, 'hello through the hub\n');
    assert.equal(reply.toString(), 'hello through the hub\n');
  });

  test('psql on B runs a query against the PostgreSQL server exposed by A', async () => {
    const exposer = await a.expose('127.0.0.1:5432', 'prod-db');
    stops.push(() => exposer.stop());
    const { proc, port } = await b.reach('prod-db', ['--port', '0']);
    stops.push(() => proc.stop());
    const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-tAc', 'select 40 + 2'], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
    });
    assert.equal(stdout.trim(), '42');
  });

  test('connect ls on B lists what A exposes, with the agent and status', async () => {
    const listing = b.run(['ls']);
    assert.equal(listing.code, 0, listing.stderr);
    const { services } = listing.json() as { services: Array<{ name: string; agentLabel: string; online: boolean }> };
    const echoRow = services.find((s) => s.name === 'echo');
    assert.ok(echoRow, listing.stdout);
    assert.equal(echoRow.agentLabel, 'server-a');
    assert.equal(echoRow.online, true);
  });
});
