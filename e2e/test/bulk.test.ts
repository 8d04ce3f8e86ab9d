/**
 * Volume through one tunnel with real processes: 256 MiB each way with SHA-256 checked at both ends, and 200
 * concurrent connections through one reach port, each getting back exactly its own bytes.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  connect,
  echoServer,
  enrolAgent,
  expectedDigest,
  hashExchange,
  hashServer,
  removeDirs,
  roundTrip,
  startHubProcess,
  writeStream,
  type AgentHome,
  type HubProcess,
  type Proc,
  type TcpServer,
} from '../src/index.js';

const MiB = 1024 * 1024;

describe('bulk transfer through the hub', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let hashSrv: TcpServer;
  let echo: TcpServer;
  const procs: Proc[] = [];

  before(async () => {
    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'bulk-server' }), enrolAgent(hub, { label: 'bulk-client' })]);
    [hashSrv, echo] = await Promise.all([hashServer(), echoServer()]);
  });

  after(async () => {
    for (const proc of procs.reverse()) await proc.stop();
    await hashSrv?.close();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home);
  });

  test('256 MiB each way arrives intact (SHA-256 checked at both ends)', async () => {
    const total = 256 * MiB;
    const uploadSeed = 1;
    procs.push(await a.expose(`127.0.0.1:${hashSrv.port}`, 'bulk-hash'));
    const reach = await b.reach('bulk-hash', ['--port', '0']);
    procs.push(reach.proc);
    const relayedBefore = (await hub.metrics()).get('connect_relay_bytes_total') ?? 0;

    const socket = await connect(reach.port);
    const result = await hashExchange(socket, total, uploadSeed);

    const expectedUpload = expectedDigest(total, uploadSeed);
    assert.equal(result.uploadDigest, expectedUpload, 'writeStream hashed what it sent');
    assert.equal(result.serverDigestOfUpload, expectedUpload, 'the exposed server received exactly the 256 MiB the client sent');
    assert.equal(result.downloadBytes, total, 'the client received exactly 256 MiB back');
    assert.equal(result.downloadDigest, expectedDigest(total, 7), 'the client received exactly the bytes the server sent');

    // The bytes went through the hub's relay (both directions), not around it.
    const relayed = ((await hub.metrics()).get('connect_relay_bytes_total') ?? 0) - relayedBefore;
    assert.ok(relayed >= 2 * total + 8 + 32, `the hub relayed ${relayed} bytes, expected at least ${2 * total + 40}`);
  });

  test('200 concurrent connections through one reach port each get exactly their own bytes back', async () => {
    const connections = 200;
    const size = 64 * 1024;
    procs.push(await a.expose(`127.0.0.1:${echo.port}`, 'bulk-echo'));
    const reach = await b.reach('bulk-echo', ['--port', '0']);
    procs.push(reach.proc);

    const payloads = Array.from({ length: connections }, (_, i) => {
      const payload = randomBytes(size);
      payload.writeUInt32BE(i, 0); // distinct even if the random bytes were not
      return payload;
    });
    const replies = await Promise.all(payloads.map((payload) => roundTrip(reach.port, payload, 60_000)));

    for (let i = 0; i < connections; i++) {
      assert.equal(replies[i]!.length, size, `connection ${i} got ${replies[i]!.length} bytes back`);
      assert.ok(replies[i]!.equals(payloads[i]!), `connection ${i} got bytes that are not its own`);
    }
    const refused = reach.proc.lines.filter((l) => typeof l === 'object' && l.type === 'stream_refused');
    assert.deepEqual(refused, [], 'no stream was refused');
  });
});
