/**
 * Bad input from an authenticated client, bad credentials, and bad enrolment requests. Agent A exposes an echo
 * server and agent B reaches it with a live connection in use the whole time; a raw WebSocket client with its own
 * valid agent token sends one kind of bad input per test. Each time the hub closes that client with the stable
 * code of the error (close code + `CODE: message` reason), and afterwards the live A→B tunnel still echoes on the
 * same connection, new tunnel connections work, and `connect ls` still lists the service: nothing stored is lost
 * and no other client is affected.
 *
 * The hub runs in this process so that tokens can be expired and revoked in its database.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  ERROR_CODES,
  FRAME_HEADER_SIZE,
  FrameType,
  PROTOCOL_VERSION,
  MAX_CONTROL_MESSAGE,
  MAX_FRAME_PAYLOAD,
  encodeFrame,
  encodeJsonFrame,
  writeHeader,
  type ErrorCode,
  type ServiceInfo,
} from '@private-connect/protocol';
import {
  attemptUpgrade,
  connect,
  connectRawAgent,
  echoServer,
  enrolAgentAsync,
  enrolViaApi,
  eventually,
  removeDirs,
  roundTrip,
  startInProcessHub,
  UpgradeRefused,
  type AsyncAgentHome,
  type CloseInfo,
  type InProcessHub,
  type Proc,
  type RawAgent,
  type TcpServer,
} from '../src/index.js';

/** Rejects with `what` if `promise` has not settled within `ms` (a hang guard, not a performance bound). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}

/** A header-only buffer: type, flags, stream id and an announced payload length, nothing after it. */
function header(type: number, streamId: number, length: number, flags = 0): Buffer {
  const buf = Buffer.alloc(FRAME_HEADER_SIZE);
  writeHeader(buf, type as FrameType, flags, streamId, length);
  return buf;
}

/** Seeded bytes (mulberry32) so that a failure can be replayed. */
function seededBytes(seed: number, length: number): Buffer {
  let a = seed >>> 0;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return out;
}

/** A client connection kept open through the tunnel: each line written must come back on the same socket. */
class LiveConnection {
  private received = '';
  private closed = false;
  private wake: (() => void) | undefined;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('utf8');
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  async echo(line: string): Promise<void> {
    const start = this.received.length;
    this.socket.write(line);
    await within(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (this.received.length - start >= line.length) resolve();
          else if (this.closed) reject(new Error(`the live tunnel connection closed; received: ${JSON.stringify(this.received.slice(start))}`));
        };
        this.wake = check;
        check();
      }).finally(() => (this.wake = undefined)),
      15_000,
      `echo of ${JSON.stringify(line)} on the live tunnel connection`,
    );
    assert.equal(this.received.slice(start, start + line.length), line);
  }
}

describe('bad input does not hurt the hub or other clients', () => {
  let hub: InProcessHub;
  let a: AsyncAgentHome;
  let b: AsyncAgentHome;
  let echo: TcpServer;
  let exposer: Proc;
  let reacher: { proc: Proc; port: number };
  let live: LiveConnection;
  /** The raw client's own agent, enrolled through the API. */
  let rogue: { token: string; agentId: string };
  let checks = 0;
  const homes: string[] = [];

  /** The A→B tunnel still works on the live connection and on a new one, and `connect ls` still lists it. */
  async function assertStillHealthy(): Promise<void> {
    const n = ++checks;
    await live.echo(`live check ${n}\n`);
    const fresh = await roundTrip(reacher.port, `fresh check ${n}\n`);
    assert.equal(fresh.toString(), `fresh check ${n}\n`);
    const listing = await b.run(['ls']);
    assert.equal(listing.code, 0, listing.stdout + listing.stderr);
    const row = (listing.json() as { services: ServiceInfo[] }).services.find((s) => s.name === 'echo');
    assert.ok(row, listing.stdout);
    assert.equal(row.online, true);
    assert.equal(row.agentLabel, 'server-a');
    for (const proc of [exposer, reacher.proc]) {
      const trouble = proc.lines.filter((l) => typeof l === 'object' && (l.type === 'disconnected' || l.type === 'error' || l.type === 'fatal'));
      assert.deepEqual(trouble, [], 'agents A and B must not have lost their connection');
    }
  }

  /** Opens a raw agent connection with the rogue's token, optionally completing the handshake. */
  async function rogueClient(handshake: boolean): Promise<RawAgent> {
    const raw = await connectRawAgent(hub.url, rogue.token);
    if (handshake) await raw.handshake();
    return raw;
  }

  /** The hub closed the connection with `code`'s close code and a `CODE: message` reason for people. */
  function assertClosedWith(closed: CloseInfo, code: ErrorCode, message: RegExp): void {
    assert.equal(closed.code, ERROR_CODES[code].close, `close code for ${code}; got ${closed.code} "${closed.reason}"`);
    assert.ok(closed.error, `the close reason must be "CODE: message", got "${closed.reason}"`);
    assert.equal(closed.error.code, code, closed.reason);
    assert.match(closed.error.message, message);
    assert.ok(Buffer.byteLength(closed.reason) <= 123, 'a close reason is at most 123 bytes');
  }

  before(async () => {
    hub = await startInProcessHub();
    [a, b] = await Promise.all([enrolAgentAsync(hub, { label: 'server-a' }), enrolAgentAsync(hub, { label: 'laptop-b' })]);
    homes.push(a.home, b.home);
    echo = await echoServer();
    exposer = await a.expose(`127.0.0.1:${echo.port}`, 'echo');
    reacher = await b.reach('echo', ['--port', '0']);
    live = new LiveConnection(await connect(reacher.port));
    await live.echo('live connection up\n');
    rogue = await enrolViaApi(hub.url, hub.apiKey, 'rogue');
  });

  after(async () => {
    live?.socket.destroy();
    await reacher?.proc.stop();
    await exposer?.stop();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, ...homes);
  });

  describe('a connected agent sending bad input is closed with a stable code', () => {
    const cases: Array<{ name: string; handshake: boolean; send: (raw: RawAgent) => void; code: ErrorCode; message: RegExp }> = [
      {
        name: 'garbage bytes (unknown first byte)',
        handshake: true,
        send: (raw) => raw.send(Buffer.from('\xff\xfegarbage that is not a frame at all', 'latin1')),
        code: 'PROTOCOL_ERROR',
        message: /unknown frame type 0xff/,
      },
      {
        name: 'garbage shorter than a frame header',
        handshake: true,
        send: (raw) => raw.send(Buffer.from([0x04, 0x00, 0x01])),
        code: 'PROTOCOL_ERROR',
        message: /a frame needs a 10-byte header, got 3 bytes/,
      },
      {
        name: 'garbage as the very first message, before hello',
        handshake: false,
        send: (raw) => raw.send(seededBytes(7, 4096)),
        code: 'PROTOCOL_ERROR',
        message: /unknown frame type|reserved bits|header announces/,
      },
      {
        name: 'a frame header announcing a payload larger than MAX_FRAME_PAYLOAD (header only)',
        handshake: true,
        send: (raw) => raw.send(header(FrameType.DATA, 1, MAX_FRAME_PAYLOAD + 1)),
        code: 'FRAME_TOO_LARGE',
        message: new RegExp(`frame payload of ${MAX_FRAME_PAYLOAD + 1} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`),
      },
      {
        name: 'a header announcing 4 GiB - 1',
        handshake: true,
        send: (raw) => raw.send(header(FrameType.DATA, 1, 0xffffffff)),
        code: 'FRAME_TOO_LARGE',
        message: /frame payload of 4294967295 bytes exceeds the limit/,
      },
      {
        name: 'a frame really carrying MAX_FRAME_PAYLOAD + 1 bytes',
        handshake: true,
        send: (raw) => raw.send(Buffer.concat([header(FrameType.DATA, 1, MAX_FRAME_PAYLOAD + 1), Buffer.alloc(MAX_FRAME_PAYLOAD + 1, 0x61)])),
        code: 'FRAME_TOO_LARGE',
        message: /exceeds the limit of 1048576/,
      },
      {
        name: 'a text (non-binary) WebSocket message',
        handshake: true,
        send: (raw) => raw.send(JSON.stringify({ t: 'req', id: 1, op: 'list', args: {} }), { binary: false }),
        code: 'PROTOCOL_ERROR',
        message: /text messages are not part of the protocol/,
      },
      {
        name: 'a frame of unknown type',
        handshake: true,
        send: (raw) => raw.send(header(0x42, 0, 0)),
        code: 'PROTOCOL_ERROR',
        message: /unknown frame type 0x42/,
      },
      {
        name: 'reserved flag bits',
        handshake: true,
        send: (raw) => raw.send(header(FrameType.PING, 0, 8, 0x80)),
        code: 'PROTOCOL_ERROR',
        message: /reserved bits/,
      },
      {
        // Stream 1 is the id B's live connection uses on B's socket: ids are per connection, so it is not B's.
        name: 'DATA on stream 1, never opened on this connection',
        handshake: true,
        send: (raw) => raw.send(encodeFrame(FrameType.DATA, 1, Buffer.from('injected into someone else’s stream?'))),
        code: 'PROTOCOL_ERROR',
        message: /DATA for stream 1, which was never opened/,
      },
      {
        // Stream 2 is the id the hub gave A's end of the live stream on A's socket.
        name: 'DATA on hub-side stream id 2, never allocated on this connection',
        handshake: true,
        send: (raw) => raw.send(encodeFrame(FrameType.DATA, 2, Buffer.from('x'))),
        code: 'PROTOCOL_ERROR',
        message: /DATA for stream 2, which was never opened/,
      },
      {
        name: 'a stream frame before hello',
        handshake: false,
        send: (raw) => raw.send(encodeFrame(FrameType.DATA, 1, Buffer.from('x'))),
        code: 'PROTOCOL_ERROR',
        message: /the first frame must be CONTROL hello, got DATA/,
      },
      {
        name: 'a CONTROL frame with invalid JSON',
        handshake: true,
        send: (raw) => raw.send(encodeFrame(FrameType.CONTROL, 0, Buffer.from('{"t":"req","id":1,'))),
        code: 'BAD_MESSAGE',
        message: /control message is not valid JSON/,
      },
      {
        name: 'a CONTROL frame with invalid JSON instead of hello',
        handshake: false,
        send: (raw) => raw.send(encodeFrame(FrameType.CONTROL, 0, Buffer.from('hello?'))),
        code: 'BAD_MESSAGE',
        message: /control message is not valid JSON/,
      },
      {
        name: 'a CONTROL message larger than MAX_CONTROL_MESSAGE',
        handshake: true,
        send: (raw) => {
          const json = Buffer.from(JSON.stringify({ t: 'req', id: 1, op: 'list', args: { pad: 'x'.repeat(MAX_CONTROL_MESSAGE) } }));
          assert.ok(json.length > MAX_CONTROL_MESSAGE);
          raw.send(Buffer.concat([header(FrameType.CONTROL, 0, json.length), json]));
        },
        code: 'CONTROL_TOO_LARGE',
        message: new RegExp(`control message of \\d+ bytes exceeds the limit of ${MAX_CONTROL_MESSAGE}`),
      },
      {
        name: 'a hello with the wrong protocol version',
        handshake: false,
        send: (raw) => raw.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION + 1, agent: { version: '9.9.9' } })),
        code: 'UNSUPPORTED_VERSION',
        message: new RegExp(`this hub speaks protocol ${PROTOCOL_VERSION}, the agent ${PROTOCOL_VERSION + 1}; install the matching connect version`),
      },
      {
        name: 'a hello whose version is not a number',
        handshake: false,
        send: (raw) => raw.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: '1', agent: { version: '0.1.0' } })),
        code: 'BAD_MESSAGE',
        message: /hello\.v must be an integer protocol version/,
      },
      {
        name: 'a second hello',
        handshake: true,
        send: (raw) => raw.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: 1, agent: { version: '0.1.0' } })),
        code: 'PROTOCOL_ERROR',
        message: /hello was already received/,
      },
    ];

    for (const c of cases) {
      test(c.name, async () => {
        const protocolErrorsBefore = hub.hub.stats.protocolErrors;
        const raw = await rogueClient(c.handshake);
        c.send(raw);
        const closed = await within(raw.closed, 15_000, `the hub closing the connection after ${c.name}`);
        assertClosedWith(closed, c.code, c.message);
        assert.equal(hub.hub.stats.protocolErrors, protocolErrorsBefore + 1, 'counted once as a protocol error');
        await eventually(async () => assert.ok(![...hub.hub.connections].some((conn) => conn.agentId === rogue.agentId), 'the closed connection is gone'));
        await assertStillHealthy();
      });
    }

    test('seeded random garbage, 20 rounds: always a protocol-family code, never a crash', async () => {
      for (let seed = 1; seed <= 20; seed++) {
        const raw = await rogueClient(true);
        raw.send(seededBytes(seed * 7919, 16 + ((seed * 131) % 2048)));
        const closed = await within(raw.closed, 15_000, `close after garbage seed ${seed}`);
        assert.ok(closed.error, `seed ${seed}: close reason "${closed.reason}" (${closed.code}) is not CODE: message`);
        assert.ok(['PROTOCOL_ERROR', 'FRAME_TOO_LARGE', 'CONTROL_TOO_LARGE'].includes(closed.error.code), `seed ${seed}: ${closed.reason}`);
        assert.equal(closed.code, ERROR_CODES[closed.error.code].close, `seed ${seed}`);
        assert.ok(closed.error.message.length > 10, `seed ${seed}: a message for people`);
      }
      await assertStillHealthy();
    });

    test('a WebSocket message far beyond the frame limit is cut by ws itself with 1009, the hub keeps serving', async () => {
      const raw = await rogueClient(true);
      raw.send(Buffer.concat([header(FrameType.DATA, 1, 4 * 1024 * 1024), Buffer.alloc(4 * 1024 * 1024)]));
      const closed = await within(raw.closed, 15_000, 'the hub closing the connection after a 4 MiB message');
      assert.equal(closed.code, 1009, `RFC 6455 "message too big"; got ${closed.code} "${closed.reason}"`);
      await assertStillHealthy();
    });

    test('a refusal that is not a protocol error (OPEN to a missing service) keeps the connection open', async () => {
      const raw = await rogueClient(true);
      const answer = await raw.open(1, 'no-such-service');
      assert.equal(answer.type, FrameType.OPEN_ERROR);
      const list = await raw.request('list', {});
      assert.equal(list.ok, true);
      assert.equal(raw.ws.readyState, raw.ws.OPEN);
      await raw.close();
      await assertStillHealthy();
    });
  });

  describe('bad credentials are refused at the WebSocket upgrade with 401 and a JSON code', () => {
    type Case = { name: string; authorization: () => Promise<string | undefined> | string | undefined; status: number; code: ErrorCode; message: RegExp };
    let expired: { token: string; agentId: string };
    let revoked: { token: string; agentId: string };
    let revokedAgent: { token: string; agentId: string };

    before(async () => {
      expired = await enrolViaApi(hub.url, hub.apiKey, 'expired');
      revoked = await enrolViaApi(hub.url, hub.apiKey, 'revoked');
      revokedAgent = await enrolViaApi(hub.url, hub.apiKey, 'revoked-agent');
      await hub.db.withSystem(async (tx) => {
        await tx.query(`update agent_tokens set expires_at = now() - interval '1 hour' where agent_id = $1`, [expired.agentId]);
        await tx.query('update agent_tokens set revoked_at = now() where agent_id = $1', [revoked.agentId]);
        await tx.query('update agents set revoked_at = now() where id = $1', [revokedAgent.agentId]);
      });
    });

    const cases: Case[] = [
      { name: 'no Authorization header', authorization: () => undefined, status: 401, code: 'UNAUTHORIZED', message: /missing credentials/ },
      { name: 'Basic instead of Bearer', authorization: () => 'Basic dXNlcjpwYXNzd29yZA==', status: 401, code: 'UNAUTHORIZED', message: /missing credentials/ },
      { name: '"Bearer" without a token', authorization: () => 'Bearer', status: 401, code: 'UNAUTHORIZED', message: /missing credentials/ },
      { name: 'a valid token followed by junk', authorization: () => `Bearer ${rogue.token} extra`, status: 401, code: 'UNAUTHORIZED', message: /missing credentials/ },
      { name: 'a token of the wrong shape', authorization: () => 'Bearer not-a-token', status: 401, code: 'UNAUTHORIZED', message: /credentials are not valid/ },
      { name: 'a long token of the wrong shape', authorization: () => `Bearer ${'a'.repeat(8000)}`, status: 401, code: 'UNAUTHORIZED', message: /credentials are not valid/ },
      { name: 'a wrong agent token (well formed, unknown)', authorization: () => `Bearer ${randomBytes(32).toString('hex')}`, status: 401, code: 'UNAUTHORIZED', message: /credentials are not valid/ },
      { name: 'an unknown API key', authorization: () => `Bearer pc_${'A'.repeat(32)}`, status: 401, code: 'UNAUTHORIZED', message: /credentials are not valid/ },
      { name: 'an expired agent token', authorization: () => `Bearer ${expired.token}`, status: 401, code: 'TOKEN_EXPIRED', message: /the agent token expired at .*; run `connect up` again/ },
      { name: 'a revoked agent token', authorization: () => `Bearer ${revoked.token}`, status: 401, code: 'UNAUTHORIZED', message: /credentials are not valid/ },
      { name: 'the token of a revoked agent', authorization: () => `Bearer ${revokedAgent.token}`, status: 401, code: 'UNAUTHORIZED', message: /credentials are not valid/ },
      { name: 'a valid API key (not an agent)', authorization: () => `Bearer ${hub.apiKey}`, status: 403, code: 'FORBIDDEN', message: /an API key cannot connect as an agent/ },
    ];

    for (const c of cases) {
      test(c.name, async () => {
        const failuresBefore = hub.hub.stats.authFailures;
        const authorization = await c.authorization();
        const answer = await attemptUpgrade(hub.url, authorization === undefined ? {} : { authorization });
        assert.equal(answer.status, c.status, JSON.stringify(answer.body));
        assert.match(String(answer.headers['content-type']), /^application\/json/);
        const { error } = answer.body as { error: { code: string; message: string } };
        assert.equal(error.code, c.code);
        assert.match(error.message, c.message);
        const secret = authorization?.split(/\s+/)[1];
        if (secret) assert.ok(!JSON.stringify(answer.body).includes(secret), 'the secret is not echoed back');
        assert.equal(hub.hub.stats.authFailures, failuresBefore + 1);
        // The ws client sees the same refusal.
        if (authorization) {
          await assert.rejects(
            connectRawAgent(hub.url, '', { authorization }),
            (err: unknown) => err instanceof UpgradeRefused && err.status === c.status && (err.body as { error: { code: string } }).error.code === c.code,
          );
        }
      });
    }

    test('an upgrade on another path is 404 NOT_FOUND, even with a valid token', async () => {
      const answer = await attemptUpgrade(hub.url, { authorization: `Bearer ${rogue.token}` }, '/v1/agents');
      assert.equal(answer.status, 404);
      assert.equal((answer.body as { error: { code: string } }).error.code, 'NOT_FOUND');
      await assertStillHealthy();
    });

    const cliCases: Array<{ name: string; code: ErrorCode; spoil: (agent: AsyncAgentHome) => Promise<void> }> = [
      {
        name: 'a wrong token',
        code: 'UNAUTHORIZED',
        spoil: async (agent) => writeFile(join(agent.home, 'config.json'), JSON.stringify({ ...(await agent.config()), token: randomBytes(32).toString('hex') })),
      },
      {
        name: 'a malformed token',
        code: 'UNAUTHORIZED',
        spoil: async (agent) => writeFile(join(agent.home, 'config.json'), JSON.stringify({ ...(await agent.config()), token: 'not a token at all' })),
      },
      {
        name: 'an expired token',
        code: 'TOKEN_EXPIRED',
        spoil: async (agent) => {
          const { agentId } = await agent.config();
          await hub.db.withSystem((tx) => tx.query(`update agent_tokens set expires_at = now() - interval '1 minute' where agent_id = $1`, [agentId]));
        },
      },
      {
        name: 'a revoked token',
        code: 'UNAUTHORIZED',
        spoil: async (agent) => {
          const { agentId } = await agent.config();
          await hub.db.withSystem((tx) => tx.query('update agent_tokens set revoked_at = now() where agent_id = $1', [agentId]));
        },
      },
    ];

    for (const c of cliCases) {
      test(`connect expose with ${c.name} exits 1 with ${c.code} instead of retrying`, async () => {
        const agent = await enrolAgentAsync(hub, { label: `cli-${c.code.toLowerCase()}` });
        homes.push(agent.home);
        await c.spoil(agent);
        const name = `never-${c.name.split(' ').pop()}`;
        const proc = agent.start(['expose', `127.0.0.1:${echo.port}`, '--name', name]);
        const exitCode = await within(proc.exited, 20_000, `connect expose (${c.name}) exiting`);
        assert.equal(exitCode, 1, proc.stderr());
        const lines = proc.lines.filter((l): l is Record<string, unknown> => typeof l === 'object');
        const errors = lines.filter((l) => l.type === 'error');
        assert.equal(errors.length, 1, `one error line, not a repeated one: ${JSON.stringify(lines)}`);
        assert.equal(errors[0]!.code, c.code, JSON.stringify(lines));
        assert.ok(typeof errors[0]!.message === 'string' && errors[0]!.message.length > 10);
        assert.deepEqual(lines.filter((l) => l.type === 'disconnected' || l.type === 'exposed'), [], 'no retry, nothing exposed');
        // Without --json: one `error: ... (CODE)` line for people on stderr, exit 1.
        const human = await agent.run(['expose', `127.0.0.1:${echo.port}`, '--name', name], { json: false });
        assert.equal(human.code, 1, human.stdout + human.stderr);
        const humanErrors = human.stderr.split('\n').filter((l) => l.startsWith('error:'));
        assert.equal(humanErrors.length, 1, human.stderr);
        assert.match(humanErrors[0]!, new RegExp(`^error: .{10,} \\(${c.code}\\)$`));
        // `connect ls` with the same folder fails with the same code over the HTTP API.
        const listing = await agent.run(['ls']);
        assert.equal(listing.code, 1);
        assert.equal(listing.lines().find((l) => l.type === 'error')?.code, c.code);
        // Nothing was stored: the name never shows up in the workspace.
        const names = ((await b.run(['ls'])).json() as { services: ServiceInfo[] }).services.map((s) => s.name);
        assert.ok(!names.includes(name), names.join(','));
      });
    }

    test('after all the refusals the tunnel and listing are intact', async () => {
      await assertStillHealthy();
    });
  });

  describe('POST /v1/agents/enroll with bad requests answers 4xx with a stable JSON code', () => {
    let agentsBefore: number;

    async function agentCount(): Promise<number> {
      const response = await fetch(`${hub.url}/v1/agents`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
      return ((await response.json()) as { agents: unknown[] }).agents.length;
    }

    before(async () => {
      agentsBefore = await agentCount();
    });

    type EnrolCase = { name: string; headers?: Record<string, string>; body?: string | Buffer; auth?: () => string | undefined; status: number; code: ErrorCode };
    const json = { 'content-type': 'application/json' };
    const cases: EnrolCase[] = [
      { name: 'bad JSON', headers: json, body: '{"label": ', status: 400, code: 'BAD_REQUEST' },
      { name: 'an empty JSON body', headers: json, body: '', status: 400, code: 'BAD_REQUEST' },
      { name: 'a JSON array', headers: json, body: '[]', status: 400, code: 'BAD_REQUEST' },
      { name: 'a JSON string', headers: json, body: '"label"', status: 400, code: 'BAD_REQUEST' },
      { name: 'an empty label', headers: json, body: '{"label":""}', status: 400, code: 'BAD_REQUEST' },
      { name: 'a label over 128 characters', headers: json, body: JSON.stringify({ label: 'x'.repeat(129) }), status: 400, code: 'BAD_REQUEST' },
      { name: 'a label that is an object', headers: json, body: '{"label":{"$ne":null}}', status: 400, code: 'BAD_REQUEST' },
      { name: 'a body that is not JSON', headers: { 'content-type': 'text/plain' }, body: 'label=x', status: 400, code: 'BAD_REQUEST' },
      { name: 'a huge body (2 MiB)', headers: json, body: JSON.stringify({ label: 'x', pad: 'y'.repeat(2 * 1024 * 1024) }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
      { name: 'no Authorization', headers: json, body: '{"label":"x"}', auth: () => undefined, status: 401, code: 'UNAUTHORIZED' },
      { name: 'a wrong API key', headers: json, body: '{"label":"x"}', auth: () => `Bearer pc_${'Z'.repeat(32)}`, status: 401, code: 'UNAUTHORIZED' },
      { name: 'a malformed Authorization', headers: json, body: '{"label":"x"}', auth: () => `Token ${hub.apiKey}`, status: 401, code: 'UNAUTHORIZED' },
      { name: 'an agent token instead of an API key', headers: json, body: '{"label":"x"}', auth: () => `Bearer ${rogue.token}`, status: 403, code: 'FORBIDDEN' },
      // Credentials are checked before the body: a stranger learns nothing about what the endpoint accepts.
      { name: 'bad JSON without credentials', headers: json, body: '{"label": ', auth: () => undefined, status: 401, code: 'UNAUTHORIZED' },
      { name: 'an invalid label with a wrong API key', headers: json, body: '{"label":""}', auth: () => `Bearer pc_${'Z'.repeat(32)}`, status: 401, code: 'UNAUTHORIZED' },
    ];

    for (const c of cases) {
      test(c.name, async () => {
        const authorization = c.auth ? c.auth() : `Bearer ${hub.apiKey}`;
        const response = await fetch(`${hub.url}/v1/agents/enroll`, {
          method: 'POST',
          headers: { ...c.headers, ...(authorization ? { authorization } : {}) },
          body: c.body,
        });
        assert.match(String(response.headers.get('content-type')), /^application\/json/);
        const body = (await response.json()) as { error?: { code: string; message: string } };
        assert.equal(response.status, c.status, JSON.stringify(body));
        assert.equal(body.error?.code, c.code, JSON.stringify(body));
        assert.ok(typeof body.error?.message === 'string' && body.error.message.length > 5, JSON.stringify(body));
        assert.ok(!JSON.stringify(body).includes(hub.apiKey), 'the API key is not echoed');
      });
    }

    test('none of them enrolled an agent; the hub keeps serving', async () => {
      assert.equal(await agentCount(), agentsBefore);
      const health = await fetch(`${hub.url}/healthz`);
      assert.deepEqual(await health.json(), { ok: true });
      await assertStillHealthy();
      // And a correct enrolment still works.
      const ok = await enrolViaApi(hub.url, hub.apiKey, 'after-the-storm');
      assert.match(ok.token, /^[0-9a-f]{64}$/);
    });
  });
});
