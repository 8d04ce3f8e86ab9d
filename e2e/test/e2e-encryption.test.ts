/**
 * End-to-end encryption with real processes: a real hub, `connect expose` and `connect reach`, with every agent
 * WebSocket passing through a recording (and, when told, malicious) hub in front of it (evil-hub.ts).
 *
 * What must hold: the hub never sees a stream's plaintext; plaintext only when both agents pass --no-e2e; the
 * reaching agent pins the exposing agent's identity key and refuses a hub that swaps keys, strips the handshake,
 * replays or cuts records; `connect trust` forgets a pin.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FrameFlag, FrameType, decodeFrame, keyFingerprint } from '@private-connect/protocol';
import {
  connectRawAgent,
  echoServer,
  enrolAgent,
  enrolViaApi,
  eventually,
  removeDirs,
  roundTrip,
  startEvilHub,
  startHubProcess,
  type AgentHome,
  type EvilHub,
  type HubProcess,
  type Proc,
  type TcpServer,
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
  return evil.captured.some((message) => message.includes(marker));
}

/** DATA frames the hub relayed since `from`, split by the ENCRYPTED flag. */
function dataFrames(evil: EvilHub, from: number): { encrypted: number; plain: number } {
  const counts = { encrypted: 0, plain: 0 };
  for (const message of evil.captured.slice(from)) {
    const frame = decodeFrame(message);
    if (frame.type !== FrameType.DATA) continue;
    if (frame.flags & FrameFlag.ENCRYPTED) counts.encrypted++;
    else counts.plain++;
  }
  return counts;
}

/** A client connection through the reach port that gets nothing back: closed, with no byte of the echo. */
async function refusedRoundTrip(port: number): Promise<Buffer> {
  try {
    return await roundTrip(port, 'anyone there?\n', 10_000);
  } catch {
    return Buffer.alloc(0);
  }
}

/** A real hub, a hub in front of it, agents "db-server" (exposes) and "laptop" (reaches), and an echo server. */
interface Fixture {
  hub: HubProcess;
  evil: EvilHub;
  a: AgentHome;
  b: AgentHome;
  echo: TcpServer;
  /** Processes to stop at the end, in reverse. */
  procs: Proc[];
  stop(): Promise<void>;
}

/** `through`: the agents whose WebSocket goes through the hub in front (the others use the real hub directly). */
async function startFixture(through: Array<'a' | 'b'>): Promise<Fixture> {
  const hub = await startHubProcess();
  const evil = await startEvilHub(hub.url);
  const [a, b] = await Promise.all([enrolAgent(hub, { label: 'db-server' }), enrolAgent(hub, { label: 'laptop' })]);
  if (through.includes('a')) pointAt(a, evil.url);
  if (through.includes('b')) pointAt(b, evil.url);
  const echo = await echoServer();
  const procs: Proc[] = [];
  return {
    hub,
    evil,
    a,
    b,
    echo,
    procs,
    async stop() {
      for (const proc of procs.reverse()) await proc.stop();
      await echo.close();
      await evil.close();
      await hub.stop();
      await removeDirs(hub.dataDir, a.home, b.home);
    },
  };
}

describe('end-to-end encryption through a hub that records everything', () => {
  let f: Fixture;
  let hub: HubProcess;
  let evil: EvilHub;
  let a: AgentHome;
  let b: AgentHome;
  let echo: TcpServer;
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
    assert.equal(capturedContains(evil, marker), false, 'the plaintext marker appeared in what the hub relayed');
    const frames = dataFrames(evil, from);
    assert.ok(frames.encrypted >= 8, `expected encrypted DATA frames both ways, got ${JSON.stringify(frames)}`);
    assert.equal(frames.plain, 0);

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
    const net = await import('node:net');
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
  const net = await import('node:net');
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
  const net = await import('node:net');
  const socket = net.connect(port, '127.0.0.1');
  socket.on('data', () => undefined);
  socket.write(payload);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`still open after ${timeoutMs} ms`))), timeoutMs);
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    socket.once('close', () => (clearTimeout(timer), resolve()));
  });
}

describe('a malicious hub cannot read or steer an encrypted stream', () => {
  let f: Fixture;
  let evil: EvilHub;
  let b: AgentHome;
  let reachPort: number;
  let reacher: Proc;
  let exposer: Proc;

  before(async () => {
    f = await startFixture(['b']);
    ({ evil, b } = f);
    const { a, echo, procs } = f;
    exposer = await a.expose(`127.0.0.1:${echo.port}`, 'prod-db');
    procs.push(exposer);
    const reached = await b.reach('prod-db', ['--port', '0']);
    procs.push(reached.proc);
    reacher = reached.proc;
    reachPort = reached.port;
    // First use, through an honest hub: the key is pinned.
    assert.equal((await roundTrip(reachPort, 'first\n')).toString(), 'first\n');
    await reacher.waitFor((l) => l.type === 'agent_pinned', 5000, 'agent_pinned event');
  });

  after(async () => {
    await f?.stop();
  });

  const refusal = (code: string) => reacher.waitFor((l) => l.type === 'stream_refused' && l.code === code, 10_000, `stream_refused ${code}`);

  test('a hub that swaps in its own identity key (validly signed) is refused by the pin, with a warning and the way out', async () => {
    evil.mode = 'swap-identity';
    const reply = await refusedRoundTrip(reachPort);
    assert.equal(reply.length, 0, 'nothing may come back through a stream to an impostor');
    const event = await refusal('E2E_KEY_CHANGED');
    assert.match(String(event.message), /IDENTITY KEY CHANGED/);
    assert.match(String(event.message), new RegExp(keyFingerprint(evil.identityKey).replace(/[+/]/g, '\\$&')));
    assert.match(String(event.message), /connect trust db-server/);
  });

  test('a hub that swaps the ephemeral key fails the handshake signature', async () => {
    evil.mode = 'swap-ephemeral';
    assert.equal((await refusedRoundTrip(reachPort)).length, 0);
    await refusal('E2E_HANDSHAKE_FAILED');
  });

  test('a hub that strips the handshake gets no plaintext fallback', async () => {
    evil.mode = 'strip';
    assert.equal((await refusedRoundTrip(reachPort)).length, 0);
    await refusal('E2E_REQUIRED');
  });

  test('a replayed record resets the stream instead of delivering bytes twice', async () => {
    evil.mode = 'replay';
    // Large enough to come back in many records: the second one the reaching agent sees is the replayed first.
    const payload = randomBytes(4 * 1024 * 1024);
    await assert.rejects(roundTrip(reachPort, payload, 15_000), /ECONNRESET/, 'the client must see the stream reset, not a clean end');
  });

  test('a hub that drops the end-of-stream record cannot pass a cut stream off as complete', async () => {
    evil.mode = 'truncate';
    await assert.rejects(roundTrip(reachPort, 'the end matters\n', 10_000), /ECONNRESET/, 'a truncated stream must not end cleanly');
  });

  test('a failed handshake reaches a client that has not written yet as a TCP reset, not a clean close with 0 bytes', async () => {
    for (const [mode, code] of [['swap-identity', 'E2E_KEY_CHANGED'], ['swap-ephemeral', 'E2E_HANDSHAKE_FAILED'], ['strip', 'E2E_REQUIRED']] as const) {
      evil.mode = mode;
      const from = reacher.lines.length;
      const outcome = await silentClient(reachPort);
      assert.deepEqual(outcome, { ending: 'reset', bytes: 0 }, `${mode}: the client must see the failure as a reset`);
      assert.ok(
        reacher.lines.slice(from).some((l) => typeof l === 'object' && l.type === 'stream_refused' && l.code === code),
        `${mode}: the reaching agent says why (stream_refused ${code})`,
      );
    }
  });

  test('a record that fails its check once data flows is logged by both agents: the service, the stream and the code', async () => {
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

  test('an honest hub again: the pinned key works as before', async () => {
    evil.mode = 'honest';
    assert.equal((await roundTrip(reachPort, 'still me\n')).toString(), 'still me\n');
  });

  test('connect trust forgets the pin, so the next key is pinned (the choice trust on first use makes)', async () => {
    const listed = b.run(['trust']);
    assert.equal(listed.code, 0, listed.stderr);
    const before = listed.json() as { agents: Array<{ label: string; fingerprint: string }> };
    assert.equal(before.agents.length, 1);
    const unknown = b.run(['trust', 'nobody']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout + unknown.stderr, /NOT_FOUND/);

    const forgot = b.run(['trust', 'db-server']);
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.equal((forgot.json() as { removed: unknown[] }).removed.length, 1);
    evil.mode = 'swap-identity';
    // The running reach process reads the changed file: the impostor's key is now accepted and pinned. This hub
    // only forges answers (it does not re-encrypt towards the exposing agent), so the stream still fails there.
    assert.equal((await refusedRoundTrip(reachPort)).length, 0);
    const pinned = await reacher.waitFor((l) => l.type === 'agent_pinned' && l.fingerprint === keyFingerprint(evil.identityKey), 5000, 'the new pin');
    assert.notEqual(pinned.fingerprint, before.agents[0]!.fingerprint);

    // Back to the real agent: its key is now the changed one, until trusted again.
    evil.mode = 'honest';
    assert.equal((await refusedRoundTrip(reachPort)).length, 0);
    assert.equal(b.run(['trust', 'prod-db']).code, 0, 'trust also matches a name the agent was reached by');
    assert.equal((await roundTrip(reachPort, 'real again\n')).toString(), 'real again\n');
  });
});
