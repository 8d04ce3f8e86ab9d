/**
 * The auth plugin (auth/auth-plugin.ts) on a bare Fastify app with a real database: what `requires(action)` refuses
 * before a handler runs (no credential, an expired or revoked token, a role or credential kind the guard refuses,
 * another workspace's id, a cross-origin cookie POST without the CSRF proof), and that the caller is worked out
 * once per request and read back with `callerOf`.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import { ManualClock } from '../src/clock.js';
import { installErrorHandler } from '../src/api/error-handler.js';
import { callerOf, installAuth, requires } from '../src/auth/auth-plugin.js';
import { bootstrapIfEmpty } from '../src/store/bootstrap.js';
import { enrolAgent } from '../src/store/agents.js';
import { revokeAgent } from '../src/store/agent-tokens.js';
import { createSession } from '../src/store/sessions.js';
import { withCredentials } from '../src/store/system.js';
import { findOrCreateUser } from '../src/store/users.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

const DAY = 86_400_000;

interface Fixture {
  database: TestDatabase;
  clock: ManualClock;
  app: FastifyInstance;
  /** Handler runs, by route: a refused request must not reach its handler. */
  ran: string[];
  /** Codes passed to onAuthFailure (the hub's auth failure metric). */
  failures: string[];
  workspaceId: string;
  apiKey: string;
  /** Alice's session cookie; she owns her personal workspace `aliceWorkspace`. */
  aliceCookie: string;
  aliceWorkspace: string;
  /** A workspace Alice is not in (Bob's). */
  bobWorkspace: string;
}

async function setUp(): Promise<Fixture> {
  const database = await createTestDatabase();
  const { db } = database;
  const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
  const boot = (await bootstrapIfEmpty(db, undefined, clock.now()))!;
  const alice = await withCredentials(db, (tx) => findOrCreateUser(tx, 'alice@example.com', clock.now(), {}));
  const bob = await withCredentials(db, (tx) => findOrCreateUser(tx, 'bob@example.com', clock.now(), {}));
  const aliceCookie = await withCredentials(db, (tx) => createSession(tx, alice.id, clock.now(), {}));
  const workspaceOf = async (userId: string) => {
    const [row] = await withCredentials(db, (tx) => tx.query<{ personal_workspace_id: string }>('select personal_workspace_id from users where id = $1', [userId]));
    return row!.personal_workspace_id;
  };

  const ran: string[] = [];
  const failures: string[] = [];
  const app = Fastify();
  installErrorHandler(app);
  await app.register(fastifyCookie);
  installAuth(app, {
    db,
    clock,
    onAuthFailure: (err) => failures.push(String((err as { code?: unknown }).code)),
    origins: { configured: () => ['https://hub.example'] },
    httpsPublicUrl: false,
  });
  app.get('/v1/probe', { onRequest: requires('services.list') }, async (request) => {
    ran.push('GET /v1/probe');
    const principal = callerOf(request);
    // Asked again in the handler: the same principal, not a second look-up.
    const again = await request.authenticate();
    return { kind: principal.kind, workspaceId: principal.workspaceId, same: again === principal };
  });
  app.post('/v1/probe', { schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } }, onRequest: requires('links.manage') }, async (request) => {
    ran.push('POST /v1/probe');
    return { workspaceId: callerOf(request).workspaceId };
  });
  app.get('/v1/keys', { onRequest: requires('api_keys.manage', 'audit.read') }, async () => {
    ran.push('GET /v1/keys');
    return {};
  });
  app.get('/v1/unguarded', async (request) => {
    ran.push('GET /v1/unguarded');
    return { workspaceId: callerOf(request).workspaceId };
  });
  app.get<{ Params: { id: string } }>('/v1/workspaces/:id/probe', async (request) => {
    const principal = await request.authenticate(request.params.id);
    ran.push('GET /v1/workspaces/:id/probe');
    return { workspaceId: principal.workspaceId };
  });
  await app.ready();
  return { database, clock, app, ran, failures, workspaceId: boot.workspaceId, apiKey: boot.apiKey, aliceCookie, aliceWorkspace: await workspaceOf(alice.id), bobWorkspace: await workspaceOf(bob.id) };
}

async function enrol(f: Fixture, label: string, ttlMs = 30 * DAY) {
  return f.database.db.withWorkspace(f.workspaceId, (tx) => enrolAgent(tx, f.workspaceId, { label, ttlMs, now: f.clock.now() }));
}

describe(`auth plugin: request.principal and requires(action) (${dbKind})`, () => {
  let f: Fixture;
  before(async () => {
    f = await setUp();
  });
  after(async () => {
    await f.app.close();
    await f.database.dispose();
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('serves a permitted API key, agent token and session, and works the caller out once per request', async () => {
    const agent = await enrol(f, 'allowed');
    for (const [headers, kind, workspaceId] of [
      [bearer(f.apiKey), 'api_key', f.workspaceId],
      [bearer(agent.token), 'agent', f.workspaceId],
      [{ cookie: `pc_session=${f.aliceCookie}` }, 'user', f.aliceWorkspace],
    ] as const) {
      const answer = await f.app.inject({ method: 'GET', url: '/v1/probe', headers });
      assert.equal(answer.statusCode, 200, answer.body);
      assert.deepEqual(answer.json(), { kind, workspaceId, same: true });
    }
  });

  it('refuses a request without credentials with 401 UNAUTHORIZED before the handler runs', async () => {
    const before = f.ran.length;
    const answer = await f.app.inject({ method: 'GET', url: '/v1/probe' });
    assert.equal(answer.statusCode, 401);
    assert.equal(answer.json().error.code, 'UNAUTHORIZED');
    assert.equal(f.ran.length, before, 'the handler ran');
    assert.equal(f.failures.at(-1), 'UNAUTHORIZED');
  });

  it('refuses a made-up bearer and a made-up session cookie with 401', async () => {
    const made = await f.app.inject({ method: 'GET', url: '/v1/probe', headers: bearer('pc_' + 'x'.repeat(40)) });
    assert.equal(made.statusCode, 401);
    assert.equal(made.json().error.code, 'UNAUTHORIZED');
    const cookie = await f.app.inject({ method: 'GET', url: '/v1/probe', headers: { cookie: 'pc_session=not-a-session' } });
    assert.equal(cookie.statusCode, 401);
  });

  it('refuses an expired agent token with 401 TOKEN_EXPIRED', async () => {
    const agent = await enrol(f, 'short-lived', DAY);
    assert.equal((await f.app.inject({ method: 'GET', url: '/v1/probe', headers: bearer(agent.token) })).statusCode, 200);
    f.clock.advance(DAY);
    try {
      const answer = await f.app.inject({ method: 'GET', url: '/v1/probe', headers: bearer(agent.token) });
      assert.equal(answer.statusCode, 401, answer.body);
      assert.equal(answer.json().error.code, 'TOKEN_EXPIRED');
      assert.equal(f.failures.at(-1), 'TOKEN_EXPIRED');
    } finally {
      f.clock.advance(-DAY);
    }
  });

  it('refuses a revoked agent token with 401 at once', async () => {
    const agent = await enrol(f, 'revoked');
    assert.equal((await f.app.inject({ method: 'GET', url: '/v1/probe', headers: bearer(agent.token) })).statusCode, 200);
    await f.database.db.withWorkspace(f.workspaceId, (tx) => revokeAgent(tx, f.workspaceId, agent.agentId, { type: 'system', now: f.clock.now() }));
    const before = f.ran.length;
    const answer = await f.app.inject({ method: 'GET', url: '/v1/probe', headers: bearer(agent.token) });
    assert.equal(answer.statusCode, 401, answer.body);
    assert.equal(answer.json().error.code, 'UNAUTHORIZED');
    assert.equal(f.failures.at(-1), 'UNAUTHORIZED');
    assert.equal(f.ran.length, before, 'the handler ran');
  });

  it('refuses with 403 FORBIDDEN a credential the guard does not allow every one of the actions', async () => {
    const agent = await enrol(f, 'not-an-admin');
    const before = f.ran.length;
    const answer = await f.app.inject({ method: 'GET', url: '/v1/keys', headers: bearer(agent.token) });
    assert.equal(answer.statusCode, 403);
    assert.equal(answer.json().error.code, 'FORBIDDEN');
    assert.equal(f.ran.length, before, 'the handler ran');
    assert.equal((await f.app.inject({ method: 'GET', url: '/v1/keys', headers: bearer(f.apiKey) })).statusCode, 200);
  });

  it('authenticates before validating the body: a stranger with a bad body gets 401, not the schema', async () => {
    const stranger = await f.app.inject({ method: 'POST', url: '/v1/probe', headers: { 'content-type': 'application/json' }, payload: '{"nome":1}' });
    assert.equal(stranger.statusCode, 401);
    assert.doesNotMatch(stranger.body, /name/);
    const keyed = await f.app.inject({ method: 'POST', url: '/v1/probe', headers: { ...bearer(f.apiKey), 'content-type': 'application/json' }, payload: '{"nome":1}' });
    assert.equal(keyed.statusCode, 400);
  });

  it("answers another workspace's id exactly like an unknown one (404), for X-Workspace-Id and a workspace route", async () => {
    const cookie = { cookie: `pc_session=${f.aliceCookie}` };
    const unknown = '00000000-0000-4000-8000-000000000000';
    const before = f.ran.length;
    for (const ws of [f.bobWorkspace, unknown]) {
      const header = await f.app.inject({ method: 'GET', url: '/v1/probe', headers: { ...cookie, 'x-workspace-id': ws } });
      assert.equal(header.statusCode, 404, header.body);
      assert.equal(header.json().error.code, 'NOT_FOUND');
      assert.equal(header.json().error.message, `Workspace not found: ${ws}`);
      const route = await f.app.inject({ method: 'GET', url: `/v1/workspaces/${ws}/probe`, headers: cookie });
      assert.equal(route.statusCode, 404, route.body);
      assert.deepEqual(route.json(), header.json());
    }
    assert.equal(f.ran.length, before, 'a handler ran');
    const own = await f.app.inject({ method: 'GET', url: `/v1/workspaces/${f.aliceWorkspace}/probe`, headers: cookie });
    assert.deepEqual(own.json(), { workspaceId: f.aliceWorkspace });
  });

  it('refuses a cross-origin POST riding on the session cookie with 403 CSRF before authenticating; the same POST from the hub\'s own page passes', async () => {
    const cookie = `pc_session=${f.aliceCookie}`;
    const json = { cookie, 'content-type': 'application/json' };
    const failures = f.failures.length;
    const before = f.ran.length;
    for (const headers of [
      { ...json, origin: 'https://evil.example' },
      { ...json, 'sec-fetch-site': 'cross-site' },
      json, // no Origin at all
      { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://hub.example' },
    ]) {
      const answer = await f.app.inject({ method: 'POST', url: '/v1/probe', headers, payload: headers['content-type'] === 'application/json' ? '{"name":"x"}' : 'name=x' });
      assert.equal(answer.statusCode, 403, `${JSON.stringify(headers)}: ${answer.body}`);
      assert.equal(answer.json().error.code, 'CSRF');
    }
    assert.equal(f.ran.length, before, 'the handler ran');
    assert.equal(f.failures.length, failures, 'a CSRF refusal is not an authentication failure');

    // Alice owns her workspace (links.manage is for admins): from the hub's own origin the POST goes through.
    for (const proof of [{ origin: 'https://hub.example' }, { 'sec-fetch-site': 'same-origin' }]) {
      const ok = await f.app.inject({ method: 'POST', url: '/v1/probe', headers: { ...json, ...proof }, payload: '{"name":"x"}' });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual(ok.json(), { workspaceId: f.aliceWorkspace });
    }
    // A bearer credential is not a browser's: no Origin needed.
    const keyed = await f.app.inject({ method: 'POST', url: '/v1/probe', headers: { ...bearer(f.apiKey), 'content-type': 'application/json' }, payload: '{"name":"x"}' });
    assert.equal(keyed.statusCode, 200, keyed.body);
  });

  it('answers 401 from callerOf on a route without requires, whatever the request carries', async () => {
    const answer = await f.app.inject({ method: 'GET', url: '/v1/unguarded', headers: bearer(f.apiKey) });
    assert.equal(answer.statusCode, 401);
    assert.equal(answer.json().error.code, 'UNAUTHORIZED');
  });
});
