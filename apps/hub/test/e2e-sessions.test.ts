/**
 * What the hub does for end-to-end sessions between agents (issue 24): it checks and stores each agent's static key
 * from hello, hands the keys to the other agent (OPEN notice, resolve, GET /v1/agents), relays the opener's early
 * data before OPEN_OK, and tells agents to drop sessions (end_sessions) when an agent or a share is revoked or an
 * agent comes back with another identity. The agents here speak the raw protocol over `ws`.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import {
  ERROR_CODES,
  FrameType,
  INITIAL_STREAM_WINDOW,
  MAX_FRAME_PAYLOAD,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  generateIdentity,
  generateStaticKey,
  parseCloseReason,
  parseControlResult,
  parseHubMessage,
  parseOpenNotice,
  signStaticKey,
  type AgentKeys,
  type Frame,
  type HubMessage,
} from '@private-connect/protocol';
import { Writable } from 'node:stream';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { startHub, type Hub } from '../src/hub.js';
import { createLogger } from '../src/logger.js';
import { createApiKey } from '../src/store/bootstrap.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';
import { eventually, startTestHub, type TestHub } from './support/test-hub.js';

/** A well-formed v2 offer of a new session: the hub passes it through without reading it. */
const OFFER = { v: 2, hs: Buffer.alloc(48, 7).toString('base64') };

/** A fresh identity and static key, as an agent sends them in hello. */
function newKeys(): AgentKeys {
  const identity = generateIdentity();
  const staticKey = generateStaticKey().publicKey;
  return { identityKey: identity.publicKey.toString('base64'), staticKey: staticKey.toString('base64'), staticSig: signStaticKey(identity, staticKey) };
}

interface RawAgent {
  ws: WebSocket;
  send(frame: Buffer): void;
  /** The next frame received (replies excluded) that matches, taken out of the queue; waits for it. */
  next(match: (frame: Frame, msg?: HubMessage) => boolean): Promise<Frame>;
  /** Sends a control request and resolves with its reply. */
  request(op: string, args: Record<string, unknown>): Promise<Extract<HubMessage, { t: 'reply' }>>;
  /** Control messages received so far that were not replies, welcome or taken by `next`. */
  controls(): HubMessage[];
  closed: Promise<{ code: number; reason: string }>;
}

/**
 * Connects with `hello` fields on top of a plain hello; resolves after the welcome, or with the close when the hub
 * refuses the hello.
 */
function connectRaw(hub: { hub: Hub }, token: string, hello: object = {}): Promise<RawAgent | { code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${hub.hub.port}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
    const queue: Array<{ frame: Frame; msg?: HubMessage }> = [];
    let wake: Array<() => void> = [];
    const replies = new Map<number, (msg: Extract<HubMessage, { t: 'reply' }>) => void>();
    let nextId = 1;
    const closed = new Promise<{ code: number; reason: string }>((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    let welcomed = false;
    void closed.then((c) => {
      if (!welcomed) resolve(c);
    });
    ws.on('error', reject);
    ws.on('open', () => ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'test', label: 'raw' }, ...hello })));
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(data);
      const msg = frame.type === FrameType.CONTROL ? parseHubMessage(frame.payload) : undefined;
      if (msg?.t === 'reply') {
        replies.get(msg.id)?.(msg);
        return void replies.delete(msg.id);
      }
      if (msg?.t === 'welcome') {
        welcomed = true;
        return resolve(agent);
      }
      queue.push(msg ? { frame, msg } : { frame });
      for (const w of wake.splice(0)) w();
    });
    const agent: RawAgent = {
      ws,
      closed,
      send: (frame) => ws.send(frame),
      async next(match) {
        for (;;) {
          const at = queue.findIndex((q) => match(q.frame, q.msg));
          if (at >= 0) return queue.splice(at, 1)[0]!.frame;
          await new Promise<void>((r) => wake.push(r));
        }
      },
      request: (op, args) =>
        new Promise((res) => {
          const id = nextId++;
          replies.set(id, res);
          ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id, op, args }));
        }),
      controls: () => queue.filter((q) => q.msg).map((q) => q.msg!),
    };
  });
}

async function agentOf(t: { hub: Hub }, token: string, hello: object = {}): Promise<RawAgent> {
  const agent = await connectRaw(t, token, hello);
  if (!('ws' in agent)) throw new Error(`hello refused: ${agent.code} ${agent.reason}`);
  return agent;
}

const isEndSessions = (_f: Frame, msg?: HubMessage) => msg?.t === 'end_sessions';
const endSessionsOf = (frame: Frame) => parseHubMessage(frame.payload) as Extract<HubMessage, { t: 'end_sessions' }>;

/** After a round trip on `agent`'s socket, whatever the hub sent it before is in its queue. */
async function roundTrip(agent: RawAgent): Promise<void> {
  const reply = await agent.request('list', {});
  assert.equal(reply.ok, true, JSON.stringify(reply));
}

describe(`end-to-end sessions on the hub (${dbKind})`, () => {
  let t: TestHub;

  before(async () => {
    t = await startTestHub();
  });

  after(async () => {
    await t?.close();
  });

  test('refuses a hello whose static key is signed by another identity', async () => {
    const { token } = await t.enrol('forger');
    const mine = newKeys();
    const other = newKeys();
    const closed = await connectRaw(t, token, { identityKey: mine.identityKey, staticKey: other.staticKey, staticSig: other.staticSig });
    assert.ok(!('ws' in closed), 'the hub must not welcome the agent');
    assert.equal(closed.code, ERROR_CODES.BAD_MESSAGE.close);
    assert.equal(parseCloseReason(closed.reason)?.code, 'BAD_MESSAGE');
    assert.match(closed.reason, /staticSig is not hello\.identityKey's signature/);
  });

  test('refuses a hello with a static key but no signature, or no identity key', async () => {
    const { token } = await t.enrol('unsigned');
    const keys = newKeys();
    for (const hello of [{ identityKey: keys.identityKey, staticKey: keys.staticKey }, { staticKey: keys.staticKey, staticSig: keys.staticSig }]) {
      const closed = await connectRaw(t, token, hello);
      assert.ok(!('ws' in closed), `the hub must not welcome ${JSON.stringify(Object.keys(hello))}`);
      assert.equal(parseCloseReason(closed.reason)?.code, 'BAD_MESSAGE');
      assert.match(closed.reason, /staticKey needs hello\.identityKey and hello\.staticSig/);
    }
  });

  test('stores a signed static key and lists it in GET /v1/agents', async () => {
    const { token, agentId } = await t.enrol('signed');
    const keys = newKeys();
    const agent = await agentOf(t, token, keys);
    try {
      const listed = await eventually(async () => {
        const answer = await t.http('GET', '/v1/agents', { token: t.apiKey });
        const row = (answer.body.agents as Array<{ id: string; identityKey: string | null; staticKey: string | null }>).find((a) => a.id === agentId);
        return row?.staticKey ? row : undefined;
      });
      assert.equal(listed.staticKey, keys.staticKey);
      assert.equal(listed.identityKey, keys.identityKey);
      const [row] = await t.hub.db.withSystem((tx) => tx.query<{ static_sig: string }>('select static_sig from agents where id = $1', [agentId]));
      assert.equal(row!.static_sig, keys.staticSig);
    } finally {
      agent.ws.close();
    }
  });

  test('the OPEN notice names the opener by its keys, resolve hands out the exposing agent\'s, and early data reaches the target', async () => {
    const exposerKeys = newKeys();
    const openerKeys = newKeys();
    const exposer = await agentOf(t, (await t.enrol('exposer')).token, exposerKeys);
    const opener = await agentOf(t, (await t.enrol('opener')).token, openerKeys);
    try {
      assert.equal((await exposer.request('expose', { name: 'db', target: '127.0.0.1:5432' })).ok, true);
      // Stored after the welcome: resolve reads the keys from the agents table.
      const service = await eventually(async () => {
        const reply = await opener.request('resolve', { name: 'db' });
        const info = reply.ok ? (reply.result as { service: { keys?: AgentKeys } }).service : undefined;
        return info?.keys ? info : undefined;
      });
      assert.deepEqual(service.keys, exposerKeys);
      // The agent-facing answer validates against the protocol's schema, keys included.
      assert.deepEqual(parseControlResult('resolve', { service }).service.keys, exposerKeys);
      const reached = await opener.request('reach', { name: 'db', localPort: 15432 });
      assert.ok(reached.ok, JSON.stringify(reached));
      assert.deepEqual(parseControlResult('reach', reached.result).service.keys, exposerKeys);

      // OPEN, then DATA and CLOSE at once, before any answer.
      opener.send(encodeJsonFrame(FrameType.OPEN, 1, { service: 'db', e2e: OFFER }));
      opener.send(encodeFrame(FrameType.DATA, 1, Buffer.from('first bytes')));
      opener.send(encodeFrame(FrameType.CLOSE, 1));
      const open = await exposer.next((f) => f.type === FrameType.OPEN);
      const notice = parseOpenNotice(open.payload);
      assert.equal(notice.from.identityKey, openerKeys.identityKey);
      assert.equal(notice.from.staticKey, openerKeys.staticKey);
      assert.deepEqual(notice.e2e, OFFER);
      const data = await exposer.next((f) => f.type === FrameType.DATA && f.streamId === open.streamId);
      assert.equal(data.payload.toString(), 'first bytes');
      await exposer.next((f) => f.type === FrameType.CLOSE && f.streamId === open.streamId);

      // The target answers, then closes its side: the opener gets both, the stream ends.
      exposer.send(encodeJsonFrame(FrameType.OPEN_OK, open.streamId, { e2e: { v: 2, hs: OFFER.hs } }));
      exposer.send(encodeFrame(FrameType.CLOSE, open.streamId));
      await opener.next((f) => f.type === FrameType.OPEN_OK && f.streamId === 1);
      await opener.next((f) => f.type === FrameType.CLOSE && f.streamId === 1);
      await eventually(async () => ![...t.hub.connections].some((c) => c.streams.size > 0));
    } finally {
      exposer.ws.close();
      opener.ws.close();
    }
  });

  test('drops early data with the pair when the target refuses the open', async () => {
    const exposer = await agentOf(t, (await t.enrol('refuser')).token);
    const opener = await agentOf(t, (await t.enrol('hasty')).token);
    try {
      assert.equal((await exposer.request('expose', { name: 'refusing', target: '127.0.0.1:5432' })).ok, true);
      opener.send(encodeJsonFrame(FrameType.OPEN, 1, { service: 'refusing', e2e: OFFER }));
      opener.send(encodeFrame(FrameType.DATA, 1, Buffer.from('lost')));
      const open = await exposer.next((f) => f.type === FrameType.OPEN);
      await exposer.next((f) => f.type === FrameType.DATA && f.streamId === open.streamId);
      exposer.send(encodeJsonFrame(FrameType.OPEN_ERROR, open.streamId, { code: 'E2E_SESSION_UNKNOWN', message: 'no such session' }));
      const refused = await opener.next((f) => f.type === FrameType.OPEN_ERROR && f.streamId === 1);
      assert.equal(JSON.parse(refused.payload.toString()).code, 'E2E_SESSION_UNKNOWN');
      // A late DATA of the refused stream is dropped, and both connections go on.
      opener.send(encodeFrame(FrameType.DATA, 1, Buffer.from('late')));
      await roundTrip(opener);
      await roundTrip(exposer);
    } finally {
      exposer.ws.close();
      opener.ws.close();
    }
  });

  test('refuses DATA from the target before its OPEN_OK', async () => {
    const exposer = await agentOf(t, (await t.enrol('eager-target')).token);
    const opener = await agentOf(t, (await t.enrol('patient-opener')).token);
    try {
      assert.equal((await exposer.request('expose', { name: 'eager', target: '127.0.0.1:5432' })).ok, true);
      opener.send(encodeJsonFrame(FrameType.OPEN, 1, { service: 'eager', e2e: OFFER }));
      const open = await exposer.next((f) => f.type === FrameType.OPEN);
      exposer.send(encodeFrame(FrameType.DATA, open.streamId, Buffer.from('too soon')));
      const closed = await exposer.closed;
      assert.equal(parseCloseReason(closed.reason)?.code, 'PROTOCOL_ERROR');
      assert.match(closed.reason, /DATA on stream \d+ before OPEN_OK/);
      // The opener hears that the target went away instead of getting its bytes.
      await opener.next((f) => f.type === FrameType.OPEN_ERROR && f.streamId === 1);
    } finally {
      exposer.ws.close();
      opener.ws.close();
    }
  });

  test('closes an opener that sends more than the stream\'s initial credit before OPEN_OK, directly or through a share', async () => {
    const guest = await t.addWorkspace('greedy-guests');
    const exposer = await agentOf(t, (await t.enrol('greedy-target')).token);
    try {
      assert.equal((await exposer.request('expose', { name: 'greedy', target: '127.0.0.1:5432' })).ok, true);
      const created = await t.http('POST', '/v1/shares', { token: t.apiKey, body: { name: 'greedy-share', services: ['greedy'], expiresIn: '1d' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal((await t.http('POST', '/v1/shares/join', { token: guest.apiKey, body: { code: created.body.code, alias: 'g' } })).status, 201);
      for (const [service, apiKey] of [['greedy', t.apiKey], ['g/greedy', guest.apiKey]] as const) {
        const opener = await agentOf(t, (await t.enrol(`greedy-${apiKey === t.apiKey ? 'near' : 'guest'}`, apiKey)).token);
        opener.send(encodeJsonFrame(FrameType.OPEN, 1, { service, e2e: OFFER }));
        // Two full frames fill INITIAL_STREAM_WINDOW (2 MiB); one more byte goes past it.
        for (let i = 0; i < INITIAL_STREAM_WINDOW / MAX_FRAME_PAYLOAD; i++) opener.send(encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_FRAME_PAYLOAD)));
        opener.send(encodeFrame(FrameType.DATA, 1, Buffer.alloc(1)));
        const closed = await opener.closed;
        assert.equal(parseCloseReason(closed.reason)?.code, 'FLOW_CONTROL', `${service}: ${closed.reason}`);
      }
      await roundTrip(exposer);
    } finally {
      exposer.ws.close();
    }
  });

  test('revoking an agent sends end_sessions to the other agents of its workspace, and to no other workspace', async () => {
    const other = await t.addWorkspace('elsewhere');
    const doomed = await t.enrol('doomed');
    const doomedAgent = await agentOf(t, doomed.token, newKeys());
    const peer = await agentOf(t, (await t.enrol('peer')).token, newKeys());
    const stranger = await agentOf(t, (await t.enrol('stranger', other.apiKey)).token, newKeys());
    try {
      const answer = await t.http('DELETE', `/v1/agents/${doomed.agentId}`, { token: t.apiKey });
      assert.equal(answer.status, 204);
      const end = endSessionsOf(await peer.next(isEndSessions));
      assert.equal(end.agentId, doomed.agentId);
      assert.equal(end.shareId, undefined);
      assert.match(end.reason, /revoked/);
      await roundTrip(stranger);
      assert.deepEqual(stranger.controls().filter((m) => m.t === 'end_sessions'), []);
      await doomedAgent.closed;
    } finally {
      doomedAgent.ws.close();
      peer.ws.close();
      stranger.ws.close();
    }
  });

  test('an agent that comes back with another identity ends the sessions made with it', async () => {
    const returning = await t.enrol('returning');
    const first = await agentOf(t, returning.token, newKeys());
    first.ws.close();
    await first.closed;
    const [stored] = await eventually(async () => {
      const rows = await t.hub.db.withSystem((tx) => tx.query<{ static_key: string | null }>('select static_key from agents where id = $1', [returning.agentId]));
      return rows[0]?.static_key ? rows : undefined;
    });
    assert.ok(stored);
    const peer = await agentOf(t, (await t.enrol('witness')).token, newKeys());
    const again = await agentOf(t, returning.token, newKeys());
    try {
      const end = endSessionsOf(await peer.next(isEndSessions));
      assert.equal(end.agentId, returning.agentId);
      assert.match(end.reason, /new identity/);
    } finally {
      again.ws.close();
      peer.ws.close();
    }
  });

  test('a stream through a share carries the opener\'s keys and its early data; revoking the share sends end_sessions to the exposing agent', async () => {
    const guest = await t.addWorkspace('guests');
    const ownerKeys = newKeys();
    const guestKeys = newKeys();
    const owner = await agentOf(t, (await t.enrol('share-owner')).token, ownerKeys);
    const bystander = await agentOf(t, (await t.enrol('bystander')).token, newKeys());
    const visitor = await agentOf(t, (await t.enrol('visitor', guest.apiKey)).token, guestKeys);
    try {
      assert.equal((await owner.request('expose', { name: 'shared-db', target: '127.0.0.1:5432' })).ok, true);
      assert.equal((await bystander.request('expose', { name: 'not-shared', target: '127.0.0.1:5433' })).ok, true);
      const created = await t.http('POST', '/v1/shares', { token: t.apiKey, body: { name: 'for-guests', services: ['shared-db'], expiresIn: '1d' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const joined = await t.http('POST', '/v1/shares/join', { token: guest.apiKey, body: { code: created.body.code, alias: 'host' } });
      assert.equal(joined.status, 201, JSON.stringify(joined.body));

      const resolved = await eventually(async () => {
        const reply = await visitor.request('resolve', { name: 'host/shared-db' });
        const info = reply.ok ? (reply.result as { service: { keys?: AgentKeys } }).service : undefined;
        return info?.keys ? info : undefined;
      });
      assert.deepEqual(resolved.keys, ownerKeys);
      assert.deepEqual(parseControlResult('resolve', { service: resolved }).service.keys, ownerKeys);

      // The share's checks take a database round trip: the early frames wait for them, in order.
      visitor.send(encodeJsonFrame(FrameType.OPEN, 1, { service: 'host/shared-db', e2e: OFFER }));
      visitor.send(encodeFrame(FrameType.DATA, 1, Buffer.from('one ')));
      visitor.send(encodeFrame(FrameType.DATA, 1, Buffer.from('two')));
      visitor.send(encodeFrame(FrameType.CLOSE, 1));
      const open = await owner.next((f) => f.type === FrameType.OPEN);
      const notice = parseOpenNotice(open.payload);
      assert.equal(notice.share?.id, created.body.share.id);
      assert.equal(notice.from.staticKey, guestKeys.staticKey);
      assert.equal(notice.from.identityKey, guestKeys.identityKey);
      const one = await owner.next((f) => f.type === FrameType.DATA && f.streamId === open.streamId);
      const two = await owner.next((f) => f.type === FrameType.DATA && f.streamId === open.streamId);
      assert.equal(Buffer.concat([one.payload, two.payload]).toString(), 'one two');
      await owner.next((f) => f.type === FrameType.CLOSE && f.streamId === open.streamId);
      owner.send(encodeJsonFrame(FrameType.OPEN_OK, open.streamId, { e2e: { v: 2, hs: OFFER.hs } }));
      await visitor.next((f) => f.type === FrameType.OPEN_OK && f.streamId === 1);

      const revoked = await t.http('DELETE', `/v1/shares/${created.body.share.id}`, { token: t.apiKey });
      assert.equal(revoked.status, 204);
      const end = endSessionsOf(await owner.next(isEndSessions));
      assert.equal(end.shareId, created.body.share.id);
      assert.equal(end.agentId, undefined);
      await roundTrip(bystander);
      assert.deepEqual(bystander.controls().filter((m) => m.t === 'end_sessions'), []);
    } finally {
      owner.ws.close();
      bystander.ws.close();
      visitor.ws.close();
    }
  });
});

const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';

describe(`end-to-end sessions across two hubs of a cluster (${dbKind}, NATS at ${NATS_URL})`, () => {
  let database: TestDatabase;
  const hubs: Hub[] = [];
  let apiKey = '';
  const on = (index: number) => ({ hub: hubs[index]! });
  const api = async (method: string, path: string, body?: unknown, token = apiKey) => {
    const res = await fetch(`http://127.0.0.1:${hubs[0]!.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const enrol = async (label: string, key = apiKey): Promise<{ agentId: string; token: string }> => {
    const answer = await api('POST', '/v1/agents/enroll', { label }, key);
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body;
  };

  before(async () => {
    database = await createTestDatabase();
    // Both hubs in this process on one database; the database URL is never opened (the database is given).
    const config = loadConfig({ HUB_PORT: '0', WEB_PORT: 'off', HUB_HOST: '127.0.0.1', LOG_LEVEL: 'warn', NATS_URL, DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused' });
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
    for (let i = 0; i < 2; i++) {
      hubs.push(await startHub(config, { db: database.db, clock: new ManualClock(new Date()), logger: createLogger('warn', sink) }));
    }
    apiKey = hubs[0]!.bootstrap!.apiKey;
  });

  after(async () => {
    for (const hub of hubs) await hub.close();
    await database?.dispose();
  });

  test('an opener on one hub gets the keys of an exposing agent on the other; its OPEN carries its keys and its early data follows', async () => {
    const exposerKeys = newKeys();
    const openerKeys = newKeys();
    const exposer = await agentOf(on(1), (await enrol('far-exposer')).token, exposerKeys);
    const opener = await agentOf(on(0), (await enrol('near-opener')).token, openerKeys);
    try {
      assert.equal((await exposer.request('expose', { name: 'far-db', target: '127.0.0.1:5432' })).ok, true);
      const service = await eventually(async () => {
        const reply = await opener.request('resolve', { name: 'far-db' });
        const info = reply.ok ? parseControlResult('resolve', reply.result).service : undefined;
        return info?.online && info.keys ? info : undefined;
      });
      assert.deepEqual(service.keys, exposerKeys);
      opener.send(encodeJsonFrame(FrameType.OPEN, 1, { service: 'far-db', e2e: OFFER }));
      opener.send(encodeFrame(FrameType.DATA, 1, Buffer.from('across hubs')));
      opener.send(encodeFrame(FrameType.CLOSE, 1));
      const open = await exposer.next((f) => f.type === FrameType.OPEN);
      const notice = parseOpenNotice(open.payload);
      assert.equal(notice.from.staticKey, openerKeys.staticKey);
      assert.equal(notice.from.identityKey, openerKeys.identityKey);
      const data = await exposer.next((f) => f.type === FrameType.DATA && f.streamId === open.streamId);
      assert.equal(data.payload.toString(), 'across hubs');
      await exposer.next((f) => f.type === FrameType.CLOSE && f.streamId === open.streamId);
      exposer.send(encodeJsonFrame(FrameType.OPEN_OK, open.streamId, { e2e: { v: 2, hs: OFFER.hs } }));
      exposer.send(encodeFrame(FrameType.CLOSE, open.streamId));
      await opener.next((f) => f.type === FrameType.OPEN_OK && f.streamId === 1);
      await opener.next((f) => f.type === FrameType.CLOSE && f.streamId === 1);
    } finally {
      exposer.ws.close();
      opener.ws.close();
    }
  });

  test('end_sessions reaches the agents on the other hub: a revoked agent, an agent back with a new identity, a revoked share', async () => {
    const guest = await hubs[0]!.db.withSystem((tx) => tx.query<{ id: string }>(`insert into workspaces (name) values ('cluster-guests') returning id`));
    const guestKey = await createApiKey(hubs[0]!.db, guest[0]!.id, 'guests key');
    const witness = await agentOf(on(1), (await enrol('far-witness')).token, newKeys());
    const owner = await agentOf(on(1), (await enrol('far-owner')).token, newKeys());
    const doomed = await enrol('near-doomed');
    const doomedAgent = await agentOf(on(0), doomed.token, newKeys());
    const returning = await enrol('near-returning');
    const visitor = await agentOf(on(0), (await enrol('visitor', guestKey)).token, newKeys());
    try {
      assert.equal((await api('DELETE', `/v1/agents/${doomed.agentId}`)).status, 204);
      assert.equal(endSessionsOf(await witness.next((f, m) => isEndSessions(f, m) && (m as { agentId?: string }).agentId === doomed.agentId)).reason, 'the agent was revoked');
      await doomedAgent.closed;

      const first = await agentOf(on(0), returning.token, newKeys());
      first.ws.close();
      await first.closed;
      await eventually(async () => {
        const rows = await hubs[0]!.db.withSystem((tx) => tx.query<{ static_key: string | null }>('select static_key from agents where id = $1', [returning.agentId]));
        return rows[0]?.static_key;
      });
      const again = await agentOf(on(0), returning.token, newKeys());
      const end = endSessionsOf(await witness.next((f, m) => isEndSessions(f, m) && (m as { agentId?: string }).agentId === returning.agentId));
      assert.match(end.reason, /new identity/);
      again.ws.close();

      assert.equal((await owner.request('expose', { name: 'far-shared', target: '127.0.0.1:5432' })).ok, true);
      const created = await api('POST', '/v1/shares', { name: 'cluster-share', services: ['far-shared'], expiresIn: '1d' });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal((await api('POST', '/v1/shares/join', { code: created.body.code, alias: 'far' }, guestKey)).status, 201);
      assert.equal((await api('DELETE', `/v1/shares/${created.body.share.id}`)).status, 204);
      const shareId = created.body.share.id as string;
      await owner.next((f, m) => isEndSessions(f, m) && (m as { shareId?: string }).shareId === shareId);
      await roundTrip(witness);
      assert.deepEqual(witness.controls().filter((m) => m.t === 'end_sessions'), []);
      await roundTrip(visitor);
      assert.deepEqual(visitor.controls().filter((m) => m.t === 'end_sessions'), []);
    } finally {
      for (const agent of [witness, owner, doomedAgent, visitor]) agent.ws.close();
    }
  });
});
