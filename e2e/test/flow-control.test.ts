/**
 * Per-stream credit flow control with real processes: a server that does not read holds the sender back end to
 * end, and the hub does not buffer what the reader has not taken: its relay buffer stays within one stream
 * window (INITIAL_STREAM_WINDOW) plus a frame per direction, and its memory does not grow with the data sent.
 * Once the server reads again, every byte arrives intact.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { E2E_TAG_BYTES, FRAME_HEADER_SIZE, INITIAL_STREAM_WINDOW, MAX_FRAME_PAYLOAD } from '@private-connect/protocol';
import {
  connect,
  countingWriter,
  enrolAgent,
  eventually,
  expectedDigest,
  removeDirs,
  slowReader,
  startHubProcess,
  type AgentHome,
  type HubProcess,
  type Proc,
  type SlowReader,
} from '../src/index.js';

const MiB = 1024 * 1024;
const TOTAL = 64 * MiB;
const SEED = 3;
/** What the hub may hold for one stream: a full window of DATA plus one frame being written in each direction. */
const HUB_BUFFER_BOUND = INITIAL_STREAM_WINDOW + 2 * (FRAME_HEADER_SIZE + MAX_FRAME_PAYLOAD);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Samples the hub's metrics every 250 ms until `progress()` (bytes that left the sender) has not moved for 8
 * samples in a row: the sender is stalled. Returns the highest buffered bytes and RSS seen and the bytes relayed.
 */
async function sampleUntilStalled(hub: HubProcess, progress: () => number, rssBefore: number, relayedBefore: number) {
  const seen = { maxBuffered: 0, maxRss: rssBefore, relayed: 0, unchanged: 0 };
  let last = -1;
  const deadline = Date.now() + 60_000;
  while (seen.unchanged < 8 && Date.now() < deadline) {
    await sleep(250);
    const m = await hub.metrics();
    seen.maxBuffered = Math.max(seen.maxBuffered, m.get('connect_relay_buffered_bytes') ?? Infinity);
    seen.maxRss = Math.max(seen.maxRss, m.get('process_resident_memory_bytes') ?? Infinity);
    seen.relayed = (m.get('connect_relay_bytes_total') ?? Infinity) - relayedBefore;
    seen.unchanged = progress() === last ? seen.unchanged + 1 : 0;
    last = progress();
  }
  return seen;
}

describe('flow control with a slow reader', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let reader: SlowReader;
  const procs: Proc[] = [];

  before(async () => {
    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'slow-server' }), enrolAgent(hub, { label: 'fast-client' })]);
    reader = await slowReader();
  });

  after(async () => {
    for (const proc of procs.reverse()) await proc.stop();
    await reader?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home);
  });

  test('a paused server holds the sender back, the hub buffers at most a window, and all bytes arrive once it reads', async (t) => {
    // No health checks: the server below takes its first connection for the tunnel's.
    procs.push(await a.expose(`127.0.0.1:${reader.port}`, 'slow', ['--check-interval', '0']));
    const reach = await b.reach('slow', ['--port', '0']);
    procs.push(reach.proc);

    const before = await hub.metrics();
    const rssBefore = before.get('process_resident_memory_bytes');
    assert.ok(rssBefore !== undefined && rssBefore > 0, 'the hub reports its RSS');
    assert.ok(before.has('connect_relay_buffered_bytes'), 'the hub reports its relay buffer');

    const client = await connect(reach.port);
    client.on('error', () => undefined);
    const writer = countingWriter(client, TOTAL, SEED);
    writer.done.catch(() => undefined); // awaited below; a failure meanwhile is not an unhandled rejection
    const serverSide = await reader.connection;

    // While the server reads nothing: sample until the sender has made no progress for a while (it is stalled).
    const { maxBuffered, maxRss, unchanged } = await sampleUntilStalled(hub, () => writer.flushed, rssBefore, 0);
    const flushedWhilePaused = writer.flushed;
    assert.equal(serverSide.bytesRead, 0, 'the paused server read nothing');
    assert.ok(unchanged >= 8, `the sender never stalled: ${flushedWhilePaused} of ${TOTAL} bytes left the client`);
    assert.ok(
      flushedWhilePaused < TOTAL / 2,
      `the sender was not held back: ${flushedWhilePaused} of ${TOTAL} bytes left the client while the server read nothing`,
    );
    assert.ok(
      maxBuffered <= HUB_BUFFER_BOUND,
      `the hub buffered ${maxBuffered} bytes towards agents, more than one window plus a frame each way (${HUB_BUFFER_BOUND})`,
    );
    assert.ok(
      maxRss - rssBefore < TOTAL / 4,
      `the hub's RSS grew by ${maxRss - rssBefore} bytes while ${flushedWhilePaused} bytes waited for the reader`,
    );
    t.diagnostic(`stalled after ${flushedWhilePaused} bytes; hub buffered at most ${maxBuffered} bytes, RSS +${maxRss - rssBefore}`);

    // The server reads again: everything arrives, in order, intact.
    serverSide.resume();
    await writer.done;
    const received = await reader.received;
    assert.equal(received.bytes, TOTAL, 'the server received exactly what the client sent');
    assert.equal(received.digest, expectedDigest(TOTAL, SEED), 'the bytes arrived intact and in order');
    client.destroy();
  });

  test('an exposing agent that stops reading its hub connection makes the hub hold at most a window, not the stream', async (t) => {
    const sink = await slowReader();
    const exposer = await a.expose(`127.0.0.1:${sink.port}`, 'frozen', ['--check-interval', '0']);
    procs.push(exposer);
    const reach = await b.reach('frozen', ['--port', '0']);
    procs.push(reach.proc);
    const pid = exposer.child.pid!;
    try {
      const before = await hub.metrics();
      const relayedBefore = before.get('connect_relay_bytes_total')!;
      const rssBefore = before.get('process_resident_memory_bytes')!;
      const client = await connect(reach.port);
      client.on('error', () => undefined);
      // The stream is open once the server has its connection; it reads everything it gets.
      const first = countingWriter(client, TOTAL, SEED);
      first.done.catch(() => undefined); // awaited below
      const serverSide = await sink.connection;
      serverSide.resume();
      // Data flows end to end (the stream is open on both agents) before A is frozen.
      await eventually(async () => assert.ok(serverSide.bytesRead > 0, 'no data reached the server yet'), 20_000, 20);
      // Freeze agent A: it no longer reads from the hub nor grants credit.
      process.kill(pid, 'SIGSTOP');
      const { maxBuffered, maxRss, relayed, unchanged } = await sampleUntilStalled(hub, () => first.flushed, rssBefore, relayedBefore);
      const delivered = serverSide.bytesRead;
      t.diagnostic(`frozen agent: stalled after ${first.flushed} bytes; hub relayed ${relayed}, server got ${delivered}, hub buffered at most ${maxBuffered}, RSS +${maxRss - rssBefore}`);
      assert.ok(unchanged >= 8, 'the sender never stalled');
      assert.ok(
        first.flushed - delivered < TOTAL / 2,
        `the sender was not held back: ${first.flushed} bytes left the client, the server received ${delivered}`,
      );
      // Credit is granted only for bytes A handed to the server, so what the hub let through but the server has not
      // received (sitting in the hub, the sockets, the frozen agent) is at most one window. The hub counts sealed
      // records (each E2E_TAG_BYTES more than its plaintext); the records of a bulk transfer hold at least one
      // 64 KiB socket read each, so tags are at most one 4,096th of what was relayed.
      const tags = E2E_TAG_BYTES * Math.ceil(relayed / 65536);
      assert.ok(
        relayed - delivered <= INITIAL_STREAM_WINDOW + tags,
        `the hub relayed ${relayed} bytes while the server received ${delivered}: ${relayed - delivered} in flight, more than a window (${INITIAL_STREAM_WINDOW})`,
      );
      assert.ok(maxBuffered <= HUB_BUFFER_BOUND, `the hub buffered ${maxBuffered} bytes towards the frozen agent, more than ${HUB_BUFFER_BOUND}`);
      assert.ok(maxRss - rssBefore < TOTAL / 4, `the hub's RSS grew by ${maxRss - rssBefore} bytes`);
      process.kill(pid, 'SIGCONT');
      await first.done;
      const received = await sink.received;
      assert.equal(received.bytes, TOTAL);
      assert.equal(received.digest, expectedDigest(TOTAL, SEED));
      client.destroy();
    } finally {
      process.kill(pid, 'SIGCONT');
      await sink.close();
    }
  });
});
