/**
 * The connection window with real processes: a reaching agent with 1,000 open streams stops reading its hub socket
 * (SIGSTOP) while the exposing agent's server pours data into every stream. Per-stream credit alone would let the
 * hub buffer a window per stream (1,000 × INITIAL_STREAM_WINDOW); the connection window holds the exposing agent
 * to CONNECTION_WINDOW bytes that the hub has not yet written out, whatever the number of streams. The same with the
 * two agents on two hubs (PostgreSQL and NATS), where the receiving hub acknowledges what it wrote out. Besides: an
 * agent past its connection window is closed with FLOW_CONTROL, and a receiver that stops reading but keeps its
 * connection alive is closed after WRITE_STALL_TIMEOUT_MS, after which the sender it held back moves again.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  FrameType,
  INITIAL_STREAM_WINDOW,
  WRITE_STALL_TIMEOUT_MS,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  type Frame,
} from '@private-connect/protocol';
import {
  connect,
  connectRawAgent,
  enrolAgent,
  enrolViaApi,
  eventually,
  removeDirs,
  scratchDatabase,
  startHubProcess,
  type AgentHome,
  type HubProcess,
  type Proc,
} from '../src/index.js';

const MiB = 1024 * 1024;
const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';
const STREAMS = 1000;
/** What the server sends on each stream once told to: enough to fill the hub with hundreds of MiB without the window. */
const BYTES_PER_STREAM = MiB;
/** The bound issue 20 sets on the growth of the hub's memory. */
const RSS_GROWTH_BOUND = 64 * MiB;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The resident memory of process `pid` in bytes, from /proc/<pid>/status (VmRSS). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kib) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib[1]) * 1024;
}

/** A server that greets each connection with one byte and, once `pour()` is called, writes `bytes` to each of them. */
async function firehose(bytes: number) {
  const sockets = new Set<net.Socket>();
  let pouring = false;
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const pourInto = (socket: net.Socket) => {
    let left = bytes;
    const write = () => {
      while (left > 0 && !socket.destroyed) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(chunk.subarray(0, n))) return void socket.once('drain', write);
      }
    };
    write();
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume();
    socket.write('!');
    if (pouring) pourInto(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return sockets.size;
    },
    /** From now on every connection, open or new, gets its bytes (once). */
    pour() {
      if (pouring) return;
      pouring = true;
      for (const socket of sockets) pourInto(socket);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connects to the reaching agent's port and resolves once the server's greeting came through the stream; then reads no more. */
async function openClient(port: number): Promise<net.Socket> {
  const socket = await connect(port);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no greeting through the tunnel within 30 s')), 30_000);
    socket.once('data', () => {
      clearTimeout(timer);
      socket.pause();
      resolve();
    });
    socket.once('close', () => reject(new Error('the tunnel closed before the greeting')));
  });
  return socket;
}

/** What one frozen-reacher run saw: the growth of each hub's RSS and the bytes relayed towards the frozen agent. */
interface FrozenRun {
  growth: number[];
  relayed: number;
}

/**
 * Opens STREAMS streams through `reach` to the firehose, freezes the reaching agent with SIGSTOP, makes the server
 * pour into every stream, and samples the hubs' RSS until `receivingHub` (the hub of the frozen agent) relays
 * nothing more for 2 s, within the idle timeout (45 s) after which the hub would drop the frozen agent.
 */
async function pushIntoFrozenReacher(
  t: { diagnostic(message: string): void },
  o: { server: Awaited<ReturnType<typeof firehose>>; reach: { proc: Proc; port: number }; hubs: HubProcess[]; receivingHub: HubProcess },
): Promise<FrozenRun> {
  const clients: net.Socket[] = [];
  const reacherPid = o.reach.proc.child.pid!;
  try {
    for (let i = 0; i < STREAMS; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(100, STREAMS - i) }, () => openClient(o.reach.port)))));
    }
    assert.equal(o.server.connections, STREAMS, 'every stream reached the server');
    process.kill(reacherPid, 'SIGSTOP');
    const pids = o.hubs.map((h) => h.proc.child.pid!);
    const rssBefore = await Promise.all(pids.map(rssOf));
    const relayedBefore = (await o.receivingHub.metrics()).get('connect_relay_bytes_total')!;
    o.server.pour();
    const maxRss = [...rssBefore];
    let relayed = 0;
    let unchanged = 0;
    const deadline = Date.now() + 30_000;
    while (unchanged < 8 && Date.now() < deadline) {
      await sleep(250);
      const rss = await Promise.all(pids.map(rssOf));
      rss.forEach((r, i) => (maxRss[i] = Math.max(maxRss[i]!, r)));
      const now = (await o.receivingHub.metrics()).get('connect_relay_bytes_total')! - relayedBefore;
      unchanged = now === relayed ? unchanged + 1 : 0;
      relayed = now;
    }
    const growth = maxRss.map((m, i) => m - rssBefore[i]!);
    t.diagnostic(`hub RSS growth ${growth.map((g) => `+${g}`).join(', ')}; ${relayed} bytes relayed towards the frozen agent`);
    assert.ok(relayed > 0, 'the server’s data reached the hub');
    growth.forEach((g, i) =>
      assert.ok(
        g < RSS_GROWTH_BOUND,
        `hub ${i}'s RSS grew by ${Math.round(g / MiB)} MiB (${relayed} bytes relayed) towards an agent that reads nothing, more than ${RSS_GROWTH_BOUND / MiB} MiB`,
      ),
    );
    return { growth, relayed };
  } finally {
    process.kill(reacherPid, 'SIGCONT');
    for (const c of clients) c.destroy();
    await o.reach.proc.stop();
  }
}

describe('connection window', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let server: Awaited<ReturnType<typeof firehose>>;
  const procs: Proc[] = [];

  before(async () => {
    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'firehose' }), enrolAgent(hub, { label: 'frozen-reacher' })]);
    server = await firehose(BYTES_PER_STREAM);
  });

  after(async () => {
    for (const proc of procs.reverse()) await proc.stop();
    await server?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home);
  });

  test('1,000 streams into an agent frozen with SIGSTOP grow the hub by less than 64 MiB', async (t) => {
    procs.push(await a.expose(`127.0.0.1:${server.port}`, 'firehose', ['--check-interval', '0']));
    const reach = await b.reach('firehose', ['--port', '0']);
    procs.push(reach.proc);
    await pushIntoFrozenReacher(t, { server, reach, hubs: [hub], receivingHub: hub });
  });

  test('closes with FLOW_CONTROL an agent that sends more DATA than its connection window, spread over streams', async () => {
    // 48 streams × one stream window each: within every stream's credit, far beyond the connection window plus
    // what the kernel's socket buffers towards the receiver can take (tcp_wmem + tcp_rmem maxima, 36 MiB here).
    const streams = 48;
    const [sinkAgent, senderAgent] = await Promise.all([enrolViaApi(hub.url, hub.apiKey, 'raw-sink'), enrolViaApi(hub.url, hub.apiKey, 'raw-sender')]);
    const sink = await connectRawAgent(hub.url, sinkAgent.token);
    const sender = await connectRawAgent(hub.url, senderAgent.token);
    try {
      await Promise.all([sink.handshake(), sender.handshake()]);
      const exposed = await sink.request('expose', { name: 'raw-sink', target: '127.0.0.1:9' });
      assert.equal(exposed.ok, true, JSON.stringify(exposed));
      // The sink accepts every stream (plaintext), then stops reading its socket.
      sink.ws.on('message', (data: Buffer) => {
        const frame = decodeFrame(Buffer.from(data));
        if (frame.type === FrameType.OPEN) sink.send(encodeFrame(FrameType.OPEN_OK, frame.streamId));
      });
      for (let i = 0; i < streams; i++) {
        const answer = await sender.open(2 * i + 1, 'raw-sink');
        assert.equal(answer.type, FrameType.OPEN_OK, `stream ${2 * i + 1} opened`);
      }
      (sink.ws as unknown as { _socket: net.Socket })._socket.pause();
      const record = Buffer.alloc(256 * 1024, 0x33);
      for (let sent = 0; sent < INITIAL_STREAM_WINDOW; sent += record.length) {
        for (let i = 0; i < streams; i++) sender.send(encodeFrame(FrameType.DATA, 2 * i + 1, record));
      }
      const closed = await Promise.race([sender.closed, sleep(60_000).then(() => undefined)]);
      assert.ok(closed, `the hub took ${(streams * INITIAL_STREAM_WINDOW) / MiB} MiB of DATA from one connection without closing it`);
      assert.equal(closed.error?.code, 'FLOW_CONTROL', `closed with ${closed.code} ${closed.reason}`);
      assert.match(closed.error.message, /connection credit/);
    } finally {
      sender.ws.terminate();
      sink.ws.terminate();
    }
  });

  test('an agent that stops reading but keeps pinging is closed after the write stall timeout, and the sender it held back moves again', async (t) => {
    // The exposing agent serves plaintext too, so that a raw agent (no end-to-end keys) can open streams to it.
    procs.push(await a.expose(`127.0.0.1:${server.port}`, 'firehose-plain', ['--check-interval', '0', '--no-e2e']));
    server.pour();
    const stalled = await connectRawAgent(hub.url, (await enrolViaApi(hub.url, hub.apiKey, 'raw-stalled')).token);
    const pinger = setInterval(() => stalled.send(encodeFrame(FrameType.PING, 0, Buffer.alloc(8))), 2_000);
    try {
      await stalled.handshake();
      // 48 streams × 1 MiB that the server pours: more than the exposing agent's connection window plus what the
      // kernel's socket buffers towards the stalled agent can take.
      const answers: Array<Promise<Frame>> = [];
      for (let i = 0; i < 48; i++) {
        const id = 2 * i + 1;
        stalled.send(encodeJsonFrame(FrameType.OPEN, id, { service: 'firehose-plain', plain: true }));
        answers.push(stalled.waitFrame((f) => f.streamId === id && (f.type === FrameType.OPEN_OK || f.type === FrameType.OPEN_ERROR), `answer to OPEN ${id}`));
      }
      for (const answer of await Promise.all(answers)) assert.equal(answer.type, FrameType.OPEN_OK);
      // It reads nothing from now on, and still pings: the hub's idle timeout does not apply.
      (stalled.ws as unknown as { _socket: net.Socket })._socket.pause();
      const startedAt = Date.now();

      // Another agent reaches the same service: its stream shares the exposing agent's connection window.
      const reach = await b.reach('firehose-plain', ['--port', '0']);
      procs.push(reach.proc);
      const client = await connect(reach.port);
      client.on('error', () => undefined);
      let received = 0;
      client.on('data', (chunk: Buffer) => (received += chunk.length));
      const all = 1 + BYTES_PER_STREAM;
      const deadline = Date.now() + WRITE_STALL_TIMEOUT_MS + 60_000;
      while (received < all && Date.now() < deadline) await sleep(200);
      const closed = await Promise.race([stalled.closed, sleep(5_000).then(() => undefined)]);
      t.diagnostic(`the other stream got ${received} of ${all} bytes after ${Date.now() - startedAt} ms`);
      assert.ok(closed, 'the hub kept an agent that read nothing for longer than the write stall timeout');
      // The agent reads nothing, so it never sees the close frame (IDLE_TIMEOUT): the hub's log tells why it went.
      const why = hub.proc.lines.find((l) => typeof l === 'object' && l.msg === 'the agent has read nothing within the write stall timeout; closing');
      assert.ok(why, 'the hub logged that it closed the agent for stalling');
      assert.equal(received, all, 'the stream to the other agent got all its bytes once the stalled agent was gone');
      client.destroy();
    } finally {
      clearInterval(pinger);
      stalled.ws.terminate();
    }
  });
});

describe('connection window between hubs', () => {
  let database: { url: string; drop(): Promise<void> };
  const hubs: HubProcess[] = [];
  let a: AgentHome;
  let b: AgentHome;
  let server: Awaited<ReturnType<typeof firehose>>;
  const procs: Proc[] = [];

  before(async () => {
    database = await scratchDatabase('pc_e2e_window');
    const start = (apiKey?: string) => startHubProcess({ databaseUrl: database.url, ...(apiKey ? { apiKey } : {}), env: { NATS_URL, WEB_PORT: 'off' } });
    hubs.push(await start());
    hubs.push(await start(hubs[0]!.apiKey));
    [a, b] = await Promise.all([enrolAgent(hubs[0]!, { label: 'firehose' }), enrolAgent(hubs[1]!, { label: 'frozen-reacher' })]);
    server = await firehose(BYTES_PER_STREAM);
  });

  after(async () => {
    for (const proc of procs.reverse()) await proc.stop();
    await server?.close();
    for (const hub of hubs) await hub.stop();
    await database?.drop();
    await removeDirs(a?.home, b?.home, ...hubs.map((h) => h.dataDir));
  });

  test('1,000 streams from an agent on one hub into an agent frozen on another grow neither hub by 64 MiB', async (t) => {
    procs.push(await a.expose(`127.0.0.1:${server.port}`, 'firehose', ['--check-interval', '0']));
    // The reaching agent is on the second hub: every stream crosses NATS.
    const reach = await eventually(() => b.reach('firehose', ['--port', '0']), 20_000, 500);
    procs.push(reach.proc);
    await pushIntoFrozenReacher(t, { server, reach, hubs, receivingHub: hubs[1]! });
  });
});
