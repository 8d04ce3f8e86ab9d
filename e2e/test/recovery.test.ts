/**
 * Recovery with real processes: the exposing agent killed and restarted, the hub restarted on the same address
 * and database, and stable local ports for `connect reach` across runs (remembered in ports.json).
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  connect,
  echoServer,
  enrolAgent,
  eventually,
  removeDirs,
  roundTrip,
  startHubProcess,
  type AgentHome,
  type HubProcess,
  type Proc,
  type TcpServer,
} from '../src/index.js';

/** How a connection to `port` ended: the bytes received and the socket error, if any. Rejects only if it does not end. */
async function connectionOutcome(port: number, payload: string, timeoutMs = 30_000): Promise<{ data: Buffer; error?: string }> {
  const socket = await connect(port);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the connection to port ${port} was still open after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: Error & { code?: string }) => (error = err.code ?? err.message));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ...(error ? { error } : {}) });
    });
    socket.write(payload);
  });
}

/** `promise`, or a failure naming `what` if it has not settled after `ms` (a guard against hanging, not a timing check). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still waiting for ${what} after ${ms} ms`)), ms)));
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** Resolves once `proc` printed `count` JSON events matching `match` in total. */
function waitForCount(proc: Proc, count: number, match: (l: Record<string, unknown>) => boolean, what: string): Promise<void> {
  const seen = () => proc.lines.filter((l) => typeof l === 'object' && match(l)).length;
  return eventually(async () => {
    if (seen() < count) throw new Error(`${what}: seen ${seen()} of ${count}\n${proc.lines.map((l) => JSON.stringify(l)).join('\n')}`);
  }, 30_000, 100);
}

function countEvents(proc: Proc, type: string): number {
  return proc.lines.filter((l) => typeof l === 'object' && l.type === type).length;
}

/** Listens on `host` at a random port from 20000-29999 that is also free on 127.0.0.1. */
async function listenOnUnusualPort(host: string, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const probe = net.createServer();
    const freeOnLoopback = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
    });
    if (!freeOnLoopback) continue;
    const server = net.createServer(onConnection);
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen({ port, host, exclusive: true }, () => resolve(true));
    });
    if (listening) return server;
  }
  throw new Error('no free port in 20000-29999');
}

function isAlive(proc: Proc): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null;
}

describe('recovery', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let echo: TcpServer;
  const procs: Proc[] = [];
  const servers: Array<{ close(): Promise<void> }> = [];

  before(async () => {
    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'rec-server' }), enrolAgent(hub, { label: 'rec-client' })]);
    echo = await echoServer();
  });

  after(async () => {
    for (const proc of procs.reverse()) await proc.stop();
    for (const server of servers) await server.close();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home);
  });

  test('exposing agent killed: the reach stays up, refuses new connections cleanly, and works again once the agent is back', async () => {
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, 'rec-echo');
    procs.push(exposer);
    const reach = await b.reach('rec-echo', ['--port', '0']);
    procs.push(reach.proc);
    assert.equal((await roundTrip(reach.port, 'before\n')).toString(), 'before\n');
    // A connection that is open when A dies.
    const open = await connect(reach.port);
    open.on('error', () => undefined);
    const openClosed = new Promise<void>((resolve) => open.once('close', () => resolve()));
    open.write('ping\n');
    await new Promise<void>((resolve) => open.once('data', () => resolve()));

    const offline = hub.proc.waitFor(
      (l) => l.msg === 'agent disconnected' && Array.isArray(l.services) && l.services.includes('rec-echo'),
      20_000,
      '"agent disconnected" log line for rec-echo',
    );
    assert.equal(await exposer.kill(), 'SIGKILL');
    await offline;
    // The open connection is ended (reset by the hub's PEER_GONE), not left hanging.
    await within(openClosed, 20_000, 'the open connection to end');

    // While A is away: the reach process keeps listening; a new connection is ended, not left hanging.
    const outcome = await connectionOutcome(reach.port, 'while away\n');
    assert.equal(outcome.data.length, 0, `no bytes can come back while the service is offline, got ${JSON.stringify(outcome.data.toString())}`);
    const refused = await reach.proc.waitFor((l) => l.type === 'stream_refused' && l.name === 'rec-echo', 10_000, '"stream_refused" event');
    assert.equal(refused.code, 'SERVICE_OFFLINE');
    assert.ok(isAlive(reach.proc), 'the reach process is still running');

    // A comes back with the same config folder: the same reach port works again.
    procs.push(await a.expose(`127.0.0.1:${echo.port}`, 'rec-echo'));
    const reply = await eventually(async () => {
      const r = await roundTrip(reach.port, 'after\n', 5000);
      if (r.toString() !== 'after\n') throw new Error(`got ${JSON.stringify(r.toString())}`);
      return r;
    });
    assert.equal(reply.toString(), 'after\n');
    assert.ok(isAlive(reach.proc), 'the reach process is still running');
    assert.equal(countEvents(reach.proc, 'listening'), 1, 'the reach listened once and kept its port');
  });

  test('hub restarted on the same port and database: both agents reconnect by themselves and the reach keeps its port', async () => {
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, 'rec-hub');
    procs.push(exposer);
    const reach = await b.reach('rec-hub', ['--port', '0']);
    procs.push(reach.proc);
    assert.equal((await roundTrip(reach.port, 'before\n')).toString(), 'before\n');
    const connectedBefore = { exposer: countEvents(exposer, 'connected'), reach: countEvents(reach.proc, 'connected') };
    const exposedBefore = countEvents(exposer, 'exposed');
    // A connection that is open when the hub goes away.
    const open = await connect(reach.port);
    open.on('error', () => undefined);
    const openClosed = new Promise<void>((resolve) => open.once('close', () => resolve()));
    open.write('ping\n');
    await new Promise<void>((resolve) => open.once('data', () => resolve()));

    const { port, dataDir, apiKey } = hub;
    await hub.stop();
    // Its stream cannot outlive the hub: it is ended, not left hanging.
    await within(openClosed, 20_000, 'the open connection to end');
    await Promise.all([
      exposer.waitFor((l) => l.type === 'disconnected', 20_000, '"disconnected" event on A'),
      reach.proc.waitFor((l) => l.type === 'disconnected', 20_000, '"disconnected" event on B'),
    ]);
    hub = await startHubProcess({ port, dataDir, apiKey });
    assert.equal(hub.port, port);

    await Promise.all([
      waitForCount(exposer, connectedBefore.exposer + 1, (l) => l.type === 'connected', 'A connected again'),
      waitForCount(reach.proc, connectedBefore.reach + 1, (l) => l.type === 'connected', 'B connected again'),
      waitForCount(exposer, exposedBefore + 1, (l) => l.type === 'exposed', 'A exposed rec-hub again'),
    ]);
    const reply = await eventually(async () => {
      const r = await roundTrip(reach.port, 'after restart\n', 5000);
      if (r.toString() !== 'after restart\n') throw new Error(`got ${JSON.stringify(r.toString())}`);
      return r;
    });
    assert.equal(reply.toString(), 'after restart\n');
    assert.ok(isAlive(exposer) && isAlive(reach.proc), 'neither agent process exited');
    assert.equal(countEvents(reach.proc, 'listening'), 1, 'the reach listened once and kept its port');
  });

  test('reach without --port keeps its port across runs, and picks another (reporting the wanted one) when it is taken', async () => {
    // The target's port is the reach's first choice: an unusual one below the ephemeral range (so no outgoing
    // connection takes it meanwhile), on 127.0.0.2 so that the same port stays free for the reach on 127.0.0.1.
    const target = await listenOnUnusualPort('127.0.0.2', (s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    servers.push({ close: () => new Promise<void>((resolve) => target.close(() => resolve())) });
    const targetPort = (target.address() as net.AddressInfo).port;
    procs.push(await a.expose(`127.0.0.2:${targetPort}`, 'rec-stable'));
    const portsFile = join(b.home, 'ports.json');

    // First run: no remembered port, so the service's own port; it is remembered.
    const first = await b.reach('rec-stable');
    procs.push(first.proc);
    assert.equal(first.port, targetPort, 'the first run listens on the service\'s own port');
    assert.equal((await first.proc.waitFor((l) => l.type === 'listening')).wanted, undefined);
    assert.equal((await roundTrip(first.port, 'stable\n')).toString(), 'stable\n');
    assert.equal((JSON.parse(await readFile(portsFile, 'utf8')) as Record<string, number>)['rec-stable'], first.port);
    await first.proc.stop();

    // Second run: the same port again.
    const second = await b.reach('rec-stable');
    procs.push(second.proc);
    assert.equal(second.port, first.port, 'the second run listens on the remembered port');
    assert.equal((await second.proc.waitFor((l) => l.type === 'listening')).wanted, undefined);
    assert.equal((await roundTrip(second.port, 'again\n')).toString(), 'again\n');
    await second.proc.stop();

    // Third run with the remembered port taken by another listener: another port, and `wanted` says which one it wanted.
    const squatter = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => squatter.listen(first.port, '127.0.0.1', resolve));
    try {
      const third = await b.reach('rec-stable');
      procs.push(third.proc);
      assert.notEqual(third.port, first.port);
      const listening = await third.proc.waitFor((l) => l.type === 'listening');
      assert.equal(listening.wanted, first.port, 'the listening event reports the port it wanted');
      assert.equal(listening.port, third.port);
      assert.equal((await roundTrip(third.port, 'elsewhere\n')).toString(), 'elsewhere\n');
      await third.proc.stop();
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }

    // The remembered port is still the first one: once free, the next run is back on it.
    assert.equal((JSON.parse(await readFile(portsFile, 'utf8')) as Record<string, number>)['rec-stable'], first.port);
    const fourth = await b.reach('rec-stable');
    procs.push(fourth.proc);
    assert.equal(fourth.port, first.port, 'back on the remembered port once it is free');
    await fourth.proc.stop();
  });
});
