/**
 * An admin rotates a connected agent's token (POST /v1/agents/:id/rotate-token, the dashboard's "Rotate token"): the
 * hub issues the token, hands it to the running SDK agent over its own connection, and that connection outlives the
 * old token's grace period; the agent reconnects with the new token. Refused: an offline agent (AGENT_OFFLINE), an
 * unknown id (404), an agent token (403).
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Agent, type AgentEvent } from '@private-connect/sdk';
import { HOUR, eventually, withTestHub, type TestHub } from './support/test-hub.js';
import { dbKind } from './support/test-database.js';

const withHub = (fn: (t: TestHub) => Promise<void>) => withTestHub(fn, { HUB_PING_INTERVAL: '100ms' });

describe(`rotating an agent's token from the dashboard (${dbKind})`, () => {
  it('hands the new token to the running agent, which keeps its connection past the old grace period', () =>
    withHub(async (t) => {
      const enrolled = await t.enrol('rotated-agent');
      const events: AgentEvent[] = [];
      const saved: Array<{ token: string; expiresAt: string }> = [];
      const agent = new Agent({
        hubUrl: t.hub.url,
        token: enrolled.token,
        label: 'rotated-agent',
        backoff: { initialMs: 20, maxMs: 100 },
        onEvent: (event) => events.push(event),
        onToken: (token, expiresAt) => void saved.push({ token, expiresAt }),
      });
      try {
        await eventually(async () => events.some((e) => e.type === 'connected'));
        const answer = await t.http('POST', `/v1/agents/${enrolled.agentId}/rotate-token`, { token: t.apiKey });
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.equal(answer.body.connections, 1);
        assert.equal(answer.body.previousTokenValidUntil, new Date(t.clock.now().getTime() + 24 * HOUR).toISOString());
        assert.ok(!('token' in answer.body), 'the API answer must not carry the token');

        await eventually(async () => saved.length === 1 && events.some((e) => e.type === 'token_rotated'));
        const fresh = saved[0]!;
        assert.notEqual(fresh.token, enrolled.token);
        assert.equal(fresh.expiresAt, answer.body.expiresAt);
        assert.deepEqual(events.find((e) => e.type === 'token_rotated'), { type: 'token_rotated', expiresAt: fresh.expiresAt, saved: true });
        assert.ok(!JSON.stringify(events).includes(fresh.token), 'the token must never be in an agent event');
        assert.ok(!JSON.stringify(answer.body).includes(fresh.token), 'the API answer must not carry the token');
        const me = await t.http('GET', '/v1/me', { token: fresh.token });
        assert.equal(me.status, 200);
        assert.equal(me.body.agentId, enrolled.agentId);

        // Past the old token's grace period: the old token is refused, the agent's connection stays up.
        t.clock.advance(25 * HOUR);
        await new Promise((r) => setTimeout(r, 400)); // several expiry sweeps
        assert.equal((await t.http('GET', '/v1/me', { token: enrolled.token })).status, 401);
        assert.equal(events.filter((e) => e.type === 'disconnected' || e.type === 'fatal').length, 0, JSON.stringify(events));

        // A reconnect (the hub drops the socket) uses the new token.
        for (const conn of t.hub.connections) conn.terminate();
        await eventually(async () => events.filter((e) => e.type === 'connected').length === 2);
        assert.equal(events.filter((e) => e.type === 'fatal').length, 0, JSON.stringify(events));

        const audit = await t.http('GET', '/v1/audit?action=agent.token_rotate', { token: t.apiKey });
        assert.equal(audit.body.events.length, 1);
        assert.equal(audit.body.events[0].actorType, 'api_key');
        assert.equal(audit.body.events[0].targetId, enrolled.agentId);
      } finally {
        await agent.close();
      }
    }));

  it('refuses an offline agent with AGENT_OFFLINE, an unknown one with 404, and an agent token with 403', () =>
    withHub(async (t) => {
      const offline = await t.enrol('sleeping-agent');
      const asleep = await t.http('POST', `/v1/agents/${offline.agentId}/rotate-token`, { token: t.apiKey });
      assert.equal(asleep.status, 409);
      assert.equal(asleep.body.error.code, 'AGENT_OFFLINE');
      assert.match(asleep.body.error.message, /connect up --rotate-token/);

      const unknown = await t.http('POST', `/v1/agents/${randomUUID()}/rotate-token`, { token: t.apiKey });
      assert.equal(unknown.status, 404);
      assert.equal((await t.http('POST', '/v1/agents/not-a-uuid/rotate-token', { token: t.apiKey })).status, 404);

      const other = await t.enrol('other-agent');
      const byAgent = await t.http('POST', `/v1/agents/${offline.agentId}/rotate-token`, { token: other.token });
      assert.equal(byAgent.status, 403);
      // Nothing was rotated: the offline agent's token still works after a day.
      t.clock.advance(25 * HOUR);
      assert.equal((await t.http('GET', '/v1/me', { token: offline.token })).status, 200);
    }));
});
