/**
 * End-to-end encryption with real processes: a real hub, `connect expose` and `connect reach`, with every agent
 * WebSocket passing through a recording (and, when told, malicious) hub in front of it (evil-hub.ts).
 *
 * What must hold: the hub never sees a stream's plaintext; plaintext only when both agents pass --no-e2e; the
 * reaching agent pins the exposing agent's identity key and refuses a hub that swaps keys; the Noise IK session
 * handshake fails on any altered message, at either agent; records replayed, reordered, dropped, cut short or moved
 * between the streams of one session reset the stream; a replayed stream open is refused, a replayed session
 * handshake gets an answer nobody but the opener can use; `connect trust` forgets a pin.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameFlag, FrameType, decodeFrame, keyFingerprint, type Frame } from '@private-connect/protocol';
import { expose, type AgentEvent, type Exposed } from '@private-connect/sdk';
import {
  connectRawAgent,
  enrolAgent,
  enrolViaApi,
  removeDirs,
  roundTrip,
  startEvilHub,
  startHubProcess,
  type AgentHome,
  type EvilHub,
  type EvilMode,
  type HubProcess,
  type Proc,
  type RecordedOpen,
} from '../src/index.js';

/** Points an enrolled agent's config at another hub URL (the evil hub in front of the real one). */
function pointAt(agent: AgentHome, url: string): void {
  const file = join(agent.home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as { hubUrl: string };
  writeFileSync(file, JSON.stringify({ ...config, hubUrl: url }, null, 2), { mode: 0o600 });
}

/** A recognisable payload: a random 32-byte marker repeated to `size` bytes. */
function markedPayload(size: number): { marker: Buffer; payload: Buffer } {
  const marker = Buffer.from(randomBytes(16).toString('hex'));
  const payload = Buffer.alloc(size);
  for (let at = 0; at < size; at += marker.length) marker.copy(payload, at);
  return { marker, payload };
}

function capturedContains(evil: EvilHub, marker: Buffer): boolean {
  return evil.captured.some((message) => message.data.includes(marker));
}

/** DATA frames the hub relayed since `from`, split by the ENCRYPTED flag. */
function dataFrames(evil: EvilHub, from: number): { encrypted: number; plain: number } {
  const counts = { encrypted: 0, plain: 0 };
  for (const message of evil.captured.slice(from)) {
    const frame = decodeFrame(message.data);
    if (frame.type !== FrameType.DATA) continue;
    if (frame.flags & FrameFlag.ENCRYPTED) counts.encrypted++;
    else counts.plain++;
  }
  return counts;
}

/** The codes of the frames of `type` (OPEN_ERROR, RESET) that agent `label` sent to the hub since `from`. */
function codesSentBy(evil: EvilHub, label: string, type: Frame['type'], from: number): Array<{ code: string; message: string }> {
  return evil.captured
    .slice(from)
    .filter((m) => m.up && m.agent === label)
    .map((m) => decodeFrame(m.data))
    .filter((f) => f.type === type)
    .map((f) => JSON.parse(f.payload.toString('utf8')) as { code: string; message: string });
}

/** A client connection through the reach port that gets nothing back: closed, with no byte of the echo. */
async function refusedRoundTrip(port: number, payload: Buffer | string = 'anyone there?\n'): Promise<Buffer> {
  try {
    return await roundTrip(port, payload, 10_000);
  } catch {
    return Buffer.alloc(0);
  }
}

/** An echo server (optionally saying `banner` first) that counts its connections and keeps what each received. */
interface TargetServer {
  port: number;
  connections: number;
  /** Bytes received, per connection, in the order they came. */
  received: Buffer[];
  /** Everything received, all connections together. */
  all(): Buffer;
  close(): Promise<void>;
}

async function targetServer(banner?: string): Promise<TargetServer> {
  const sockets = new Set<net.Socket>();
  const target: TargetServer = {
    port: 0,
    connections: 0,
    received: [],
    all: () => Buffer.concat(target.received),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const index = target.connections++;
    target.received[index] = Buffer.alloc(0);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (banner) socket.write(banner);
    socket.on('data', (chunk: Buffer) => (target.received[index] = Buffer.concat([target.received[index]!, chunk])));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  target.port = (server.address() as net.AddressInfo).port;
  return target;
}

/** A real hub, a hub in front of it, agents "db-server" (exposes) and "laptop" (reaches), and an echo server. */
interface Fixture {
  hub: HubProcess;
  evil: EvilHub;
  a: AgentHome;
  b: AgentHome;
  echo: TargetServer;
  /** Processes to stop at the end, in reverse. */
  procs: Proc[];
  /** More to stop at the end (SDK agents, servers), in reverse. */
  cleanups: Array<() => Promise<unknown>>;
  homes: string[];
  stop(): Promise<void>;
}

/** `through`: the agents whose WebSocket goes through the hub in front (the others use the real hub directly). */
async function startFixture(through: Array<'a' | 'b'>): Promise<Fixture> {
  const hub = await startHubProcess();
  const evil = await startEvilHub(hub.url);
  const [a, b] = await Promise.all([enrolAgent(hub, { label: 'db-server' }), enrolAgent(hub, { label: 'laptop' })]);
  if (through.includes('a')) pointAt(a, evil.url);
  if (through.includes('b')) pointAt(b, evil.url);
  const echo = await targetServer();
  const procs: Proc[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  const homes = [hub.dataDir, a.home, b.home];
  return {
    hub,
    evil,
    a,
    b,
    echo,
    procs,
    cleanups,
    homes,
    async stop() {
      for (const proc of procs.reverse()) await proc.stop();
      for (const cleanup of cleanups.reverse()) await cleanup();
      await echo.close();
      await evil.close();
      await hub.stop();
      await removeDirs(...homes);
    },
  };
}

describe('end-to-end encryption through a hub that records everything', () => {
  let f: Fixture;
  let hub: HubProcess;
  let evil: EvilHub;
  let a: AgentHome;
  let b: AgentHome;
  let echo: TargetServer;
  let procs: Proc[];
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as T;
  };

  before(async () => {
    f = await startFixture(['a', 'b']);
    ({ hub, evil, a, b, echo, procs } = f);
  });

  after(async () => {
    await f?.stop();
  });

  const start = async (exposeArgs: string[], reachArgs: string[], name: string) => {
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, name, exposeArgs);
    procs.push(exposer);
    const reached = await b.reach(name, ['--port', '0', ...reachArgs]);
    procs.push(reached.proc);
    return { exposer, ...reached };
  };

  test('by default the hub relays only ciphertext: a known plaintext never appears in anything it forwards', async () => {
    const { port, proc } = await start([], [], 'secret-echo');
    const from = evil.captured.length;
    const { marker, payload } = markedPayload(256 * 1024);
    const reply = await roundTrip(port, payload);
    assert.ok(reply.equals(payload), 'the echo came back whole');
    // A second connection: a stream of the session the first one made, its first bytes sent with the open.
    const again = markedPayload(16 * 1024);
    assert.ok((await roundTrip(port, again.payload)).equals(again.payload));
    for (const m of [marker, again.marker]) assert.equal(capturedContains(evil, m), false, 'the plaintext marker appeared in what the hub relayed');
    const frames = dataFrames(evil, from);
    assert.ok(frames.encrypted >= 8, `expected encrypted DATA frames both ways, got ${JSON.stringify(frames)}`);
    assert.equal(frames.plain, 0);
    const offers = evil.opens.filter((o) => o.agent === 'laptop').map((o) => o.e2e);
    assert.ok(offers[0]?.hs, `the first stream makes the session: ${JSON.stringify(offers)}`);
    assert.ok(offers[1]?.sid && offers[1].n === 1, `the second is stream 1 of it: ${JSON.stringify(offers)}`);

    // The reaching agent pinned the exposing agent's key: the one the hub lists for it.
    const pinned = await proc.waitFor((l) => l.type === 'agent_pinned' && l.name === 'secret-echo', 5000, 'agent_pinned event');
    const { agents } = await api<{ agents: Array<{ label: string; fingerprint: string | null }> }>('/v1/agents');
    assert.equal(pinned.fingerprint, agents.find((x) => x.label === 'db-server')?.fingerprint);
    const known = JSON.parse(readFileSync(join(b.home, 'known_agents.json'), 'utf8')) as { agents: Array<{ label: string; names: string[]; fingerprint: string }> };
    assert.deepEqual(known.agents.map((x) => [x.label, x.names, x.fingerprint]), [['db-server', ['secret-echo'], pinned.fingerprint]]);

    const metrics = await hub.metrics();
    assert.ok((metrics.get('connect_stream_opens_encrypted_total') ?? 0) >= 1);
  });

  test('the control: with --no-e2e on both agents the same plaintext is visible to the hub', async () => {
    const { port } = await start(['--no-e2e'], ['--no-e2e'], 'plain-echo');
    const from = evil.captured.length;
    const { marker, payload } = markedPayload(64 * 1024);
    assert.ok((await roundTrip(port, payload)).equals(payload));
    assert.equal(capturedContains(evil, marker), true, 'a plaintext stream must show its bytes, or the previous test proves nothing');
    assert.equal(dataFrames(evil, from).encrypted, 0);
  });

  test('--no-e2e on one side only still encrypts, in either direction', async () => {
    for (const [exposeArgs, reachArgs, name] of [[['--no-e2e'], [], 'half-plain-a'], [[], ['--no-e2e'], 'half-plain-b']] as const) {
      const { port } = await start([...exposeArgs], [...reachArgs], name);
      const { marker, payload } = markedPayload(32 * 1024);
      assert.ok((await roundTrip(port, payload)).equals(payload));
      assert.equal(capturedContains(evil, marker), false, `${name}: plaintext leaked`);
    }
  });

  test('the services API tells which services and open streams are end-to-end encrypted', async () => {
    const { port } = await start([], [], 'held-open');
    const socket = net.connect(port, '127.0.0.1');
    socket.write('ping\n');
    await new Promise((resolve) => socket.once('data', resolve));
    try {
      const { services } = await api<{ services: Array<{ name: string; e2e?: string; streams: number; encryptedStreams: number }> }>('/v1/services');
      const held = services.find((s) => s.name === 'held-open')!;
      assert.equal(held.e2e, 'required');
      assert.equal(held.streams, 1);
      assert.equal(held.encryptedStreams, 1);
      assert.equal(services.find((s) => s.name === 'plain-echo')?.e2e, 'optional');
    } finally {
      socket.destroy();
    }
  });

  test('the exposing agent refuses an opener that offers no encryption (E2E_REQUIRED)', async () => {
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, 'strict-echo');
    procs.push(exposer);
    const raw = await connectRawAgent(hub.url, (await enrolViaApi(hub.url, hub.apiKey, 'raw-opener')).token);
    try {
      await raw.handshake();
      const answer = await raw.open(1, 'strict-echo');
      assert.equal(answer.type, FrameType.OPEN_ERROR);
      assert.match(answer.payload.toString(), /E2E_REQUIRED/);
    } finally {
      await raw.close();
    }
  });
});

/**
 * A client that connects and writes nothing, waiting for the server to speak first (as ssh, SMTP or MySQL clients
 * do): how its connection ended, and how many bytes it got before.
 */
async function silentClient(port: number, timeoutMs = 10_000): Promise<{ ending: 'reset' | 'clean close' | 'timeout' | string; bytes: number }> {
  const socket = net.connect(port, '127.0.0.1');
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
  return new Promise((resolve) => {
    const timer = setTimeout(() => (socket.destroy(), resolve({ ending: 'timeout', bytes })), timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => (clearTimeout(timer), resolve({ ending: err.code === 'ECONNRESET' ? 'reset' : String(err.code), bytes })));
    socket.once('end', () => (clearTimeout(timer), socket.destroy(), resolve({ ending: 'clean close', bytes })));
  });
}

/** A client that writes `payload` and keeps its side open (no FIN): rejects with the error its connection ends with. */
async function resetWhileWriting(port: number, payload: Buffer, timeoutMs = 15_000): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('data', () => undefined);
  socket.write(payload);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`still open after ${timeoutMs} ms`))), timeoutMs);
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    socket.once('close', () => (clearTimeout(timer), resolve()));
  });
}

/** A client kept open: write() sends and waits until `expect` bytes came back; everything received is kept. */
async function heldClient(port: number): Promise<{ received: () => Buffer; ended: Promise<string>; exchange(data: Buffer): Promise<Buffer>; destroy(): void }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
  let received = Buffer.alloc(0);
  const ended = new Promise<string>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.once('close', () => resolve('closed'));
  });
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  return {
    received: () => received,
    ended,
    async exchange(data) {
      const from = received.length;
      socket.write(data);
      for (let waited = 0; received.length - from < data.length; waited += 20) {
        if (socket.destroyed || waited > 10_000) throw new Error(`got ${received.length - from} of ${data.length} bytes back`);
        await sleep(20);
      }
      return received.subarray(from);
    },
    destroy: () => socket.destroy(),
  };
}

describe('a malicious hub cannot read or steer an encrypted stream', () => {
  let f: Fixture;
  let evil: EvilHub;
  let b: AgentHome;
  let target: TargetServer;
  let reachPort: number;
  let reacher: Proc;
  let exposer: Proc;
  /** The marker of the first stream, which made the session: a replay must not deliver it twice. */
  const firstMarker = `first-${randomBytes(8).toString('hex')}\n`;

  before(async () => {
    f = await startFixture(['a', 'b']);
    ({ evil, b, echo: target } = f);
    const { a, procs } = f;
    exposer = await a.expose(`127.0.0.1:${target.port}`, 'prod-db');
    procs.push(exposer);
    const reached = await b.reach('prod-db', ['--port', '0']);
    procs.push(reached.proc);
    reacher = reached.proc;
    reachPort = reached.port;
    // First use, through an honest hub: the key is pinned, the session made.
    assert.equal((await roundTrip(reachPort, firstMarker)).toString(), firstMarker);
    await reacher.waitFor((l) => l.type === 'agent_pinned', 5000, 'agent_pinned event');
  });

  after(async () => {
    await f?.stop();
  });

  /** The reaching agent's stream_refused with `code`, logged after line `from`. */
  const refusal = (code: string, from = 0) =>
    reacher.waitFor((l) => reacher.lines.indexOf(l) >= from && l.type === 'stream_refused' && l.code === code, 10_000, `stream_refused ${code}`);

  /** The reaching agent's opens since `from` (evil.opens index). */
  const opensSince = (from: number): RecordedOpen[] => evil.opens.slice(from).filter((o) => o.agent === 'laptop');

  /**
   * The hub tells the reaching agent that db-server's sessions ended (as after a new identity): its next stream makes
   * a new handshake with the keys `resolve` gives. The pause lets the message arrive before the next local client.
   */
  const newSession = async () => {
    assert.ok(evil.endSessions('db-server') >= 1);
    await sleep(200);
  };

  /** An honest stream: after it the reaching agent holds a session with db-server. */
  const honestStream = async () => {
    evil.mode = 'honest';
    assert.equal((await roundTrip(reachPort, 'honest\n')).toString(), 'honest\n');
  };

  /** Runs `attempt` in `mode`; checks that nothing came back to the client and no plaintext reached the hub. */
  const tampered = async (mode: EvilMode, attempt: (payload: Buffer) => Promise<Buffer>) => {
    const before = { lines: reacher.lines.length, exposerLines: exposer.lines.length, captured: evil.captured.length, opens: evil.opens.length };
    const bytesBefore = target.all().length;
    const connectionsBefore = target.connections;
    evil.mode = mode;
    const { marker, payload } = markedPayload(4096);
    const reply = await attempt(payload);
    assert.equal(reply.length, 0, `${mode}: nothing may come back through a refused stream`);
    assert.equal(capturedContains(evil, marker), false, `${mode}: the plaintext appeared at the hub`);
    return { ...before, newConnections: target.connections - connectionsBefore, newBytes: target.all().length - bytesBefore };
  };

  test('a hub that lists its own keys (validly signed by its own identity) is refused by the pin before any handshake', async () => {
    await newSession();
    const seen = await tampered('swap-keys', (payload) => refusedRoundTrip(reachPort, payload));
    const event = await refusal('E2E_KEY_CHANGED', seen.lines);
    assert.match(String(event.message), /IDENTITY KEY CHANGED/);
    assert.match(String(event.message), new RegExp(keyFingerprint(evil.identityKey).replace(/[+/]/g, '\\$&')));
    assert.match(String(event.message), /connect trust db-server/);
    assert.deepEqual(opensSince(seen.opens), [], 'no OPEN left the reaching agent');
    assert.equal(seen.newConnections, 0);
  });

  test("a hub that lists its own static key beside the agent's identity fails the identity's signature (E2E_HANDSHAKE_FAILED)", async () => {
    const seen = await tampered('swap-static', (payload) => refusedRoundTrip(reachPort, payload));
    const event = await refusal('E2E_HANDSHAKE_FAILED', seen.lines);
    assert.match(String(event.message), /did not sign/);
    assert.deepEqual(opensSince(seen.opens), [], 'no OPEN left the reaching agent');
    assert.equal(seen.newConnections, 0);
  });

  test("a hub that names another static key for the opener is refused by the exposing agent, for a session's streams and for a new handshake", async () => {
    await honestStream();
    for (const fresh of [false, true]) {
      if (fresh) await newSession();
      const seen = await tampered('swap-opener-key', (payload) => refusedRoundTrip(reachPort, payload));
      await refusal('E2E_HANDSHAKE_FAILED', seen.lines);
      const opens = opensSince(seen.opens);
      assert.ok(opens.length >= 1 && (fresh ? opens[0]!.e2e?.hs : opens[0]!.e2e?.sid), `${fresh ? 'a handshake' : 'a stream of the session'}: ${JSON.stringify(opens.map((o) => o.e2e))}`);
      const refused = codesSentBy(evil, 'db-server', FrameType.OPEN_ERROR, seen.captured);
      assert.ok(refused.length >= 1 && refused.every((r) => r.code === 'E2E_HANDSHAKE_FAILED'), JSON.stringify(refused));
      assert.equal(seen.newConnections, 0, 'the exposing agent refused before it connected to its target');
    }
  });

  test('one bit flipped in IK message 1 fails the handshake at the exposing agent; no connection to the target', async () => {
    await newSession();
    const fromExposer = exposer.lines.length;
    const seen = await tampered('flip-hs1', (payload) => refusedRoundTrip(reachPort, payload));
    await refusal('E2E_HANDSHAKE_FAILED', seen.lines);
    await exposer.waitFor((l) => exposer.lines.indexOf(l) >= fromExposer && l.type === 'open_rejected' && l.code === 'E2E_HANDSHAKE_FAILED', 10_000, 'open_rejected at the exposing agent');
    const refused = codesSentBy(evil, 'db-server', FrameType.OPEN_ERROR, seen.captured);
    assert.ok(refused.length >= 1 && refused.every((r) => r.code === 'E2E_HANDSHAKE_FAILED'), JSON.stringify(refused));
    assert.ok(opensSince(seen.opens).every((o) => o.e2e?.hs), 'every open was a handshake');
    assert.equal(seen.newConnections, 0);
  });

  test('one bit flipped in IK message 2 fails the handshake at the reaching agent; the target gets no byte', async () => {
    await newSession();
    const seen = await tampered('flip-hs2', (payload) => refusedRoundTrip(reachPort, payload));
    await refusal('E2E_HANDSHAKE_FAILED', seen.lines);
    // The exposing agent accepted (it connected to its target) and learns of the failure from the opener's RESET.
    const resets = codesSentBy(evil, 'laptop', FrameType.RESET, seen.captured);
    assert.ok(resets.some((r) => r.code === 'E2E_HANDSHAKE_FAILED'), JSON.stringify(resets));
    assert.equal(seen.newBytes, 0);
  });

  test('a hub that strips the answer gets no plaintext fallback, for a new session and for a stream of one', async () => {
    for (const fresh of [true, false]) {
      if (fresh) await newSession();
      else await honestStream();
      const seen = await tampered('strip', (payload) => refusedRoundTrip(reachPort, payload));
      await refusal('E2E_REQUIRED', seen.lines);
    }
  });

  test('records replayed, reordered, dropped or cut short on their way to the reaching agent reset the stream', async () => {
    await honestStream();
    for (const [mode, code] of [
      ['replay', 'E2E_DECRYPT_FAILED'],
      ['reorder', 'E2E_DECRYPT_FAILED'],
      ['drop', 'E2E_DECRYPT_FAILED'],
      ['truncate', 'E2E_TRUNCATED'],
    ] as const) {
      evil.mode = mode;
      const from = reacher.lines.length;
      // Large enough to come back in many records; the client must see a reset, not a clean end.
      const { marker, payload } = markedPayload(mode === 'truncate' ? 1024 : 1024 * 1024);
      await assert.rejects(roundTrip(reachPort, payload, 15_000), /ECONNRESET/, `${mode}: the client must see the stream reset`);
      const event = await reacher.waitFor((l) => reacher.lines.indexOf(l) >= from && l.type === 'stream_reset' && l.by === 'local', 10_000, `${mode}: stream_reset`);
      assert.equal(event.code, code, `${mode}: ${JSON.stringify(event)}`);
      assert.equal(capturedContains(evil, marker), false);
    }
  });

  test('a record moved from one stream to another of the same session fails there: the keys are per stream', async () => {
    await honestStream();
    const opensFrom = evil.opens.length;
    const from = reacher.lines.length;
    evil.mode = 'splice';
    const x = await heldClient(reachPort);
    const xData = Buffer.from(`stream-x-${randomBytes(8).toString('hex')}\n`);
    assert.ok((await x.exchange(xData)).equals(xData), 'the first stream works: its record is what the hub moves');
    const y = await heldClient(reachPort);
    y.exchange(Buffer.from(`stream-y-${randomBytes(8).toString('hex')}\n`)).catch(() => undefined);
    const yEnded = await Promise.race([y.ended, sleep(10_000).then(() => 'still open')]);
    assert.equal(yEnded, 'ECONNRESET', `the stream that got the moved record is reset (it got ${JSON.stringify(y.received().toString())})`);
    assert.equal(y.received().length, 0, 'and delivered nothing, least of all the other stream bytes');
    const event = await reacher.waitFor((l) => reacher.lines.indexOf(l) >= from && l.type === 'stream_reset' && l.by === 'local', 10_000, 'stream_reset');
    assert.equal(event.code, 'E2E_DECRYPT_FAILED');
    const [ox, oy] = opensSince(opensFrom).map((o) => o.e2e);
    assert.ok(ox?.sid && ox.sid === oy?.sid && ox.n !== oy.n, `two streams of one session: ${JSON.stringify([ox, oy])}`);
    // The stream the record came from is untouched.
    evil.mode = 'honest';
    const more = Buffer.from('x again\n');
    assert.ok((await x.exchange(more)).equals(more));
    x.destroy();
  });

  test('a replayed stream open (the same session and stream number, with its first bytes) is refused; the target gets no second connection', async () => {
    await honestStream();
    const opensFrom = evil.opens.length;
    const marker = `replay-me-${randomBytes(8).toString('hex')}\n`;
    assert.equal((await roundTrip(reachPort, marker)).toString(), marker);
    const recorded = opensSince(opensFrom).find((o) => o.e2e?.sid && o.data.length > 0);
    assert.ok(recorded, `a stream of the session, with its data: ${JSON.stringify(opensSince(opensFrom).map((o) => o.e2e))}`);
    const connections = target.connections;
    const { answer } = await evil.inject(recorded, { dataAfterAnswer: false });
    assert.equal(answer?.type, FrameType.OPEN_ERROR);
    const error = JSON.parse(answer.payload.toString('utf8')) as { code: string; message: string };
    assert.equal(error.code, 'E2E_HANDSHAKE_FAILED');
    assert.match(error.message, /replayed open/);
    // The exposing agent logs what it refused (with --json as a line a log shipper reads).
    await exposer.waitFor((l) => l.type === 'open_rejected' && l.code === 'E2E_HANDSHAKE_FAILED' && /replayed open/.test(String(l.message)), 10_000, 'open_rejected at the exposing agent');
    assert.equal(target.connections, connections, 'no second connection to the target');
    assert.equal(target.all().toString('latin1').split(marker).length - 1, 1, 'the bytes reached the target once');
  });

  test("a replayed session handshake gets an answer that only the opener could use: the recorded stream's bytes are not delivered again", async () => {
    // Noise IK's first message carries no freshness (WireGuard adds a timestamp for it): a replay of it makes the
    // exposing agent do its handshake work and answer, with a fresh ephemeral key, so new session keys. Reading that
    // answer, or sealing for that session, needs the opener's ephemeral and static private keys: the replayer learns
    // nothing, and the records it replays (sealed for the recorded session) do not open in the new one.
    const recorded = evil.opens.find((o) => o.agent === 'laptop' && o.e2e?.hs && o.data.length > 0 && o.answer && decodeFrame(o.answer).type === FrameType.OPEN_OK);
    assert.ok(recorded, 'the first stream: a handshake with its data');
    const firstAnswer = JSON.parse(decodeFrame(recorded.answer!).payload.toString('utf8')) as { e2e: { hs: string } };
    const [connections, bytes, from] = [target.connections, target.all().length, exposer.lines.length];
    const { answer, frames } = await evil.inject(recorded, { dataAfterAnswer: true });
    assert.equal(answer?.type, FrameType.OPEN_OK, 'the exposing agent answers a replayed handshake');
    const replayAnswer = JSON.parse(answer.payload.toString('utf8')) as { e2e: { hs: string } };
    assert.ok(replayAnswer.e2e.hs && replayAnswer.e2e.hs !== firstAnswer.e2e.hs, 'with a new ephemeral key');
    const reset = frames.find((fr) => fr.type === FrameType.RESET);
    assert.equal(reset && (JSON.parse(reset.payload.toString('utf8')) as { code: string }).code, 'E2E_DECRYPT_FAILED', 'the replayed records do not open');
    assert.equal(frames.filter((fr) => fr.type === FrameType.DATA).length, 0, 'nothing came back on the replayed stream');
    const event = await exposer.waitFor((l) => exposer.lines.indexOf(l) >= from && l.type === 'stream_reset' && l.code === 'E2E_DECRYPT_FAILED', 10_000, 'stream_reset at the exposing agent');
    assert.equal(event.by, 'local');
    assert.ok(target.connections <= connections + 1);
    assert.equal(target.all().length, bytes, 'the target received no byte of the replay');
    assert.equal(target.all().toString('latin1').split(firstMarker).length - 1, 1, 'the recorded stream reached the target once');
    // The real session is unharmed.
    assert.equal((await roundTrip(reachPort, 'after the replay\n')).toString(), 'after the replay\n');
  });

  test("a stream renamed by the hub to another service of the same agent fails there; that service's server gets no plaintext", async () => {
    const c = await enrolAgent(f.hub, { label: 'cache-server' });
    f.homes.push(c.home);
    pointAt(c, evil.url);
    // cache-b speaks first: its banner, sealed for a stream to cache-b, must not open as one to cache-a either.
    const banner = `banner-${randomBytes(8).toString('hex')}\n`;
    const [cacheA, cacheB] = [await targetServer(), await targetServer(banner)];
    f.cleanups.push(() => cacheA.close(), () => cacheB.close());
    const events: AgentEvent[] = [];
    const exposed: Exposed = await expose(`127.0.0.1:${cacheA.port}`, { name: 'cache-a', home: c.home, onEvent: (e) => events.push(e) });
    f.cleanups.push(() => exposed.close());
    await exposed.agent.expose('cache-b', `127.0.0.1:${cacheB.port}`);
    const reached = await b.reach('cache-a', ['--port', '0']);
    f.procs.push(reached.proc);
    evil.mode = 'honest';
    assert.equal((await roundTrip(reached.port, 'cache\n')).toString(), 'cache\n', 'a session with cache-server');

    evil.mode = 'rename';
    evil.renameTo = 'cache-b';
    const opensFrom = evil.opens.length;
    const bBytes = cacheB.all().length;
    const { marker, payload } = markedPayload(4096);
    const reply = await refusedRoundTrip(reached.port, payload);
    assert.equal(reply.includes(Buffer.from(banner)), false, "the other service's first bytes did not come through");
    assert.equal(reply.includes(marker), false);
    assert.equal(cacheB.all().length, bBytes, 'the other service received no byte');
    assert.equal(capturedContains(evil, marker) || capturedContains(evil, Buffer.from(banner)), false, 'no plaintext at the hub');
    assert.ok(opensSince(opensFrom)[0]?.e2e?.sid, 'the renamed open was a stream of the session');
    // Which agent finds it first depends on what moves first (the opener's bytes or cache-b's banner); it is logged.
    const logged = () =>
      events.some((e) => (e.type === 'stream_reset' || e.type === 'stream_refused') && e.code === 'E2E_DECRYPT_FAILED') ||
      reached.proc.lines.some((l) => typeof l === 'object' && (l.type === 'stream_reset' || l.type === 'stream_refused') && l.code === 'E2E_DECRYPT_FAILED');
    for (let waited = 0; !logged() && waited < 10_000; waited += 50) await sleep(50);
    assert.ok(logged(), `E2E_DECRYPT_FAILED logged: ${JSON.stringify(events.filter((e) => e.type.startsWith('stream')))} ${JSON.stringify(reached.proc.lines)}`);
    evil.mode = 'honest';
  });

  test('a failed handshake or open reaches a client that has not written yet as a TCP reset, not a clean close with 0 bytes', async () => {
    const cases: Array<[EvilMode, string, 'new session' | 'session']> = [
      ['swap-keys', 'E2E_KEY_CHANGED', 'new session'],
      ['swap-static', 'E2E_HANDSHAKE_FAILED', 'new session'],
      ['flip-hs1', 'E2E_HANDSHAKE_FAILED', 'new session'],
      ['flip-hs2', 'E2E_HANDSHAKE_FAILED', 'new session'],
      ['strip', 'E2E_REQUIRED', 'new session'],
      ['swap-opener-key', 'E2E_HANDSHAKE_FAILED', 'session'],
      ['strip', 'E2E_REQUIRED', 'session'],
    ];
    for (const [mode, code, kind] of cases) {
      if (kind === 'session') await honestStream();
      else await newSession();
      evil.mode = mode;
      const from = reacher.lines.length;
      const outcome = await silentClient(reachPort);
      assert.deepEqual(outcome, { ending: 'reset', bytes: 0 }, `${mode} (${kind}): the client must see the failure as a reset`);
      await refusal(code, from);
    }
  });

  test('a record that fails its check once data flows is logged by both agents: the service, the stream and the code', async () => {
    await honestStream();
    // A replayed record mid-stream, the client still writing (no end yet, so the exposing agent's stream is still
    // open): the reaching agent finds it, the exposing agent learns of it from the RESET. A dropped end marker: found
    // once the exposing agent has sent its CLOSE and finished, so only the reaching agent can.
    const cases = [
      ['replay', 'E2E_DECRYPT_FAILED', () => resetWhileWriting(reachPort, randomBytes(64 * 1024)), true],
      ['truncate', 'E2E_TRUNCATED', () => roundTrip(reachPort, 'cut me short\n', 15_000), false],
    ] as const;
    for (const [mode, code, client, bothEnds] of cases) {
      evil.mode = mode;
      const [fromReacher, fromExposer] = [reacher.lines.length, exposer.lines.length];
      await assert.rejects(client(), /ECONNRESET/);
      const found = (proc: Proc, from: number, by: string) =>
        proc.waitFor((l) => proc.lines.indexOf(l) >= from && l.type === 'stream_reset' && l.code === code && l.by === by, 10_000, `${mode}: stream_reset ${code} by ${by}`);
      const events = [await found(reacher, fromReacher, 'local')];
      if (bothEnds) events.push(await found(exposer, fromExposer, 'remote'));
      for (const event of events) {
        assert.equal(event.name, 'prod-db');
        assert.ok(Number.isInteger(event.stream) && (event.stream as number) > 0, `a stream id: ${JSON.stringify(event)}`);
        assert.match(String(event.message), /\S/);
      }
    }
  });

  test('an honest hub again: the pinned key works as before, in a new session and in streams of it', async () => {
    await newSession();
    evil.mode = 'honest';
    assert.equal((await roundTrip(reachPort, 'still me\n')).toString(), 'still me\n');
    assert.equal((await roundTrip(reachPort, 'again\n')).toString(), 'again\n');
  });

  test('connect trust forgets the pin, so the next key is pinned (the choice trust on first use makes)', async () => {
    const listed = b.run(['trust']);
    assert.equal(listed.code, 0, listed.stderr);
    const known = (listed.json() as { agents: Array<{ label: string; fingerprint: string }> }).agents.filter((x) => x.label === 'db-server');
    assert.equal(known.length, 1);
    const unknown = b.run(['trust', 'nobody']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout + unknown.stderr, /NOT_FOUND/);

    const forgot = b.run(['trust', 'db-server']);
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.equal((forgot.json() as { removed: unknown[] }).removed.length, 1);
    await newSession();
    evil.mode = 'swap-keys';
    // The running reach process reads the changed file: the impostor's key is now accepted and pinned. Its IK
    // message is then sealed to the hub's static key, which the exposing agent cannot open: the stream still fails.
    assert.equal((await refusedRoundTrip(reachPort)).length, 0);
    const pinned = await reacher.waitFor((l) => l.type === 'agent_pinned' && l.fingerprint === keyFingerprint(evil.identityKey), 5000, 'the new pin');
    assert.notEqual(pinned.fingerprint, known[0]!.fingerprint);

    // Back to the real agent: its key is now the changed one, until trusted again.
    evil.mode = 'honest';
    await newSession();
    const from = reacher.lines.length;
    assert.equal((await refusedRoundTrip(reachPort)).length, 0);
    await refusal('E2E_KEY_CHANGED', from);
    assert.equal(b.run(['trust', 'prod-db']).code, 0, 'trust also matches a name the agent was reached by');
    assert.equal((await roundTrip(reachPort, 'real again\n')).toString(), 'real again\n');
  });
});
