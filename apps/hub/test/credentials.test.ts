/**
 * Agent token lifecycle (warning window, rotation with grace, expiry, revocation), API keys and the audit log,
 * against an in-process hub whose clock the test moves. What must be refused is refused on HTTP and WebSocket.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DAY, HOUR, UpgradeRefused, eventually, startTestHub, withTestHub, type TestHub } from './support/test-hub.js';
import { dbKind } from './support/test-database.js';


async function refusedUpgrade(t: TestHub, token: string): Promise<UpgradeRefused> {
  try {
    const sock = await t.connect(token);
    sock.ws.terminate();
  } catch (err) {
    if (err instanceof UpgradeRefused) return err;
    throw err;
  }
  assert.fail('the WebSocket upgrade was accepted');
}

async function auditOf(t: TestHub, query: string, apiKey = t.apiKey) {
  const answer = await t.http('GET', `/v1/audit${query}`, { token: apiKey });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as { events: Array<{ id: string; at: string; action: string; actorType: string; actorId: string | null; targetType: string | null; targetId: string | null; ip: string | null; metadata: any }>; nextBefore: string | null };
}

describe(`agent tokens (${dbKind})`, () => {
  it('warns from 7 days before expiry: not on day 23, yes on day 24 (HTTP /v1/me and the WebSocket welcome)', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('warn');
      t.clock.advance(23 * DAY);
      const day23 = await t.http('GET', '/v1/me', { token: agent.token });
      assert.equal(day23.status, 200);
      assert.equal(day23.body.expiring, false);
      assert.equal(day23.body.expiresInMs, 7 * DAY);
      const sock23 = await t.connect(agent.token);
      assert.equal(sock23.welcome.tokenExpiresInMs, 7 * DAY);
      assert.equal(sock23.welcome.tokenExpiresAt, agent.expiresAt);
      sock23.ws.close();

      t.clock.advance(DAY);
      const day24 = await t.http('GET', '/v1/me', { token: agent.token });
      assert.equal(day24.body.expiring, true);
      assert.equal(day24.body.expiresInMs, 6 * DAY);
      const sock24 = await t.connect(agent.token);
      assert.equal(sock24.welcome.tokenExpiresInMs, 6 * DAY);
      sock24.ws.close();
    }));

  it('refuses a token 30 days after enrolment with TOKEN_EXPIRED and says how to re-enrol, on HTTP and WebSocket', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('expiry');
      t.clock.advance(30 * DAY - 1);
      assert.equal((await t.http('GET', '/v1/me', { token: agent.token })).status, 200);
      t.clock.advance(1);
      const http = await t.http('GET', '/v1/me', { token: agent.token });
      assert.equal(http.status, 401);
      assert.equal(http.body.error.code, 'TOKEN_EXPIRED');
      assert.match(http.body.error.message, /connect up/);
      const ws = await refusedUpgrade(t, agent.token);
      assert.equal(ws.status, 401);
      assert.equal(ws.body.error.code, 'TOKEN_EXPIRED');
    }));

  it('rotation: the old token works at +23 h, is refused at +25 h on HTTP and WebSocket; the new one works', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('rotate');
      const rotated = await t.http('POST', '/v1/agents/me/rotate-token', { token: agent.token });
      assert.equal(rotated.status, 201);
      const fresh = rotated.body as { token: string; expiresAt: string; previousTokenValidUntil: string };
      assert.notEqual(fresh.token, agent.token);
      assert.equal(fresh.previousTokenValidUntil, new Date(t.clock.now().getTime() + DAY).toISOString());
      assert.equal(fresh.expiresAt, new Date(t.clock.now().getTime() + 30 * DAY).toISOString());

      t.clock.advance(23 * HOUR);
      assert.equal((await t.http('GET', '/v1/me', { token: agent.token })).status, 200);
      (await t.connect(agent.token)).ws.close();
      // A token already rotated out cannot mint another one.
      const again = await t.http('POST', '/v1/agents/me/rotate-token', { token: agent.token });
      assert.equal(again.status, 403);

      t.clock.advance(2 * HOUR);
      const old = await t.http('GET', '/v1/me', { token: agent.token });
      assert.equal(old.status, 401);
      assert.equal(old.body.error.code, 'UNAUTHORIZED');
      assert.equal((await refusedUpgrade(t, agent.token)).status, 401);

      const now = await t.http('GET', '/v1/me', { token: fresh.token });
      assert.equal(now.status, 200);
      assert.equal(now.body.agentId, agent.agentId);
      (await t.connect(fresh.token)).ws.close();

      const events = await auditOf(t, '?action=agent.token_rotate');
      assert.equal(events.events.length, 1);
      assert.equal(events.events[0]!.targetId, agent.agentId);
    }));

  it('closes a socket opened with the old token once its grace period ends (TOKEN_EXPIRED), not before', async () => {
    const t = await startTestHub(undefined, { HUB_PING_INTERVAL: '100ms' });
    try {
      const agent = await t.enrol('socket-grace');
      const rotated = await t.http('POST', '/v1/agents/me/rotate-token', { token: agent.token });
      const oldSocket = await t.connect(agent.token);
      const newSocket = await t.connect(rotated.body.token);
      let closedEarly = false;
      void oldSocket.closed.then(() => (closedEarly = t.clock.now().getTime() < Date.parse(rotated.body.previousTokenValidUntil)));
      t.clock.advance(23 * HOUR);
      await new Promise((r) => setTimeout(r, 300)); // three sweeps
      assert.equal(oldSocket.ws.readyState, oldSocket.ws.OPEN);
      t.clock.advance(2 * HOUR);
      const closed = await oldSocket.closed;
      assert.equal(closedEarly, false);
      assert.equal(closed.code, 4401);
      assert.match(closed.reason, /^TOKEN_EXPIRED/);
      assert.equal(newSocket.ws.readyState, newSocket.ws.OPEN);
      newSocket.ws.close();
    } finally {
      await t.close();
    }
  });

  it('an API key cannot rotate an agent token, and an agent token cannot manage API keys or revoke agents', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('roles');
      assert.equal((await t.http('POST', '/v1/agents/me/rotate-token', { token: t.apiKey })).status, 403);
      assert.equal((await t.http('GET', '/v1/api-keys', { token: agent.token })).status, 403);
      assert.equal((await t.http('POST', '/v1/api-keys', { token: agent.token, body: { name: 'x' } })).status, 403);
      assert.equal((await t.http('DELETE', `/v1/agents/${agent.agentId}`, { token: agent.token })).status, 403);
    }));

  it('revoking an agent closes its open socket at once with UNAUTHORIZED, takes its services offline and refuses the token after', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('revoked');
      const sock = await t.connect(agent.token);
      const reply = await sock.request('expose', { name: 'db', target: 'localhost:5432' });
      assert.equal((reply as { ok: boolean }).ok, true);
      const before = await t.http('GET', '/v1/services', { token: t.apiKey });
      assert.equal(before.body.services[0].online, true);

      const revoked = await t.http('DELETE', `/v1/agents/${agent.agentId}`, { token: t.apiKey });
      assert.equal(revoked.status, 204);
      // The route has already dropped the routes when it answers.
      const after = await t.http('GET', '/v1/services', { token: t.apiKey });
      assert.equal(after.body.services[0].online, false);
      const closed = await sock.closed;
      assert.equal(closed.code, 4401);
      assert.match(closed.reason, /^UNAUTHORIZED/);

      assert.equal((await t.http('GET', '/v1/me', { token: agent.token })).status, 401);
      assert.equal((await refusedUpgrade(t, agent.token)).body.error.code, 'UNAUTHORIZED');
      assert.equal((await t.http('DELETE', `/v1/agents/${agent.agentId}`, { token: t.apiKey })).status, 404);
      const events = await auditOf(t, '?action=agent.revoke');
      assert.equal(events.events[0]!.targetId, agent.agentId);
    }));

  it('records every token use with IP and user agent, and writes agent.ip_changed when the IP changes', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('roaming');
      assert.equal((await t.http('GET', '/v1/me', { token: agent.token, localAddress: '127.0.0.1' })).status, 200);
      const sock = await t.connect(agent.token, { localAddress: '127.0.0.2' });
      const changed = await eventually(async () => (await auditOf(t, '?action=agent.ip_changed')).events[0]);
      assert.deepEqual(changed.metadata.previousIp.endsWith('127.0.0.1'), true);
      assert.equal(changed.metadata.ip.endsWith('127.0.0.2'), true);
      assert.equal(changed.ip?.endsWith('127.0.0.2'), true);
      sock.ws.close();
      const [row] = await t.hub.db.withSystem((tx) =>
        tx.query<{ last_ip: string; last_user_agent: string; last_used_at: Date }>('select last_ip, last_user_agent, last_used_at from agent_tokens where agent_id = $1', [agent.agentId]),
      );
      assert.equal(row!.last_ip.endsWith('127.0.0.2'), true);
      assert.equal(row!.last_user_agent, 'credentials-test-agent/1');
      assert.equal(new Date(row!.last_used_at).getTime(), t.clock.now().getTime());
      // Same IP again: no second ip_changed event.
      await t.http('GET', '/v1/me', { token: agent.token, localAddress: '127.0.0.2' });
      assert.equal((await auditOf(t, '?action=agent.ip_changed')).events.length, 1);
    }));

  it('audits token use at most once per token per hour', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('chatty');
      for (let i = 0; i < 5; i++) await t.http('GET', '/v1/me', { token: agent.token });
      assert.equal((await auditOf(t, '?action=agent.token_use')).events.length, 1);
      t.clock.advance(HOUR);
      await t.http('GET', '/v1/me', { token: agent.token });
      assert.equal((await auditOf(t, '?action=agent.token_use')).events.length, 2);
    }));
});

describe(`API keys (${dbKind})`, () => {
  it('creates a key shown once, lists prefixes only, and a revoked key is refused at once', () =>
    withTestHub(async (t) => {
      const created = await t.http('POST', '/v1/api-keys', { token: t.apiKey, body: { name: 'ci' } });
      assert.equal(created.status, 201);
      const key = created.body.key as string;
      assert.match(key, /^pc_[A-Za-z0-9]{32}$/);
      assert.equal((await t.http('GET', '/v1/services', { token: key })).status, 200);

      const list = await t.http('GET', '/v1/api-keys', { token: t.apiKey });
      const entry = list.body.apiKeys.find((k: { id: string }) => k.id === created.body.id);
      assert.deepEqual(Object.keys(entry).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt']);
      assert.ok(key.startsWith(entry.prefix));
      assert.notEqual(entry.lastUsedAt, null);
      assert.ok(!JSON.stringify(list.body).includes(key));

      assert.equal((await t.http('DELETE', `/v1/api-keys/${entry.id}`, { token: t.apiKey })).status, 204);
      const refused = await t.http('GET', '/v1/services', { token: key });
      assert.equal(refused.status, 401);
      assert.equal((await t.http('DELETE', `/v1/api-keys/${entry.id}`, { token: t.apiKey })).status, 404);
      const actions = (await auditOf(t, '?target_type=api_key')).events.map((e) => e.action);
      assert.deepEqual(actions.slice(0, 2), ['api_key.revoke', 'api_key.create']);
    }));

  it('refuses a key name that is empty or too long', () =>
    withTestHub(async (t) => {
      assert.equal((await t.http('POST', '/v1/api-keys', { token: t.apiKey, body: { name: '' } })).status, 400);
      assert.equal((await t.http('POST', '/v1/api-keys', { token: t.apiKey, body: { name: 'x'.repeat(129) } })).status, 400);
    }));
});

describe(`audit log (${dbKind})`, () => {
  it('filters by action, actor type, target type and time, and pages newest first with ?before', () =>
    withTestHub(async (t) => {
      for (let i = 0; i < 5; i++) await t.http('POST', '/v1/api-keys', { token: t.apiKey, body: { name: `k${i}` } });
      const agent = await t.enrol('audited');
      const all = await auditOf(t, '');
      const times = all.events.map((e) => Date.parse(e.at));
      assert.deepEqual(times, [...times].sort((a, b) => b - a));

      const page1 = await auditOf(t, '?action=api_key.create&limit=2');
      assert.equal(page1.events.length, 2);
      const page2 = await auditOf(t, `?action=api_key.create&limit=2&before=${page1.nextBefore}`);
      const page3 = await auditOf(t, `?action=api_key.create&limit=2&before=${page2.nextBefore}`);
      const seen = [...page1.events, ...page2.events, ...page3.events].map((e) => e.id);
      assert.equal(new Set(seen).size, 6); // 5 created here + the bootstrap key
      assert.equal(page3.nextBefore, page3.events.length === 2 ? page3.events[1]!.id : null);

      const byActor = await auditOf(t, '?actor_type=system');
      assert.ok(byActor.events.length >= 1 && byActor.events.every((e) => e.actorType === 'system'));
      const byTarget = await auditOf(t, '?target_type=agent');
      assert.ok(byTarget.events.some((e) => e.action === 'agent.enroll' && e.targetId === agent.agentId));
      assert.ok(byTarget.events.every((e) => e.targetType === 'agent'));


      const future = new Date(Date.now() + DAY).toISOString();
      assert.equal((await auditOf(t, `?since=${encodeURIComponent(future)}`)).events.length, 0);
      assert.equal((await auditOf(t, `?until=${encodeURIComponent(future)}`)).events.length, all.events.length);

      // ?agent=: what the agent did and what was done to it, nothing of another agent.
      const other = await t.enrol('bystander');
      (await t.connect(agent.token)).ws.close();
      const byAgent = await eventually(async () => {
        const answer = await auditOf(t, `?agent=${agent.agentId}`);
        return answer.events.some((e) => e.action === 'agent.connect') && answer;
      });
      assert.ok(byAgent.events.some((e) => e.action === 'agent.enroll' && e.targetId === agent.agentId));
      assert.ok(byAgent.events.every((e) => e.targetId === agent.agentId || (e.actorType === 'agent' && e.actorId === agent.agentId)), JSON.stringify(byAgent.events));
      assert.ok(!JSON.stringify(byAgent.events).includes(other.agentId));
      assert.equal((await auditOf(t, `?agent=${randomUUID()}`)).events.length, 0);
      assert.equal((await t.http('GET', '/v1/audit?limit=501', { token: t.apiKey })).status, 400);
      assert.equal((await t.http('GET', '/v1/audit?before=abc', { token: t.apiKey })).status, 400);
      assert.equal((await t.http('GET', '/v1/audit?since=yesterday', { token: t.apiKey })).status, 400);
    }));

  it('records agent connect and disconnect, service expose and unexpose', () =>
    withTestHub(async (t) => {
      const agent = await t.enrol('lifecycle');
      const sock = await t.connect(agent.token);
      await sock.request('expose', { name: 'web', target: 'localhost:8080' });
      await sock.request('unexpose', { name: 'web' });
      sock.ws.close();
      await sock.closed;
      const actions = await eventually(async () => {
        const list = (await auditOf(t, `?actor_type=agent`)).events.map((e) => e.action);
        return list.includes('agent.disconnect') && list;
      });
      for (const action of ['agent.connect', 'agent.token_use', 'service.expose', 'service.unexpose', 'agent.disconnect']) {
        assert.ok(actions.includes(action), `${action} missing from ${actions.join(', ')}`);
      }
    }));
});

describe(`cross-workspace (${dbKind})`, () => {
  it("workspace X's key cannot list or revoke Y's keys or agents, nor read Y's audit: answers match a random id", () =>
    withTestHub(async (t) => {
      const y = await t.addWorkspace('y');
      const yAgent = await t.enrol('y-agent', y.apiKey);
      const yKeys = await t.http('GET', '/v1/api-keys', { token: y.apiKey });
      const yKeyId = yKeys.body.apiKeys[0].id as string;

      const xKeys = await t.http('GET', '/v1/api-keys', { token: t.apiKey });
      assert.ok(!xKeys.body.apiKeys.some((k: { id: string }) => k.id === yKeyId));

      for (const [kind, id] of [['api-keys', yKeyId], ['agents', yAgent.agentId]] as const) {
        const random = randomUUID();
        const theirs = await t.http('DELETE', `/v1/${kind}/${id}`, { token: t.apiKey });
        const missing = await t.http('DELETE', `/v1/${kind}/${random}`, { token: t.apiKey });
        assert.equal(theirs.status, 404);
        assert.deepEqual({ ...theirs.body, error: { ...theirs.body.error, message: theirs.body.error.message.replace(id, 'ID') } }, {
          ...missing.body,
          error: { ...missing.body.error, message: missing.body.error.message.replace(random, 'ID') },
        });
        const notUuid = await t.http('DELETE', `/v1/${kind}/not-a-uuid`, { token: t.apiKey });
        assert.equal(notUuid.status, 404);
      }
      // Nothing changed in Y.
      assert.equal((await t.http('GET', '/v1/services', { token: y.apiKey })).status, 200);
      assert.equal((await t.http('GET', '/v1/me', { token: yAgent.token })).status, 200);

      const xAudit = await auditOf(t, '?limit=500');
      assert.ok(!JSON.stringify(xAudit).includes(yAgent.agentId));
      assert.ok(!xAudit.events.some((e) => e.targetId === yKeyId));
      const yAudit = await auditOf(t, '?limit=500', y.apiKey);
      assert.ok(yAudit.events.some((e) => e.targetId === yAgent.agentId));
      // X's event ids mean nothing to Y: as a cursor, one is refused like a made-up id (audit-paging.test.ts).
      const xFirst = xAudit.events[0]!.id;
      const yPaged = await t.http('GET', `/v1/audit?before=${xFirst}`, { token: y.apiKey });
      assert.equal(yPaged.status, 400);
      assert.ok(!JSON.stringify(yPaged.body).includes(yAgent.agentId));
    }));
});
