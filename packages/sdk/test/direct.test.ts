/**
 * Direct paths on the agents' side (src/direct/): an exposing agent's direct port and a reaching agent's paths to
 * it, over real sockets on 127.0.0.1, with real keys and the real end-to-end handshakes. The hub's part (candidates
 * and tickets) is played by this test with a ticket key of its own; the hub's side has its tests in apps/hub, and the
 * whole in network namespaces in e2e/test/direct-paths.test.ts.
 */

import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  DIRECT_SUSPECT_MS,
  FrameDecoder,
  FrameType,
  encodeJsonFrame,
  generateIdentity,
  generateStaticKey,
  makeDirectHello,
  signDirectTicket,
  signStaticKey,
  type DirectAnswer,
  type DirectStreamReport,
  type DirectTicketClaims,
  type ReachPath,
} from '@private-connect/protocol';
import { streamHandshakes } from '../src/agent/stream-handshake.js';
import { DirectServer } from '../src/direct/direct-server.js';
import { DirectPaths } from '../src/direct/direct-paths.js';

const WS = randomUUID();
const EXPOSER_ID = randomUUID();
const OPENER_ID = randomUUID();
const CONN_ID = randomUUID();

function keysOf() {
  const identity = generateIdentity();
  const staticKey = generateStaticKey();
  return {
    identity,
    staticKey,
    keys: { identityKey: identity.publicKey.toString('base64'), staticKey: staticKey.publicKey.toString('base64'), staticSig: signStaticKey(identity, staticKey.publicKey) },
  };
}

function ed25519(): { privateKey: KeyObject; publicKey: string } {
  const pair = generateKeyPairSync('ed25519');
  const raw = Buffer.from(pair.publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { privateKey: pair.privateKey, publicKey: raw.toString('base64') };
}

const hub = ed25519();
const exposer = keysOf();
const opener = keysOf();

function claims(overrides: Partial<DirectTicketClaims> = {}): DirectTicketClaims {
  const now = Date.now();
  return {
    v: 1,
    ws: WS,
    to: EXPOSER_ID,
    svc: 'echo',
    from: OPENER_ID,
    fromWs: WS,
    label: 'laptop',
    idk: opener.keys.identityKey,
    sk: opener.keys.staticKey,
    iat: now,
    exp: now + 5 * 60_000,
    jti: randomUUID(),
    conn: CONN_ID,
    ...overrides,
  };
}

/** An echo server: every connection gets its bytes back. */
async function echoServer(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Reads everything a raw client gets until the server closes; resolves with the bytes. */
function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('direct paths between two agents', () => {
  let echo: Server;
  let server: DirectServer;
  let port: number;
  const reports: DirectStreamReport[] = [];
  const refusals: string[] = [];
  const exposerHandshakes = streamHandshakes({ identity: exposer.identity, staticKey: exposer.staticKey, allowPlaintext: false, verifyPeer: () => undefined }, async () => undefined);
  let exposed = new Set(['echo']);

  before(async () => {
    echo = await echoServer();
    const target = (echo.address() as AddressInfo).port;
    server = new DirectServer({
      identity: exposer.identity,
      handshakes: exposerHandshakes,
      self: () => ({ agentId: EXPOSER_ID, workspaceId: WS, connectionId: CONN_ID, ticketKey: hub.publicKey }),
      onOpen: (open) => {
        if (!exposed.has(open.notice.service)) return open.refuse('SERVICE_NOT_FOUND', 'no such service');
        assert.equal(open.path, 'direct');
        const socket = netConnect({ host: '127.0.0.1', port: target });
        socket.on('error', () => undefined);
        socket.pause();
        socket.once('connect', () => {
          open.accept();
          open.stream.attach(socket);
        });
      },
      report: (r) => reports.push(r),
      refused: (_remote, reason) => refusals.push(reason),
    });
    port = await server.listen(0, '127.0.0.1');
  });

  after(async () => {
    await server.close();
    echo.close();
  });

  function paths(ask: (name: string) => Promise<DirectAnswer>) {
    const events: ReachPath[] = [];
    const openerHandshakes = streamHandshakes(
      { identity: opener.identity, staticKey: opener.staticKey, allowPlaintext: false, verifyPeer: () => undefined },
      async () => ({ agentId: EXPOSER_ID, label: 'server', keys: exposer.keys, plaintext: false }),
    );
    const direct = new DirectPaths({ identity: opener.identity, handshakes: openerHandshakes, ask, changed: (p) => events.push(p) });
    return { direct, events };
  }

  const answer = (candidates: { host: string; port: number }[], c = claims()): DirectAnswer => ({
    direct: {
      agentId: EXPOSER_ID,
      identityKey: exposer.keys.identityKey,
      candidates: candidates.map((x) => ({ ...x, source: 'local' as const })),
      ticket: signDirectTicket(c, hub.privateKey),
      expiresAt: c.exp,
    },
  });

  async function until<T>(what: string, check: () => T | undefined, ms = 5000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `data` through a stream opened on the direct path; resolves with what came back. */
  async function roundTrip(direct: DirectPaths, data: Buffer): Promise<Buffer> {
    const stream = await direct.open('echo');
    assert.ok(stream, 'a stream on the direct path');
    const [a, b] = await socketPair();
    stream.attach(a);
    const got: Buffer[] = [];
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      b.on('data', (c: Buffer) => {
        got.push(c);
        size += c.length;
        if (size >= data.length) resolve();
      });
      b.on('error', reject);
      b.write(data);
    });
    b.end();
    await new Promise((r) => b.on('close', r));
    return Buffer.concat(got);
  }

  test('the reaching agent proves the exposing agent, goes direct, and streams are end-to-end encrypted and reported', async () => {
    const { direct, events } = paths(async () => answer([{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port }]));
    direct.watch('echo');
    assert.deepEqual(events[0], { name: 'echo', mode: 'relay', reason: 'looking for a direct path' });
    const path = await until('direct', () => events.find((e) => e.mode === 'direct'));
    assert.equal(path.via, `127.0.0.1:${port}`);
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const back = await roundTrip(direct, data);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
    const report = await until('report', () => reports.at(-1));
    assert.equal(report.from, OPENER_ID);
    assert.equal(report.service, 'echo');
    assert.equal(report.bytesIn, data.length);
    assert.equal(report.bytesOut, data.length);
    assert.equal(exposerHandshakes.sessions.served, 1, 'one end-to-end session made on the direct path');
    direct.close();
  });

  test('no direct path from the hub: relayed, and the hub reason is said', async () => {
    const { direct, events } = paths(async () => ({ unavailable: { code: 'DIRECT_UNAVAILABLE', reason: 'the exposing agent runs with --no-direct' } }));
    direct.watch('echo');
    await until('reason', () => events.find((e) => e.reason === 'the exposing agent runs with --no-direct'));
    assert.equal(await direct.open('echo'), undefined, 'no stream: the caller goes through the hub');
    direct.close();
  });

  test('no candidate answers: relayed, naming each address tried', async () => {
    const closed = await echoServer();
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { direct, events } = paths(async () => answer([{ host: '127.0.0.1', port: closedPort }]));
    direct.watch('echo');
    const e = await until('failure', () => events.find((x) => x.reason?.startsWith('no address')));
    assert.match(e.reason!, new RegExp(`127\\.0\\.0\\.1:${closedPort} \\(refused\\)`));
    direct.close();
  });

  test('a port that answers as another agent (not signed by the expected identity) is not used', async () => {
    const { direct, events } = paths(async () => {
      const a = answer([{ host: '127.0.0.1', port }]);
      a.direct!.identityKey = keysOf().keys.identityKey;
      return a;
    });
    direct.watch('echo');
    const e = await until('failure', () => events.find((x) => x.reason?.startsWith('no address')));
    assert.match(e.reason!, /not the exposing agent/);
    direct.close();
  });

  test('a quiet connection sends new streams through the hub, and direct again once it answers', async () => {
    const { direct, events } = paths(async () => answer([{ host: '127.0.0.1', port }]));
    direct.watch('echo');
    await until('direct', () => events.find((e) => e.mode === 'direct'));
    // The exposing side stops reading: no PONG comes back.
    const sockets = (server as unknown as { links: Set<{ link: { socket: Socket } }> }).links;
    const serverSockets = [...sockets].map((l) => l.link.socket);
    for (const s of serverSockets) s.pause();
    const quietAt = Date.now();
    await until('suspect', () => events.find((e) => e.reason === 'the direct connection stopped answering'), 3000);
    assert.ok(Date.now() - quietAt >= DIRECT_SUSPECT_MS - 50);
    assert.equal(await direct.open('echo'), undefined, 'a quiet path takes no new stream');
    for (const s of serverSockets) s.resume();
    await until('direct again', () => (events.at(-1)?.mode === 'direct' ? true : undefined), 3000);
    const data = randomBytes(1000);
    assert.deepEqual(await roundTrip(direct, data), data);
    direct.close();
  });

  test('the hub revokes the reaching agent: its direct stream is cut at once and its tickets are refused after', async () => {
    const { direct, events } = paths(async () => answer([{ host: '127.0.0.1', port }]));
    direct.watch('echo');
    await until('direct', () => events.find((e) => e.mode === 'direct'));
    const stream = await direct.open('echo');
    assert.ok(stream);
    const [a, b] = await socketPair();
    stream.attach(a);
    const ended = new Promise<string>((resolve) => {
      b.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      b.on('close', () => resolve('closed'));
    });
    b.write('hello');
    assert.equal(server.cut({ agentId: OPENER_ID }, 'the agent was revoked'), 1);
    assert.match(await ended, /ECONNRESET|closed/);
    // A new hello with a ticket issued before the revocation is refused, and learns nothing.
    const refusedBefore = refusals.length;
    const raw = netConnect({ host: '127.0.0.1', port });
    const got = collect(raw);
    raw.write(encodeJsonFrame(FrameType.CONTROL, 0, makeDirectHello(opener.identity, signDirectTicket(claims(), hub.privateKey), Date.now())));
    assert.equal((await got).length, 0);
    assert.match(refusals[refusedBefore]!, /revoked/);
    direct.close();
    // Tickets naming another agent still work.
    (server as unknown as { revokedAgents: Map<string, number> }).revokedAgents.clear();
  });

  describe('what the direct port refuses, telling nothing', () => {
    const cases: Array<[string, () => Buffer | Buffer[]]> = [
      ['garbage', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ['a frame that is not a hello', () => encodeJsonFrame(FrameType.OPEN, 1, { service: 'echo' })],
      ['a huge first frame', () => Buffer.concat([Buffer.from([FrameType.CONTROL, 0, 0, 0, 0, 0]), Buffer.from([0, 0x10, 0, 0])])],
      ['a ticket signed by another key', () => hello(signDirectTicket(claims(), ed25519().privateKey))],
      ['an expired ticket', () => hello(signDirectTicket(claims({ iat: Date.now() - 20 * 60_000, exp: Date.now() - 10 * 60_000 }), hub.privateKey))],
      ['a ticket for another agent', () => hello(signDirectTicket(claims({ to: randomUUID() }), hub.privateKey))],
      ['a ticket for another process of the same agent (another hub connection)', () => hello(signDirectTicket(claims({ conn: randomUUID() }), hub.privateKey))],
      ['a valid ticket of another workspace', () => hello(signDirectTicket(claims({ ws: randomUUID(), fromWs: randomUUID() }), hub.privateKey))],
      ['a ticket held by someone without its identity key', () => hello(signDirectTicket(claims(), hub.privateKey), generateIdentity())],
      ['a hello from an hour ago', () => hello(signDirectTicket(claims(), hub.privateKey), opener.identity, Date.now() - 3600_000)],
      ['a tampered ticket', () => {
        const t = signDirectTicket(claims(), hub.privateKey);
        const [body, sig] = t.split('.');
        const c = JSON.parse(Buffer.from(body!, 'base64url').toString());
        c.svc = 'other';
        return hello(`${Buffer.from(JSON.stringify(c)).toString('base64url')}.${sig}`);
      }],
    ];
    function hello(ticket: string, identity = opener.identity, ts = Date.now()): Buffer {
      return encodeJsonFrame(FrameType.CONTROL, 0, makeDirectHello(identity, ticket, ts));
    }
    for (const [name, bytes] of cases) {
      test(`${name}: cut off, zero bytes back`, async () => {
        const socket = netConnect({ host: '127.0.0.1', port });
        const got = collect(socket);
        for (const part of [bytes()].flat()) socket.write(part);
        assert.equal((await got).length, 0);
      });
    }

    test('connections that say nothing hold at most 256 places; the next is dropped, and the port serves again once they go', async () => {
      const silent: Socket[] = [];
      for (let i = 0; i < 256; i++) {
        const s = netConnect({ host: '127.0.0.1', port });
        s.on('error', () => undefined);
        silent.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      await until('all pending', () => ((server as unknown as { pending: Set<Socket> }).pending.size >= 256 ? true : undefined));
      const extra = netConnect({ host: '127.0.0.1', port });
      const got = collect(extra);
      extra.write(hello(signDirectTicket(claims(), hub.privateKey)));
      assert.equal((await got).length, 0, 'the 257th is dropped');
      assert.match(refusals.at(-1)!, /more than 256 connections/);
      for (const s of silent) s.destroy();
      await until('freed', () => ((server as unknown as { pending: Set<Socket> }).pending.size === 0 ? true : undefined));
      const ok = netConnect({ host: '127.0.0.1', port });
      const welcome = new Promise<Buffer>((resolve) => ok.once('data', resolve));
      ok.write(hello(signDirectTicket(claims(), hub.privateKey)));
      assert.ok((await welcome).length > 0);
      ok.destroy();
    });

    test('a replayed hello (the same bytes again): cut off, zero bytes back', async () => {
      const bytes = hello(signDirectTicket(claims(), hub.privateKey));
      const first = netConnect({ host: '127.0.0.1', port });
      const welcome = new Promise<Buffer>((resolve) => first.once('data', resolve));
      first.write(bytes);
      assert.ok((await welcome).length > 0, 'the first hello is welcomed');
      first.destroy();
      const again = netConnect({ host: '127.0.0.1', port });
      const got = collect(again);
      again.write(bytes);
      assert.equal((await got).length, 0);
      assert.match(refusals.at(-1)!, /replayed/);
    });

    test('through a share, the reaching agent names the service alias/service and the ticket the service: served', async () => {
      const share = { id: randomUUID(), name: 'pg-share' };
      const { direct, events } = paths(async () => answer([{ host: '127.0.0.1', port }], claims({ share, fromWs: randomUUID() })));
      direct.watch('acme/echo');
      await until('direct', () => events.find((e) => e.mode === 'direct'));
      const stream = await direct.open('acme/echo');
      assert.ok(stream, 'opened on the direct path');
      stream.reset('STREAM_CLOSED', 'done');
      // The share's streams are cut with the share.
      assert.equal(server.cut({ shareId: share.id }, 'the share was revoked'), 1);
      direct.close();
      (server as unknown as { revokedShares: Map<string, number> }).revokedShares.clear();
    });

    test('a ticket for another service opens nothing of this one, and says no more', async () => {
      exposed = new Set(['echo', 'other']);
      const socket = netConnect({ host: '127.0.0.1', port });
      const decoder = new FrameDecoder();
      const frames: Array<{ type: number; payload: Buffer }> = [];
      socket.on('data', (c: Buffer) => frames.push(...decoder.push(c)));
      socket.write(hello(signDirectTicket(claims({ svc: 'other' }), hub.privateKey)));
      socket.write(encodeJsonFrame(FrameType.OPEN, 1, { service: 'echo' }));
      await until('answer', () => (frames.length >= 2 ? true : undefined));
      assert.equal(frames[0]!.type, FrameType.CONTROL, 'welcome');
      assert.equal(frames[1]!.type, FrameType.OPEN_ERROR);
      const error = JSON.parse(frames[1]!.payload.toString());
      assert.equal(error.code, 'DIRECT_REFUSED');
      assert.doesNotMatch(error.message, /echo/);
      socket.destroy();
      exposed = new Set(['echo']);
    });
  });
});

async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = netConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  const inner = await accepted;
  server.close();
  inner.pause();
  return [inner, client];
}


