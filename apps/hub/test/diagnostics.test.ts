/**
 * Health reports of exposing agents: the `health` control op stores them in the workspace's diagnostics, and
 * GET /v1/services/:id/diagnostics and GET /v1/services show them. What another workspace or agent cannot do.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { HubMessage, ServiceHealth } from '@private-connect/protocol';
import type { ServiceDiagnostics } from '@private-connect/api';
import { dbKind, isPgError } from './support/test-database.js';
import { DAY, startTestHub, type TestAgentSocket, type TestHub } from './support/test-hub.js';
import { DIAGNOSTICS_PER_SERVICE } from '../src/store/diagnostics.js';

type Reply = Extract<HubMessage, { t: 'reply' }>;

const check = (name: string, ok: boolean, detail: string) => ({ name, ok, detail, ms: 1.5 });
const report = (service: string, detail: string, ok = true) => ({ service, ok, checks: [check('tcp', ok, detail), check('latency', true, '1 ms')] });

async function ask(agent: TestAgentSocket, op: string, args: Record<string, unknown>): Promise<Reply> {
  const reply = await agent.request(op, args);
  assert.equal(reply.t, 'reply');
  return reply as Reply;
}

describe(`service diagnostics (${dbKind})`, () => {
  let t: TestHub;
  let agent: TestAgentSocket;
  let serviceId: string;

  before(async () => {
    t = await startTestHub();
    agent = await t.connect((await t.enrol('server-a')).token);
    const exposed = await ask(agent, 'expose', { name: 'web', target: '127.0.0.1:8080' });
    assert.ok(exposed.ok, JSON.stringify(exposed));
    serviceId = (exposed.result as { service: { id: string } }).service.id;
  });
  after(async () => {
    agent?.ws.close();
    await t?.close();
  });

  const diagnostics = async (id: string, query = '', token = t.apiKey) => t.http('GET', `/v1/services/${id}/diagnostics${query}`, { token });

  test('stores a report and returns it as the latest, with the history newest first', async () => {
    assert.ok((await ask(agent, 'health', report('web', 'first'))).ok);
    t.clock.advance(30_000);
    const second = await ask(agent, 'health', report('web', 'second', false));
    assert.deepEqual(second, { t: 'reply', id: second.id, ok: true, result: {} });
    const answer = await diagnostics(serviceId);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const body = answer.body as ServiceDiagnostics;
    assert.deepEqual(body.service, { id: serviceId, name: 'web' });
    assert.deepEqual(body.history.map((h) => h.checks[0]!.detail), ['second', 'first']);
    assert.deepEqual(body.latest, body.history[0]);
    assert.equal(body.latest!.ok, false, 'ok is recomputed from the checks');
    assert.equal(body.latest!.checkedAt, t.clock.now().toISOString(), "checkedAt is the hub's clock");
    assert.deepEqual(body.latest!.checks[1], { name: 'latency', ok: true, detail: '1 ms', ms: 1.5 });
    const limited = await diagnostics(serviceId, '?limit=1');
    assert.deepEqual((limited.body as ServiceDiagnostics).history.map((h) => h.checks[0]!.detail), ['second']);
  });

  test('GET /v1/services shows the latest health of each service that has one', async () => {
    assert.ok((await ask(agent, 'expose', { name: 'quiet', target: '127.0.0.1:9' })).ok);
    const answer = await t.http('GET', '/v1/services', { token: t.apiKey });
    const services = answer.body.services as Array<{ name: string; health?: ServiceHealth }>;
    const web = services.find((s) => s.name === 'web')!;
    assert.equal(web.health?.checks[0]!.detail, 'second');
    assert.equal(web.health?.ok, false);
    assert.equal(services.find((s) => s.name === 'quiet')!.health, undefined);
  });

  test('refuses a malformed report with BAD_REQUEST and keeps the connection up', async () => {
    const bad: Array<Record<string, unknown>> = [
      {},
      { service: 'web' },
      { service: 'web', checks: 'all good' },
      { service: 'web', checks: [] },
      { service: 'web', checks: [{ name: 'tcp', ok: 'yes', detail: '' }] },
      { service: 'web', checks: [{ name: 'tcp', ok: true, detail: 'x'.repeat(10_000) }] },
      { service: 'web', checks: Array.from({ length: 17 }, () => check('tcp', true, 'x')) },
      { service: 'web', checks: [{ name: 'tcp', ok: true, detail: 'x', ms: -5 }] },
    ];
    for (const args of bad) {
      const reply = await ask(agent, 'health', args);
      assert.equal(reply.ok, false, JSON.stringify(args).slice(0, 80));
      assert.equal(!reply.ok && reply.error.code, 'BAD_REQUEST', JSON.stringify(reply));
    }
    assert.equal(agent.ws.readyState, agent.ws.OPEN);
    assert.ok((await ask(agent, 'list', {})).ok, 'the connection still answers');
    const history = (await diagnostics(serviceId)).body as ServiceDiagnostics;
    assert.equal(history.history.length, 2, 'nothing malformed was stored');
  });

  test('refuses a report about a service of another agent, or of no service', async () => {
    const other = await t.connect((await t.enrol('server-b')).token);
    try {
      const reply = await ask(other, 'health', report('web', 'not mine'));
      assert.equal(!reply.ok && reply.error.code, 'FORBIDDEN');
      const missing = await ask(other, 'health', report('no-such-service', 'nothing'));
      assert.deepEqual(!missing.ok && missing.error, { code: 'SERVICE_NOT_FOUND', message: 'Service not found: no-such-service' });
    } finally {
      other.ws.close();
    }
  });

  test("another workspace cannot report on, nor read, this workspace's service", async () => {
    const b = await t.addWorkspace('other');
    const intruder = await t.connect((await t.enrol('intruder', b.apiKey)).token);
    try {
      const hidden = await ask(intruder, 'health', report('web', 'forged'));
      const missing = await ask(intruder, 'health', report('nope', 'forged'));
      assert.equal(!hidden.ok && hidden.error.code, 'SERVICE_NOT_FOUND');
      assert.equal(JSON.stringify({ ...hidden, id: 0 }).replace('web', '<REF>'), JSON.stringify({ ...missing, id: 0 }).replace('nope', '<REF>'));
    } finally {
      intruder.ws.close();
    }
    const m = randomUUID();
    const theirs = await diagnostics(serviceId, '', b.apiKey);
    const nothing = await diagnostics(m, '', b.apiKey);
    assert.equal(theirs.status, 404);
    assert.deepEqual(theirs.body, { error: { code: 'SERVICE_NOT_FOUND', message: `Service not found: ${serviceId}` } });
    assert.equal(JSON.stringify(theirs.body).replace(serviceId, '<REF>'), JSON.stringify(nothing.body).replace(m, '<REF>'));
    assert.equal((await diagnostics('not-a-uuid', '', b.apiKey)).status, 404);
    const seen = await t.hub.db.withWorkspace(b.workspaceId, (tx) => tx.query('select * from diagnostics'));
    assert.equal(seen.length, 0, "row level security hides the other workspace's reports");
    assert.ok(!JSON.stringify((await diagnostics(serviceId)).body).includes('forged'));
  });

  test('refuses a limit outside 1..100 with BAD_REQUEST', async () => {
    for (const limit of ['0', '101', '-1', '1.5', 'all']) {
      const answer = await diagnostics(serviceId, `?limit=${limit}`);
      assert.equal(answer.status, 400, limit);
      assert.equal(answer.body.error.code, 'BAD_REQUEST');
    }
    assert.equal((await diagnostics(serviceId, '?limit=100')).status, 200);
  });

  test(`keeps at most ${DIAGNOSTICS_PER_SERVICE} reports per service, and none older than 7 days`, async () => {
    for (let i = 0; i < DIAGNOSTICS_PER_SERVICE + 5; i++) assert.ok((await ask(agent, 'health', report('web', `bulk ${i}`))).ok);
    const count = async () =>
      Number((await t.hub.db.withSystem((tx) => tx.query<{ n: number }>('select count(*)::int as n from diagnostics where service_id = $1', [serviceId])))[0]!.n);
    assert.equal(await count(), DIAGNOSTICS_PER_SERVICE);
    const newest = (await diagnostics(serviceId, '?limit=100')).body as ServiceDiagnostics;
    assert.equal(newest.history[0]!.checks[0]!.detail, `bulk ${DIAGNOSTICS_PER_SERVICE + 4}`);
    assert.equal(newest.history.at(-1)!.checks[0]!.detail, 'bulk 5');
    t.clock.advance(8 * DAY);
    assert.ok((await ask(agent, 'health', report('web', 'a week later'))).ok);
    assert.equal(await count(), 1);
  });

  test("a service's reports go with it when it is unexposed", async () => {
    assert.ok((await ask(agent, 'unexpose', { name: 'web' })).ok);
    const rows = await t.hub.db.withSystem((tx) => tx.query('select * from diagnostics where service_id = $1', [serviceId]));
    assert.equal(rows.length, 0);
    assert.equal((await diagnostics(serviceId)).status, 404);
  });

  test("refuses a report row that points at another workspace's service", async () => {
    const b = await t.addWorkspace('pointer');
    const [own] = await t.hub.db.withSystem((tx) => tx.query<{ id: string }>('select id from agents where workspace_id = $1 limit 1', [t.workspaceId]));
    const [svc] = await t.hub.db.withSystem((tx) => tx.query<{ id: string }>('select id from services where workspace_id = $1 limit 1', [t.workspaceId]));
    await assert.rejects(
      t.hub.db.withWorkspace(b.workspaceId, (tx) =>
        tx.query(`insert into diagnostics (workspace_id, service_id, agent_id, ok, checks) values ($1, $2, $3, true, '[]')`, [b.workspaceId, svc!.id, own!.id]),
      ),
      isPgError('23503', /foreign key/),
    );
  });
});
