/**
 * The hub's side of direct paths (issue 25, docs/direct.md): exposing agents advertise a direct port, reaching agents
 * allowed to open a service get its candidates and a ticket signed with the deployment's key (or why not), revocation
 * reaches the exposing agent whatever workspace the reaching agent is in, exposing agents' reports of direct streams
 * count in the traffic and the audit log, and reaching agents' paths show in GET /v1/agents. Raw agents over `ws`.
 */

import assert from 'node:assert/strict';
import { connectRawAgent, newKeys, type RawAgent, type Reply } from './support/raw-agent.js';
import { after, before, describe, test } from 'node:test';
import {
  DIRECT_TICKET_TTL_MS,
  ed25519Key,
  parseControlResult,
  verifyDirectTicket,
  type DirectAnswer,
  type HubMessage,
  type WelcomeMessage,
} from '@private-connect/protocol';
import { Writable } from 'node:stream';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { startHub, type Hub } from '../src/hub.js';
import { createLogger } from '../src/logger.js';
import { sweepShareStreams } from '../src/sharing/shares.js';
import { createApiKey } from '../src/store/bootstrap.js';
import { loadTicketKey } from '../src/store/ticket-key.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';
import { eventually, startTestHub, type TestHub } from './support/test-hub.js';

/** A raw agent of the hub of `t`: hello with `hello`'s fields (keys, plain), resolved after the welcome. */
const agentOf = (t: { hub: Hub }, token: string, hello: object): Promise<RawAgent> => connectRawAgent(t.hub.port, token, hello);

const ok = (reply: Reply): unknown => {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return (reply as Extract<Reply, { ok: true }>).result;
};
const refusal = (reply: Reply) => {
  assert.equal(reply.ok, false, JSON.stringify(reply));
  return (reply as Extract<Reply, { ok: false }>).error;
};
const directOf = (reply: Reply): DirectAnswer => parseControlResult('direct', ok(reply));
const isEnd = (msg: HubMessage) => msg.t === 'end_sessions';

/** After a round trip, whatever the hub sent `agent` before is in its queue. */
async function roundTrip(agent: RawAgent): Promise<void> {
  ok(await agent.request('list', {}));
}

describe(`direct paths on the hub (${dbKind})`, () => {
  let t: TestHub;
  /** Workspace B: joins A's shares. */
  let b: { workspaceId: string; apiKey: string };
  const agents: RawAgent[] = [];
  const connect = async (label: string, options: { apiKey?: string; hello?: object } = {}) => {
    const enrolled = await t.enrol(label, options.apiKey);
    const agent = await agentOf(t, enrolled.token, options.hello ?? newKeys());
    agents.push(agent);
    return { ...enrolled, agent };
  };
  /** An exposing agent of A with `name` exposed and a direct port advertised (nothing advertised: `port` null). */
  const exposer = async (name: string, port: number | null = 40001, addrs = ['10.9.8.7']) => {
    const keys = newKeys();
    const e = await connect(`exposer-${name}`, { hello: keys });
    ok(await e.agent.request('expose', { name, target: '127.0.0.1:9' }));
    if (port !== null) ok(await e.agent.request('advertise', { port, addrs }));
    return { ...e, keys };
  };
  const share = async (name: string, services: string[], alias: string, extra: object = {}) => {
    const created = await t.http('POST', '/v1/shares', { token: t.apiKey, body: { name, services, expiresIn: '7d', ...extra } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const joined = await t.http('POST', '/v1/shares/join', { token: b.apiKey, body: { code: created.body.code, alias } });
    assert.equal(joined.status, 201, JSON.stringify(joined.body));
    return created.body.share as { id: string; name: string; expiresAt: string };
  };
  const claimsOf = (answer: DirectAnswer, welcome: WelcomeMessage) => {
    assert.ok(answer.direct, JSON.stringify(answer));
    return verifyDirectTicket(answer.direct.ticket, ed25519Key(welcome.ticketKey!)!, t.clock.now().getTime());
  };

  before(async () => {
    t = await startTestHub(new Date('2030-01-01T00:00:00Z'), { SHARE_SWEEP_MS: '1h' });
    b = await t.addWorkspace('workspace-b');
  });

  after(async () => {
    for (const a of agents) a.ws.close();
    await t?.close();
  });

  test('direct hands a same-workspace agent the candidates, the hub-seen address among them, and a ticket the welcome key verifies', async () => {
    const e = await exposer('db', 40001, ['10.9.8.7', '::ffff:10.9.8.6']);
    const plainHello = { ...newKeys(), plain: true };
    const r = await connect('reacher', { hello: plainHello });
    const answer = directOf(await r.agent.request('direct', { name: 'db' }));
    assert.equal(answer.unavailable, undefined);
    assert.deepEqual(answer.direct!.candidates, [
      { host: '10.9.8.7', port: 40001, source: 'local' },
      { host: '10.9.8.6', port: 40001, source: 'local' },
      { host: '127.0.0.1', port: 40001, source: 'hub' },
    ]);
    assert.equal(answer.direct!.agentId, e.agentId);
    assert.equal(answer.direct!.identityKey, e.keys.identityKey);
    const claims = claimsOf(answer, r.agent.welcome);
    const now = t.clock.now().getTime();
    assert.deepEqual(
      { ...claims, jti: typeof claims.jti },
      {
        v: 1,
        ws: t.workspaceId,
        to: e.agentId,
        svc: 'db',
        from: r.agentId,
        fromWs: t.workspaceId,
        label: 'raw',
        idk: plainHello.identityKey,
        sk: plainHello.staticKey,
        plain: true,
        iat: now,
        exp: now + DIRECT_TICKET_TTL_MS,
        jti: 'string',
        // The connection whose direct port the candidates are: only that process of the agent takes the ticket.
        conn: e.agent.welcome.connectionId,
      },
    );
    assert.equal(answer.direct!.expiresAt, claims.exp);
    // Every hub of the database signs with the one key, which every welcome carries.
    assert.equal((await loadTicketKey(t.hub.db)).publicKey, r.agent.welcome.ticketKey);
    assert.equal(e.agent.welcome.ticketKey, r.agent.welcome.ticketKey);
    // Two tickets are never alike.
    const again = claimsOf(directOf(await r.agent.request('direct', { name: 'db' })), r.agent.welcome);
    assert.notEqual(again.jti, claims.jti);
  });

  test('advertise takes IP addresses only, and what a connection advertised is gone when it closes', async () => {
    const e = await exposer('ephemeral');
    const bad = refusal(await e.agent.request('advertise', { port: 40002, addrs: ['evil.example.com'] }));
    assert.equal(bad.code, 'BAD_REQUEST');
    const stored = async () =>
      (await t.hub.db.withSystem((tx) => tx.query<{ direct_port: number | null; direct_addrs: unknown }>('select direct_port, direct_addrs from agents where id = $1', [e.agentId])))[0]!;
    assert.equal((await stored()).direct_port, 40001);
    e.agent.ws.close();
    await e.agent.closed;
    await eventually(async () => (await stored()).direct_port === null);
    assert.equal((await stored()).direct_addrs, null);
  });

  test('through a share: the ticket names the real service, the other workspace and the share, and ends with the share', async () => {
    const e = await exposer('pg');
    // A share that ends before a ticket would: the ticket ends with it.
    const s = await share('pg-share', ['pg'], 'a', { expiresIn: '2m', rate: 60 });
    const g = await connect('guest', { apiKey: b.apiKey });
    const answer = directOf(await g.agent.request('direct', { name: 'a/pg' }));
    const claims = claimsOf(answer, g.agent.welcome);
    assert.equal(claims.svc, 'pg');
    assert.equal(claims.ws, t.workspaceId);
    assert.equal(claims.to, e.agentId);
    assert.equal(claims.from, g.agentId);
    assert.equal(claims.fromWs, b.workspaceId);
    assert.equal(claims.plain, undefined);
    assert.deepEqual(claims.share, { id: s.id, name: 'pg-share', ratePerMin: 60 });
    assert.equal(claims.exp, new Date(s.expiresAt).getTime());
    assert.equal(answer.direct!.expiresAt, claims.exp);
  });

  test("another workspace's agent gets, for a service it may not open, exactly the refusal of a missing service", async () => {
    await exposer('secret-db');
    const stranger = await connect('stranger', { apiKey: b.apiKey });
    const norm = (reply: Reply, ref: string) => JSON.stringify({ ...reply, id: 0 }).replaceAll(ref, '<REF>');
    for (const [hidden, missing] of [
      ['secret-db', 'no-such-db'],
      ['nope/secret-db', 'nope/no-such-db'],
    ] as const) {
      const a = await stranger.agent.request('direct', { name: hidden });
      const m = await stranger.agent.request('direct', { name: missing });
      assert.equal(refusal(a).code, 'SERVICE_NOT_FOUND');
      assert.equal(norm(a, 'secret-db'), norm(m, 'no-such-db'));
    }
  });

  test('a revoked or expired share gives no ticket: the refusal an OPEN through it gets', async () => {
    await exposer('cache');
    const revoked = await share('cache-revoked', ['cache'], 'rv');
    const brief = await share('cache-brief', ['cache'], 'br', { expiresIn: '1h' });
    const g = await connect('guest-ended', { apiKey: b.apiKey });
    ok(await g.agent.request('direct', { name: 'rv/cache' }));
    assert.equal((await t.http('DELETE', `/v1/shares/${revoked.id}`, { token: t.apiKey })).status, 204);
    t.clock.advance(2 * 60 * 60 * 1000);
    try {
      let id = 1;
      for (const [name, code] of [
        ['rv/cache', 'SHARE_REVOKED'],
        ['br/cache', 'SHARE_EXPIRED'],
      ] as const) {
        const error = refusal(await g.agent.request('direct', { name }));
        const open = JSON.parse((await g.agent.open(id, name)).payload.toString()) as { code: string; message: string };
        id += 2;
        assert.equal(error.code, code);
        assert.deepEqual({ code: error.code, message: error.message }, { code: open.code, message: open.message });
      }
    } finally {
      t.clock.advance(-2 * 60 * 60 * 1000);
    }
    assert.ok(brief.id);
  });

  test('unavailable, saying why: --no-direct, nothing advertised, offline, the workspace turned off, no keys in hello', async () => {
    await exposer('no-direct', 0, []);
    await exposer('silent', null);
    const gone = await exposer('gone');
    gone.agent.ws.close();
    await gone.agent.closed;
    await exposer('switch');
    const r = await connect('asker');
    const keyless = await connect('keyless', { hello: {} });
    const reason = async (agent: RawAgent, name: string) => {
      const answer = directOf(await agent.request('direct', { name }));
      assert.equal(answer.direct, undefined);
      assert.equal(answer.unavailable!.code, 'DIRECT_UNAVAILABLE');
      return answer.unavailable!.reason;
    };
    assert.equal(await reason(r.agent, 'no-direct'), 'the exposing agent runs with --no-direct');
    assert.match(await reason(r.agent, 'silent'), /advertised no direct port/);
    await eventually(async () => !t.hub.sharing.router.get(t.workspaceId, 'gone'));
    assert.equal(await reason(r.agent, 'gone'), 'the exposing agent is offline');
    assert.match(await reason(keyless.agent, 'switch'), /sent no identity and static key/);
    ok(await r.agent.request('direct', { name: 'switch' }));

    // An admin turns direct paths off (audited), and on again.
    const off = await t.http('PATCH', `/v1/workspaces/${t.workspaceId}`, { token: t.apiKey, body: { directPaths: false } });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.directPaths, false);
    assert.equal((await t.http('GET', `/v1/workspaces/${t.workspaceId}`, { token: t.apiKey })).body.directPaths, false);
    try {
      assert.equal(await reason(r.agent, 'switch'), 'this workspace turned direct paths off');
      const audit = await t.http('GET', '/v1/audit?action=workspace.update', { token: t.apiKey });
      assert.deepEqual(audit.body.events.map((e: { metadata: unknown }) => e.metadata), [{ directPaths: false }]);
    } finally {
      const on = await t.http('PATCH', `/v1/workspaces/${t.workspaceId}`, { token: t.apiKey, body: { directPaths: true } });
      assert.equal(on.body.directPaths, true);
    }
    ok(await r.agent.request('direct', { name: 'switch' }));
    assert.equal((await t.http('PATCH', `/v1/workspaces/${t.workspaceId}`, { token: t.apiKey, body: {} })).status, 400);
  });

  test('revoking a reaching agent tells the exposing agent (end_sessions naming it), also when it came from another workspace through a share', async () => {
    const e = await exposer('shared-api');
    const bystander = await exposer('bystander');
    await share('api-share', ['shared-api'], 'sa');
    const near = await connect('near-reacher');
    const far = await connect('far-reacher', { apiKey: b.apiKey });
    ok(await near.agent.request('direct', { name: 'shared-api' }));
    ok(await far.agent.request('direct', { name: 'sa/shared-api' }));
    for (const [who, apiKey] of [
      [near, t.apiKey],
      [far, b.apiKey],
    ] as const) {
      assert.equal((await t.http('DELETE', `/v1/agents/${who.agentId}`, { token: apiKey })).status, 204);
      const end = (await e.agent.next((m) => isEnd(m) && m.agentId === who.agentId)) as Extract<HubMessage, { t: 'end_sessions' }>;
      assert.match(end.reason, /revoked/);
      await who.agent.closed;
    }
    // The exposing agent the far agent had no ticket for hears nothing of it (another workspace's agent).
    await roundTrip(bystander.agent);
    assert.deepEqual(bystander.agent.controls().filter((m) => isEnd(m) && m.agentId === far.agentId), []);
  });

  test("a share's revocation and its expiry each send the exposing agent end_sessions naming the share, once", async () => {
    const e = await exposer('queue');
    const revoked = await share('queue-revoked', ['queue'], 'qr');
    const brief = await share('queue-brief', ['queue'], 'qb', { expiresIn: '1h' });
    const g = await connect('queue-guest', { apiKey: b.apiKey });
    ok(await g.agent.request('direct', { name: 'qr/queue' }));
    ok(await g.agent.request('direct', { name: 'qb/queue' }));
    assert.equal((await t.http('DELETE', `/v1/shares/${revoked.id}`, { token: t.apiKey })).status, 204);
    await e.agent.next((m) => isEnd(m) && m.shareId === revoked.id);
    t.clock.advance(2 * 60 * 60 * 1000);
    try {
      await sweepShareStreams(t.hub.sharing);
      const end = (await e.agent.next((m) => isEnd(m) && m.shareId === brief.id)) as Extract<HubMessage, { t: 'end_sessions' }>;
      assert.match(end.reason, /expired/);
      await sweepShareStreams(t.hub.sharing);
      await roundTrip(e.agent);
      assert.deepEqual(e.agent.controls().filter((m) => isEnd(m) && m.shareId === brief.id), []);
    } finally {
      t.clock.advance(-2 * 60 * 60 * 1000);
    }
  });

  test('direct_report counts into the traffic, one stream.direct audit row per service, reaching agent and share; refused for a service the agent does not expose', async () => {
    const e = await exposer('metrics');
    const s = await share('metrics-share', ['metrics'], 'm');
    const r = await connect('metrics-reader');
    const g = await connect('metrics-guest', { apiKey: b.apiKey });
    const stream = (from: string, bytesIn: number, bytesOut: number, shareId?: string) => ({ from, service: 'metrics', ...(shareId ? { shareId } : {}), openedAt: Date.now(), ms: 10, bytesIn, bytesOut });
    ok(await e.agent.request('direct_report', { streams: [stream(r.agentId, 100, 1000), stream(r.agentId, 50, 500), stream(g.agentId, 7, 70, s.id)] }));

    const services = await t.http('GET', '/v1/services', { token: t.apiKey });
    const row = (services.body.services as Array<Record<string, unknown>>).find((x) => x.name === 'metrics')!;
    assert.deepEqual(
      [row.streams, row.bytesIn, row.bytesOut, row.directStreams, row.directBytesIn, row.directBytesOut],
      [0, 0, 0, 3, 157, 1570],
    );
    const audit = await t.http('GET', '/v1/audit?action=stream.direct', { token: t.apiKey });
    const rows = (audit.body.events as Array<{ actorId: string; metadata: Record<string, unknown> }>).map((x) => ({ actor: x.actorId, ...x.metadata }));
    rows.sort((x, y) => String(x.actor).localeCompare(String(y.actor)));
    const expected = [
      { actor: r.agentId, service: 'metrics', direct: true, streams: 2, bytesIn: 150, bytesOut: 1500, ms: 20, reportedBy: e.agentId },
      { actor: g.agentId, service: 'metrics', direct: true, streams: 1, bytesIn: 7, bytesOut: 70, ms: 10, reportedBy: e.agentId, shareId: s.id, grantee: b.workspaceId },
    ].sort((x, y) => x.actor.localeCompare(y.actor));
    assert.deepEqual(rows, expected);
    // The reporting agent's reaching agents now hear of revocations too: the guest is one.
    assert.equal((await t.http('DELETE', `/v1/agents/${g.agentId}`, { token: b.apiKey })).status, 204);
    await e.agent.next((m) => isEnd(m) && m.agentId === g.agentId);

    // Another agent's service, a missing one, and a share that is not this workspace's: refused like missing ones.
    const other = await exposer('other-metrics');
    const a = refusal(await other.agent.request('direct_report', { streams: [stream(r.agentId, 1, 1)] }));
    const m = refusal(await other.agent.request('direct_report', { streams: [{ ...stream(r.agentId, 1, 1), service: 'no-such' }] }));
    assert.equal(a.code, 'SERVICE_NOT_FOUND');
    assert.equal(a.message.replace('metrics', '<REF>'), m.message.replace('no-such', '<REF>'));
    const foreign = refusal(await e.agent.request('direct_report', { streams: [stream(r.agentId, 1, 1, '00000000-0000-4000-8000-000000000000')] }));
    assert.equal(foreign.code, 'NOT_FOUND');
    const after = await t.http('GET', '/v1/audit?action=stream.direct', { token: t.apiKey });
    assert.equal(after.body.events.length, 2, 'refused reports write nothing');
  });

  test("a reaching agent's paths show in GET /v1/agents, newest per service, addresses masked", async () => {
    const r = await connect('path-teller');
    ok(await r.agent.request('path', { name: 'db', mode: 'relay', reason: 'probing' }));
    ok(await r.agent.request('path', { name: 'db', mode: 'direct', via: '10.9.8.7:40001' }));
    ok(await r.agent.request('path', { name: 'a/pg', mode: 'relay', reason: 'no candidate answered within 1.5 s (10.9.8.7:40001)' }));
    const listed = await t.http('GET', '/v1/agents', { token: t.apiKey });
    const me = (listed.body.agents as Array<{ id: string; paths: Array<Record<string, unknown>> }>).find((x) => x.id === r.agentId)!;
    assert.deepEqual(
      me.paths.map(({ at, ...p }) => (assert.equal(typeof at, 'string'), p)),
      [
        // Addresses are masked, as everywhere in the API.
        { name: 'a/pg', mode: 'relay', reason: 'no candidate answered within 1.5 s (10.9.x.x:40001)' },
        { name: 'db', mode: 'direct', via: '10.9.x.x:40001' },
      ],
    );
    const bad = refusal(await r.agent.request('path', { name: 'db', mode: 'teleport' }));
    assert.equal(bad.code, 'BAD_REQUEST');
  });
});

const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';

describe(`direct paths across two hubs of a cluster (${dbKind}, NATS at ${NATS_URL})`, () => {
  let database: TestDatabase;
  const hubs: Hub[] = [];
  const agents: RawAgent[] = [];
  let apiKey = '';
  const api = async (index: number, method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${hubs[index]!.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const connect = async (index: number, label: string, key: string) => {
    const enrolled = await api(index, 'POST', '/v1/agents/enroll', key, { label });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    const agent = await agentOf({ hub: hubs[index]! }, enrolled.body.token, newKeys());
    agents.push(agent);
    return { agentId: enrolled.body.agentId as string, agent };
  };

  before(async () => {
    database = await createTestDatabase();
    const config = loadConfig({ HUB_PORT: '0', WEB_PORT: 'off', HUB_HOST: '127.0.0.1', LOG_LEVEL: 'warn', NATS_URL, DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused' });
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
    for (let i = 0; i < 2; i++) hubs.push(await startHub(config, { db: database.db, clock: new ManualClock(new Date()), logger: createLogger('warn', sink) }));
    apiKey = hubs[0]!.bootstrap!.apiKey;
  });

  after(async () => {
    for (const a of agents) a.ws.close();
    for (const hub of hubs) await hub.close();
    await database?.dispose();
  });

  test("a reaching agent on one hub gets the candidates of an exposing agent on the other, and revoking it reaches that agent", async () => {
    const [guest] = await hubs[0]!.db.withSystem((tx) => tx.query<{ id: string }>(`insert into workspaces (name) values ('cluster-direct-guests') returning id`));
    const guestKey = await createApiKey(hubs[0]!.db, guest!.id, 'guests key');
    const exposer = await connect(1, 'far-exposer', apiKey);
    ok(await exposer.agent.request('expose', { name: 'far-db', target: '127.0.0.1:9' }));
    ok(await exposer.agent.request('advertise', { port: 40100, addrs: ['10.2.3.4'] }));
    const created = await api(0, 'POST', '/v1/shares', apiKey, { name: 'far-share', services: ['far-db'], expiresIn: '1d' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await api(0, 'POST', '/v1/shares/join', guestKey, { code: created.body.code, alias: 'f' })).status, 201);
    const reacher = await connect(0, 'near-reacher', guestKey);
    // The route reaches hub 0 over NATS; the candidates come from the database.
    const answer = await eventually(async () => {
      const reply = await reacher.agent.request('direct', { name: 'f/far-db' });
      return reply.ok && directOf(reply).direct ? directOf(reply) : undefined;
    });
    assert.deepEqual(answer.direct!.candidates, [
      { host: '10.2.3.4', port: 40100, source: 'local' },
      { host: '127.0.0.1', port: 40100, source: 'hub' },
    ]);
    // One ticket key for the deployment: the exposing agent, welcomed by hub 1, verifies hub 0's ticket.
    assert.equal(exposer.agent.welcome.ticketKey, reacher.agent.welcome.ticketKey);
    const claims = verifyDirectTicket(answer.direct!.ticket, ed25519Key(exposer.agent.welcome.ticketKey!)!, Date.now());
    assert.equal(claims.to, exposer.agentId);
    assert.equal(claims.from, reacher.agentId);

    assert.equal((await api(0, 'DELETE', `/v1/agents/${reacher.agentId}`, guestKey)).status, 204);
    const end = (await exposer.agent.next((m) => isEnd(m) && m.agentId === reacher.agentId)) as Extract<HubMessage, { t: 'end_sessions' }>;
    assert.match(end.reason, /revoked/);
  });
});
