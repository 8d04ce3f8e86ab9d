/**
 * The CLI side of agent token lifecycle and the audit log, against an in-process hub with a ManualClock:
 * expiry warnings (`connect up`, `connect status`, the running agent), `connect up --rotate-token`, `connect audit`.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '@private-connect/hub';
import { ApiClient } from '@private-connect/sdk';
import { enrolAgentAsync, removeDirs, startInProcessHub, type AsyncAgentHome, type InProcessHub } from '../src/index.js';

const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;

async function withHub(fn: (hub: InProcessHub, clock: ManualClock, agent: AsyncAgentHome) => Promise<void>): Promise<void> {
  const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
  const hub = await startInProcessHub({ clock });
  let agent: AsyncAgentHome | undefined;
  try {
    agent = await enrolAgentAsync(hub);
    await fn(hub, clock, agent);
  } finally {
    await hub.stop();
    await removeDirs(hub.dataDir, agent?.home);
  }
}

describe('agent token lifecycle in the CLI', () => {
  test('warns about expiry on day 24 but not on day 23: connect up, connect status and the running agent', () =>
    withHub(async (_hub, clock, agent) => {
      clock.advance(23 * DAY);
      const up23 = await agent.run(['up'], { json: false });
      assert.equal(up23.code, 0, up23.stderr);
      assert.doesNotMatch(up23.stderr, /rotate-token/);
      const status23 = (await agent.run(['status'])).json() as { hub: { tokenExpiring?: boolean } };
      assert.equal(status23.hub.tokenExpiring, false);
      const expose23 = await agent.expose('localhost:1', 'early');
      await expose23.stop();
      assert.ok(!expose23.lines.some((l) => typeof l === 'object' && l.type === 'token_expiring'));

      clock.advance(DAY);
      const up24 = await agent.run(['up'], { json: false });
      assert.equal(up24.code, 0, up24.stderr);
      assert.match(up24.stderr, /warning: the agent token expires in 6 days .*connect up --rotate-token/);
      const status24 = await agent.run(['status'], { json: false });
      assert.match(status24.stdout, /warning: the agent token expires in 6 days/);
      const expose24 = await agent.expose('localhost:1', 'late');
      const warning = await expose24.waitFor((l) => l.type === 'token_expiring', 10_000, 'token_expiring event');
      assert.equal(warning.expiresInMs, 6 * DAY);
      await expose24.stop();
    }));

  test('connect up --rotate-token saves a new token; the old one works for 24 hours, then is refused', () =>
    withHub(async (hub, clock, agent) => {
      const before = await agent.config();
      const rotated = await agent.run(['up', '--rotate-token']);
      assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
      const result = rotated.json() as { status: string; previousTokenValidUntil: string };
      assert.equal(result.status, 'rotated');
      assert.equal(result.previousTokenValidUntil, new Date(clock.now().getTime() + DAY).toISOString());
      const after = await agent.config();
      assert.notEqual(after.token, before.token);
      assert.equal(after.agentId, before.agentId);

      const old = new ApiClient({ hubUrl: hub.url, credential: before.token });
      clock.advance(23 * HOUR);
      assert.equal((await old.me()).kind, 'agent');
      clock.advance(2 * HOUR);
      await assert.rejects(old.me(), (err: Error & { code?: string }) => err.code === 'UNAUTHORIZED');
      const status = await agent.run(['status']);
      assert.equal(status.code, 0);
      assert.equal((status.json() as { hub: { reachable: boolean } }).hub.reachable, true);
    }));
});

describe('connect audit', () => {
  test('prints the workspace audit log as a table or JSON, with --limit, --type and --action', () =>
    withHub(async (hub, _clock, agent) => {
      await agent.run(['up', '--rotate-token']);
      const page = await agent.run(['audit', '--api-key', hub.apiKey, '--limit', '2']);
      assert.equal(page.code, 0, page.stdout + page.stderr);
      const events = (page.json() as { events: Array<{ action: string; targetType: string }> }).events;
      assert.equal(events.length, 2);

      const rotations = (await agent.run(['audit', '--api-key', hub.apiKey, '--action', 'agent.token_rotate'])).json() as { events: Array<{ action: string }> };
      assert.deepEqual(rotations.events.map((e) => e.action), ['agent.token_rotate']);
      const aboutKeys = (await agent.run(['audit', '--api-key', hub.apiKey, '--type', 'api_key'])).json() as { events: Array<{ targetType: string }> };
      assert.ok(aboutKeys.events.length >= 1 && aboutKeys.events.every((e) => e.targetType === 'api_key'));

      const human = await agent.run(['audit', '--api-key', hub.apiKey, '--action', 'agent.enroll'], { json: false });
      assert.match(human.stdout, /TIME\s+ACTION\s+ACTOR\s+TARGET\s+IP/);
      assert.match(human.stdout, /agent\.enroll/);

      const asAgent = await agent.run(['audit']);
      assert.equal(asAgent.code, 1);
      assert.equal(asAgent.lines().find((l) => l.type === 'error')?.code, 'FORBIDDEN');
      const tooMany = await agent.run(['audit', '--api-key', hub.apiKey, '--limit', '501']);
      assert.equal(tooMany.code, 1);
    }));

  test('shows ×N after the action of an access entry that stands for N identical requests', () =>
    withHub(async (hub, _clock, agent) => {
      const access = (status: number) => ({ actorType: 'public' as const, action: 'link.access', targetType: 'link', targetId: 'a-link', ip: '127.0.0.1', metadata: { method: 'GET', path: '/', status } });
      for (let i = 0; i < 7; i++) hub.hub.sharing.access.record(hub.workspaceId, access(200));
      hub.hub.sharing.access.record(hub.workspaceId, access(404));
      await hub.hub.sharing.access.flush();
      const human = await agent.run(['audit', '--api-key', hub.apiKey, '--action', 'link.access'], { json: false });
      assert.equal(human.code, 0, human.stdout + human.stderr);
      const lines = human.stdout.split('\n').filter((line) => line.includes('link.access'));
      assert.equal(lines.length, 2, human.stdout);
      assert.match(lines.find((line) => line.includes('"status":200'))!, /link\.access ×7 /);
      assert.doesNotMatch(lines.find((line) => line.includes('"status":404'))!, /×/);
    }));
});
