/**
 * Local connections that wait for the hub: a real `connect reach` that lost its hub gets 20 connections while the hub
 * is away; they share one wait for the hub (no MaxListenersExceededWarning on its stderr) and all of them are served
 * once the hub is back. The hub is "lost" by a door in front of it that cuts and refuses the reach's connections, so
 * that the exposing agent stays online and every connection can be served within its 10 s wait on a busy machine too.
 */

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, echoServer, enrolAgentAsync, removeDirs, startHubProcess, type AsyncAgentHome, type HubProcess, type Proc, type TcpServer } from '../src/index.js';

/**
 * A TCP door in front of the hub for the reaching agent: shut(), it cuts its connections and ends new ones at once
 * (as a hub that is gone would); open, it forwards to the hub.
 */
async function door(hubPort: number): Promise<{ port: number; open: boolean; shut(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { open: true };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (!state.open) return client.destroy();
    const upstream = net.connect(hubPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get open() {
      return state.open;
    },
    set open(value: boolean) {
      state.open = value;
    },
    shut() {
      state.open = false;
      for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends `payload` on an open socket and resolves with what came back once `payload.length` bytes did. */
function echoed(socket: net.Socket, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= payload.length) resolve(got);
    });
    socket.once('error', () => undefined);
    socket.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)} of ${JSON.stringify(payload)}`)));
    socket.write(payload);
  });
}

describe('connections waiting for the hub', () => {
  let hub: HubProcess;
  let exposer: AsyncAgentHome;
  let reacher: AsyncAgentHome;
  let echo: TcpServer;
  let front: Awaited<ReturnType<typeof door>>;
  const procs: Proc[] = [];

  before(async () => {
    hub = await startHubProcess();
    front = await door(hub.port);
    exposer = await enrolAgentAsync(hub, { label: 'wait-server' });
    reacher = await enrolAgentAsync({ url: `http://127.0.0.1:${front.port}`, apiKey: hub.apiKey }, { label: 'wait-client' });
    echo = await echoServer();
  });
  after(async () => {
    for (const proc of procs) await proc.stop();
    await front?.close();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, exposer?.home, reacher?.home);
  });

  test('20 connections wait for the hub without a MaxListenersExceededWarning, and all are served once it is back', async () => {
    procs.push(await exposer.expose(`127.0.0.1:${echo.port}`, 'wait-echo'));
    const reach = await reacher.reach('wait-echo', ['--port', '0']);
    procs.push(reach.proc);
    await reach.proc.waitFor((l) => l.type === 'reach_registered', 20_000, 'the reach registered');

    front.shut();
    await reach.proc.waitFor((l) => l.type === 'disconnected', 20_000, '"disconnected" event of the reach');

    // What the reach printed from here on is about the 20 connections (not about streams the kill itself cut).
    const seen = reach.proc.lines.length;
    const sockets = await Promise.all(Array.from({ length: 20 }, () => connect(reach.port)));
    const replies = sockets.map((socket, i) => echoed(socket, `waiting ${i}\n`));
    // Each connection now waits for the hub in the reach process (up to 10 s); a few failed attempts later, it is back.
    await reach.proc.waitFor(() => reach.proc.lines.slice(seen).filter((l) => typeof l === 'object' && l.type === 'disconnected').length >= 2, 20_000, 'two failed attempts');
    front.open = true;

    const got = await Promise.all(replies);
    assert.deepEqual(got, sockets.map((_, i) => `waiting ${i}\n`));
    for (const socket of sockets) socket.destroy();
    assert.doesNotMatch(reach.proc.stderr(), /MaxListenersExceededWarning/);
    const refused = reach.proc.lines.slice(seen).filter((l) => typeof l === 'object' && l.type === 'stream_refused');
    assert.deepEqual(refused, [], `no connection was refused:\n${reach.proc.lines.map((l) => JSON.stringify(l)).join('\n')}`);
  });
});
