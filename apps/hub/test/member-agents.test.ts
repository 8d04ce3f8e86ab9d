/**
 * Members and their agents (issue 25: revoking a member cuts direct streams at once): an agent enrolled by device
 * login belongs to the member who approved it (agents.enrolled_by, GET /v1/agents enrolledBy); removing that member
 * revokes it like DELETE /v1/agents/:id (socket closed UNAUTHORIZED, token refused, exposing agents told end_sessions),
 * on this hub and on the other hubs of a cluster. Agents enrolled with an API key, other members' agents and the
 * member's agents in other workspaces stay; another workspace's admin revokes nothing.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ConnectError, type HubMessage } from '@private-connect/protocol';
import { startIdentityHub, sessionCookie, type IdentityHub } from './support/identity-hub.js';
import { connectRawAgent, type RawAgent, type Reply } from './support/raw-agent.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';
import { eventually } from './support/test-hub.js';

const newEmail = (tag: string) => `${tag}-${randomBytes(4).toString('hex')}@example.com`;
const isEnd = (msg: HubMessage) => msg.t === 'end_sessions';
const ok = (reply: Reply): unknown => {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return (reply as Extract<Reply, { ok: true }>).result;
};
const UNAUTHORIZED_CLOSE = new ConnectError('UNAUTHORIZED').closeCode;

/** Test steps over identity hubs (one, or two of a cluster on one database): people, workspaces, agents. */
function steps(hubs: () => IdentityHub[]) {
  const h = () => hubs()[0]!;
  const agents: RawAgent[] = [];
  const self = {
    agents,
    /** A signed-in owner with a new shared workspace and an API key of it. */
    async team(name = 'team') {
      const owner = await h().signIn(newEmail('owner'));
      const created = await h().request('POST', '/v1/workspaces', { cookie: owner.cookie, body: { name } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const workspaceId = created.body.id as string;
      const key = await h().request('POST', '/v1/api-keys', { cookie: owner.cookie, headers: { 'x-workspace-id': workspaceId }, body: { name: 'team key' } });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      return { owner, workspaceId, apiKey: key.body.key as string };
    },
    /** Invites a new person to the workspace; they accept and are signed in. */
    async join(owner: { cookie: string }, workspaceId: string, tag: string) {
      const email = newEmail(tag);
      const sent = await h().request('POST', `/v1/workspaces/${workspaceId}/invites`, { cookie: owner.cookie, body: { email, role: 'member' } });
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
      const accepted = await h().request('POST', `/v1/auth/verify?token=${encodeURIComponent(h().lastLinkToken(email))}`);
      assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
      return { userId: accepted.body.userId as string, cookie: sessionCookie(accepted.headers)! };
    },
    /** `connect up` without an API key: a device code `member` approves for `workspaceId`; the agent's token. */
    async deviceLogin(member: { cookie: string }, workspaceId: string, label: string, hub = 0) {
      const at = hubs()[hub]!;
      const code = await at.request('POST', '/v1/device/code', { body: { label, hostname: `${label}.local`, platform: 'linux' } });
      assert.equal(code.status, 200, JSON.stringify(code.body));
      const approved = await h().request('POST', '/v1/device/approve', { cookie: member.cookie, body: { user_code: code.body.user_code, workspaceId } });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const enrolled = await at.request('POST', '/v1/device/token', { body: { device_code: code.body.device_code } });
      assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
      assert.equal(enrolled.body.workspaceId, workspaceId);
      return { agentId: enrolled.body.agentId as string, token: enrolled.body.token as string };
    },
    async byKey(apiKey: string, label: string) {
      const enrolled = await h().request('POST', '/v1/agents/enroll', { headers: { authorization: `Bearer ${apiKey}` }, body: { label } });
      assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
      return { agentId: enrolled.body.agentId as string, token: enrolled.body.token as string };
    },
    /** Connects an enrolled agent (with end-to-end keys) to hub `hub`. */
    async online<T extends { token: string }>(enrolled: T, hub = 0): Promise<T & { agent: RawAgent }> {
      const agent = await connectRawAgent(hubs()[hub]!.hub.port, enrolled.token);
      agents.push(agent);
      return { ...enrolled, agent };
    },
    /** An API-key agent exposing `name` with a direct port advertised. */
    async exposer(apiKey: string, name: string, hub = 0) {
      const e = await self.online(await self.byKey(apiKey, `exposer-${name}`), hub);
      ok(await e.agent.request('expose', { name, target: '127.0.0.1:9' }));
      ok(await e.agent.request('advertise', { port: 40001, addrs: ['10.9.8.7'] }));
      return e;
    },
    /** Takes a direct ticket for `name`: from now on its exposing agent holds sessions of this agent. */
    async ticket(agent: RawAgent, name: string) {
      const answer = await eventually(async () => {
        const reply = await agent.request('direct', { name });
        return reply.ok && (reply.result as { direct?: unknown }).direct ? reply.result : undefined;
      });
      assert.ok(answer);
    },
    /** GET /v1/me with an agent token: its status (200, or 401 once revoked). */
    async tokenStatus(token: string) {
      return (await h().request('GET', '/v1/me', { headers: { authorization: `Bearer ${token}` } })).status;
    },
    revokedAt: async (agentId: string) =>
      (await h().hub.db.withSystem((tx) => tx.query<{ revoked_at: Date | null }>('select revoked_at from agents where id = $1', [agentId])))[0]?.revoked_at ?? null,
  };
  return self;
}

describe(`removing a member revokes the agents they enrolled by device login (${dbKind})`, () => {
  let h: IdentityHub;
  const s = steps(() => [h]);

  before(async () => {
    h = await startIdentityHub();
  });
  after(async () => {
    for (const a of s.agents) a.ws.close();
    await h?.dispose();
  });

  test("an agent enrolled by device login is its approver's (enrolledBy), one enrolled with an API key the workspace's (null)", async () => {
    const { owner, workspaceId, apiKey } = await s.team();
    const mia = await s.join(owner, workspaceId, 'mia');
    const laptop = await s.deviceLogin(mia, workspaceId, 'mia-laptop');
    const server = await s.byKey(apiKey, 'build-server');
    const listed = await h.request('GET', '/v1/agents', { headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(listed.status, 200);
    const owners = Object.fromEntries((listed.body.agents as Array<{ id: string; enrolledBy: string | null }>).map((a) => [a.id, a.enrolledBy]));
    assert.deepEqual(owners, { [laptop.agentId]: mia.userId, [server.agentId]: null });
    const rows = await h.hub.db.withWorkspace(workspaceId, (tx) => tx.query<{ id: string; enrolled_by: string | null }>('select id, enrolled_by from agents order by label'));
    assert.deepEqual(rows, [
      { id: server.agentId, enrolled_by: null },
      { id: laptop.agentId, enrolled_by: mia.userId },
    ]);
  });

  test("removing the member closes their agent's socket (UNAUTHORIZED), refuses its token, tells the exposing agent holding its ticket end_sessions, and audits why", async () => {
    const { owner, workspaceId, apiKey } = await s.team();
    const mia = await s.join(owner, workspaceId, 'mia');
    const otto = await s.join(owner, workspaceId, 'otto');
    const e = await s.exposer(apiKey, 'db');
    const laptop = await s.online(await s.deviceLogin(mia, workspaceId, 'mia-laptop'));
    const desktop = await s.online(await s.deviceLogin(mia, workspaceId, 'mia-desktop'));
    const ottos = await s.online(await s.deviceLogin(otto, workspaceId, 'otto-laptop'));
    const server = await s.online(await s.byKey(apiKey, 'build-server'));
    // Mia's agents in her own workspace: hers too, but not this workspace's to revoke.
    const personal = (await h.request('GET', '/v1/workspaces', { cookie: mia.cookie })).body.workspaces.find((w: { id: string }) => w.id !== workspaceId).id as string;
    const elsewhere = await s.online(await s.deviceLogin(mia, personal, 'mia-home'));
    for (const reacher of [laptop, ottos]) await s.ticket(reacher.agent, 'db');

    const removed = await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${mia.userId}`, { cookie: owner.cookie });
    assert.equal(removed.status, 204, JSON.stringify(removed.body));

    for (const gone of [laptop, desktop]) {
      const closed = await gone.agent.closed;
      assert.equal(closed.code, UNAUTHORIZED_CLOSE);
      assert.match(closed.reason, /^UNAUTHORIZED: .*revoked/);
      assert.equal(await s.tokenStatus(gone.token), 401);
      assert.ok(await s.revokedAt(gone.agentId));
    }
    const end = (await e.agent.next((m) => isEnd(m) && m.agentId === laptop.agentId)) as Extract<HubMessage, { t: 'end_sessions' }>;
    assert.match(end.reason, /revoked/);
    assert.equal((await h.hub.db.withSystem((tx) => tx.query('select id from agent_tokens where agent_id = any($1::uuid[]) and revoked_at is null', [[laptop.agentId, desktop.agentId]]))).length, 0);

    // The others stay: the workspace's agents, another member's, and Mia's in her own workspace.
    ok(await e.agent.request('list', {}));
    assert.deepEqual(e.agent.controls().filter((m) => isEnd(m) && m.agentId !== desktop.agentId), [], 'only the removed member\'s agents end sessions');
    for (const kept of [e, ottos, server, elsewhere]) {
      assert.equal(kept.agent.ws.readyState, kept.agent.ws.OPEN);
      assert.equal(await s.tokenStatus(kept.token), 200);
      assert.equal(await s.revokedAt(kept.agentId), null);
    }
    const listed = await h.request('GET', '/v1/agents', { headers: { authorization: `Bearer ${apiKey}` } });
    assert.deepEqual((listed.body.agents as Array<{ id: string }>).map((a) => a.id).sort(), [e.agentId, ottos.agentId, server.agentId].sort());

    const audit = await h.hub.db.withWorkspace(workspaceId, (tx) =>
      tx.query<{ action: string; actor_type: string; actor_id: string; target_id: string; metadata: Record<string, unknown> }>(
        `select action, actor_type, actor_id, target_id, metadata from audit_log where action in ('member.remove', 'agent.revoke')`,
      ),
    );
    const rows = audit.map((a) => [a.action, a.actor_type, a.actor_id, a.target_id, a.metadata] as const);
    const order = (a: readonly unknown[], b: readonly unknown[]) => `${a[0]} ${a[3]}`.localeCompare(`${b[0]} ${b[3]}`);
    assert.deepEqual(
      rows.sort(order),
      [
        ['member.remove', 'user', owner.userId, mia.userId, { role: 'member' }] as const,
        ['agent.revoke', 'user', owner.userId, laptop.agentId, { label: 'mia-laptop', reason: 'member_removed', userId: mia.userId }] as const,
        ['agent.revoke', 'user', owner.userId, desktop.agentId, { label: 'mia-desktop', reason: 'member_removed', userId: mia.userId }] as const,
      ].sort(order),
    );
  });

  test("another workspace's owner or API key cannot remove the member, nor a plain member, and none of their agents is revoked", async () => {
    const { owner, workspaceId } = await s.team();
    const mia = await s.join(owner, workspaceId, 'mia');
    const laptop = await s.online(await s.deviceLogin(mia, workspaceId, 'mia-laptop'));
    const eve = await s.team('eve-team');
    const asEve = { cookie: eve.owner.cookie };
    const asEveKey = { headers: { authorization: `Bearer ${eve.apiKey}` } };
    // Through Mia's workspace: like a missing one. Through Eve's own: not a member there (an API key may not remove
    // members at all: 403 before any lookup).
    for (const [path, auth, status] of [
      [`/v1/workspaces/${workspaceId}/members/${mia.userId}`, asEve, 404],
      [`/v1/workspaces/${workspaceId}/members/${mia.userId}`, asEveKey, 404],
      [`/v1/workspaces/${eve.workspaceId}/members/${mia.userId}`, asEve, 404],
      [`/v1/workspaces/${eve.workspaceId}/members/${mia.userId}`, asEveKey, 403],
    ] as const) {
      const answer = await h.request('DELETE', path, auth);
      assert.equal(answer.status, status, `${path}: ${JSON.stringify(answer.body)}`);
    }
    assert.equal(laptop.agent.ws.readyState, laptop.agent.ws.OPEN);
    assert.equal(await s.tokenStatus(laptop.token), 200);
    assert.equal(await s.revokedAt(laptop.agentId), null);
    // A plain member may not remove anyone.
    const otto = await s.join(owner, workspaceId, 'otto');
    assert.equal((await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${mia.userId}`, { cookie: otto.cookie })).status, 403);
    assert.equal(await s.revokedAt(laptop.agentId), null);
  });

  test("a workspace's own transaction cannot revoke another workspace's agents by their member (row level security)", async () => {
    const x = await s.team('x');
    const y = await s.team('y');
    const mia = await s.join(y.owner, y.workspaceId, 'mia');
    const laptop = await s.deviceLogin(mia, y.workspaceId, 'mia-laptop');
    const seen = await h.hub.db.withWorkspace(x.workspaceId, (tx) => tx.query('select id from agents where enrolled_by = $1', [mia.userId]));
    assert.deepEqual(seen, []);
    const changed = await h.hub.db.withWorkspace(x.workspaceId, (tx) => tx.query('update agents set revoked_at = now() where enrolled_by = $1 returning id', [mia.userId]));
    assert.deepEqual(changed, []);
    assert.equal(await s.revokedAt(laptop.agentId), null);
  });

  test('a device code approved by a member removed before the agent polls enrols nothing', async () => {
    const { owner, workspaceId } = await s.team();
    const mia = await s.join(owner, workspaceId, 'mia');
    const code = await h.request('POST', '/v1/device/code', { body: { label: 'late-laptop' } });
    assert.equal((await h.request('POST', '/v1/device/approve', { cookie: mia.cookie, body: { user_code: code.body.user_code, workspaceId } })).status, 200);
    assert.equal((await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${mia.userId}`, { cookie: owner.cookie })).status, 204);
    const polled = await h.request('POST', '/v1/device/token', { body: { device_code: code.body.device_code } });
    assert.equal(polled.status, 401, JSON.stringify(polled.body));
    assert.equal(polled.body.error.code, 'UNAUTHORIZED');
    const again = await h.request('POST', '/v1/device/token', { body: { device_code: code.body.device_code } });
    assert.equal(again.status, 401, 'the code is spent');
    const rows = await h.hub.db.withWorkspace(workspaceId, (tx) => tx.query(`select id from agents where label = 'late-laptop'`));
    assert.deepEqual(rows, []);
  });
});

const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';

describe(`removing a member on one hub cuts their agent on another hub of the cluster (${dbKind}, NATS at ${NATS_URL})`, () => {
  let database: TestDatabase;
  const hubs: IdentityHub[] = [];
  const s = steps(() => hubs);

  before(async () => {
    database = await createTestDatabase();
    const env = { NATS_URL, DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused' };
    for (let i = 0; i < 2; i++) hubs.push(await startIdentityHub(env, database));
  });
  after(async () => {
    for (const a of s.agents) a.ws.close();
    for (const h of hubs) await h.dispose();
    await database?.dispose();
  });

  test('the agent on the other hub is closed UNAUTHORIZED and the exposing agent there told end_sessions', async () => {
    const { owner, workspaceId, apiKey } = await s.team();
    const mia = await s.join(owner, workspaceId, 'mia');
    const e = await s.exposer(apiKey, 'far-db', 1);
    const laptop = await s.online(await s.deviceLogin(mia, workspaceId, 'mia-laptop', 1), 1);
    await s.ticket(laptop.agent, 'far-db');
    assert.equal((await hubs[0]!.request('DELETE', `/v1/workspaces/${workspaceId}/members/${mia.userId}`, { cookie: owner.cookie })).status, 204);
    const closed = await laptop.agent.closed;
    assert.equal(closed.code, UNAUTHORIZED_CLOSE);
    const end = (await e.agent.next((m) => isEnd(m) && m.agentId === laptop.agentId)) as Extract<HubMessage, { t: 'end_sessions' }>;
    assert.match(end.reason, /revoked/);
    assert.equal(e.agent.ws.readyState, e.agent.ws.OPEN);
  });
});
