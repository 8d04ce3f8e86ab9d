/**
 * Hub-side TCP ports (`connect expose ... --hub-port`): a client with no agent (psql, a raw socket) connects to a
 * port on the hub and talks to the exposed service. The port comes from HUB_TCP_PORT_RANGE, survives a hub
 * restart, skips a port another program holds, and a full range is refused with HUB_PORTS_EXHAUSTED.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { echoServer, enrolAgent, eventually, freePortRange, removeDirs, roundTrip, startHubProcess, type AgentHome, type HubProcess, type TcpServer } from '../src/index.js';

const run = promisify(execFile);

/** Connects and waits for the socket to end or close without data (the hub refusing an offline service). */
function closesWithoutData(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', (d) => (bytes += d.length));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(bytes));
    setTimeout(() => reject(new Error('the hub kept the connection open')), 10_000).unref();
  });
}

describe('hub TCP ports for clients without an agent', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let echo: TcpServer;
  let first = 0;
  let holder: net.Server | undefined;
  const stops: Array<() => Promise<unknown>> = [];

  const hubEnv = () => ({ HUB_TCP_PORT_RANGE: `${first}-${first + 2}`, HUB_TCP_BIND: '127.0.0.1' });

  before(async () => {
    first = await freePortRange(3, 24000, 8000);
    hub = await startHubProcess({ env: hubEnv() });
    a = await enrolAgent(hub, { label: 'db-server' });
    echo = await echoServer();
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    holder?.close();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home);
  });

  test('psql with no agent reaches the PostgreSQL server through the hub port', async () => {
    const exposer = await a.expose('127.0.0.1:5432', 'prod-db', ['--hub-port']);
    stops.push(() => exposer.stop());
    const exposed = exposer.lines.find((l) => typeof l === 'object' && l.type === 'exposed') as { service: { hubPort?: number } };
    assert.equal(exposed.service.hubPort, first, 'the first port of the range');
    const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(first), '-U', 'postgres', '-d', 'postgres', '-tAc', 'select 40 + 2'], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
    });
    assert.equal(stdout.trim(), '42');
    const listing = a.run(['ls']);
    const row = (listing.json() as { services: Array<{ name: string; hubPort?: number }> }).services.find((s) => s.name === 'prod-db');
    assert.equal(row?.hubPort, first, 'connect ls shows the hub port');
  });

  test('a port another program holds is skipped; a full range is refused with HUB_PORTS_EXHAUSTED', async () => {
    holder = net.createServer();
    await new Promise<void>((resolve) => holder!.listen(first + 1, '127.0.0.1', resolve));
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, 'echo', ['--hub-port']);
    stops.push(() => exposer.stop());
    const exposed = exposer.lines.find((l) => typeof l === 'object' && l.type === 'exposed') as { service: { hubPort?: number } };
    assert.equal(exposed.service.hubPort, first + 2);
    assert.equal((await roundTrip(first + 2, 'through the hub port\n')).toString(), 'through the hub port\n');

    const third = a.start(['expose', `127.0.0.1:${echo.port}`, '--name', 'echo-two', '--hub-port']);
    const code = await third.exited;
    assert.notEqual(code, 0);
    const error = third.lines.find((l) => typeof l === 'object' && l.type === 'error') as { code: string; message: string } | undefined;
    assert.equal(error?.code, 'HUB_PORTS_EXHAUSTED', JSON.stringify(third.lines) + third.stderr());
    assert.match(error!.message, new RegExp(`${first}-${first + 2}`));
  });

  test('the port stays with its service across a hub restart; an offline service closes connections at once', async () => {
    const { port, dataDir, apiKey } = hub;
    await hub.stop();
    hub = await startHubProcess({ port, dataDir, apiKey, env: hubEnv() });
    // The agent reconnects by itself and exposes echo again; the hub listens on the same port from its start.
    await eventually(async () => assert.equal((await roundTrip(first + 2, 'after restart\n', 3000)).toString(), 'after restart\n'));

    const audit = await fetch(`${hub.url}/v1/audit?action=hub_port.connect&limit=50`, { headers: { authorization: `Bearer ${apiKey}` } });
    const events = ((await audit.json()) as { events: Array<{ ip: string; metadata: { port: number } }> }).events;
    assert.ok(events.some((e) => e.metadata.port === first + 2 && e.ip.includes('127.0.0.1')), 'each connection is in the audit log with its address');

    for (const stop of stops.splice(0)) await stop();
    await eventually(async () => assert.equal(await closesWithoutData(first + 2), 0));
  });
});
