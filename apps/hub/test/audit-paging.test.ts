/**
 * GET /v1/audit pages: newest first by time, every event exactly once across pages, ids and cursors that reveal
 * nothing of other workspaces, and another workspace's cursor answering exactly like a made-up one.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { recordAudit } from '../src/store/audit.js';
import { withTestHub, type TestHub } from './support/test-hub.js';
import { dbKind } from './support/test-database.js';

interface Entry {
  id: string;
  at: string;
  action: string;
  metadata: { seq?: number };
}

interface Page {
  events: Entry[];
  nextBefore: string | null;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;


/**
 * Writes `count` events `test.event` (metadata.seq 0..count-1) alternately into the workspaces, `perTx` to a
 * transaction so that several events share one timestamp, as events of one request do.
 */
async function interleave(t: TestHub, workspaces: string[], count: number, perTx: number): Promise<void> {
  for (let seq = 0; seq < count; seq += perTx) {
    for (const workspaceId of workspaces) {
      await t.hub.db.withWorkspace(workspaceId, async (tx) => {
        for (let i = seq; i < Math.min(seq + perTx, count); i++) {
          await recordAudit(tx, workspaceId, { actorType: 'system', action: 'test.event', metadata: { seq: i } });
        }
      });
    }
  }
}

/** Every page of `query` with `apiKey`, following nextBefore. */
async function allPages(t: TestHub, apiKey: string, query: string): Promise<Page[]> {
  const pages: Page[] = [];
  let before: string | null = null;
  do {
    const answer = await t.http('GET', `/v1/audit?${query}${before === null ? '' : `&before=${encodeURIComponent(before)}`}`, { token: apiKey });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const page = answer.body as Page;
    pages.push(page);
    before = page.nextBefore;
    assert.ok(pages.length <= 1000, 'the cursor never ends');
  } while (before !== null);
  return pages;
}

describe(`audit log pages (${dbKind})`, () => {
  it('pages 1,000 events newest first, each exactly once, with ids and cursors that count nothing of another workspace', () =>
    withTestHub(async (t) => {
      const y = await t.addWorkspace('y');
      await interleave(t, [t.workspaceId, y.workspaceId], 1000, 7);

      for (const limit of [37, 500]) {
        const pages = await allPages(t, t.apiKey, `action=test.event&limit=${limit}`);
        const events = pages.flatMap((p) => p.events);
        const seqs = events.map((e) => e.metadata.seq);
        // Newest first: the last event written comes first, and every event comes exactly once.
        assert.deepEqual(seqs, Array.from({ length: 1000 }, (_, i) => 999 - i), `limit ${limit}: order and completeness`);
        assert.equal(new Set(events.map((e) => e.id)).size, 1000);
        const times = events.map((e) => Date.parse(e.at));
        assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first by time');
        // X's ids are random: nothing in them (or in a cursor) grows with Y's activity in between.
        for (const e of events) assert.match(e.id, UUID_V4);
        for (const p of pages) if (p.nextBefore !== null) assert.match(p.nextBefore, UUID_V4);
      }

      // The whole log (bootstrap events included) is newest first too, by time.
      const whole = (await allPages(t, t.apiKey, 'limit=100')).flatMap((p) => p.events);
      const wholeTimes = whole.map((e) => Date.parse(e.at));
      assert.deepEqual(wholeTimes, [...wholeTimes].sort((a, b) => b - a));
      assert.equal(whole.filter((e) => e.action === 'test.event').length, 1000);
    }));

  it("answers another workspace's cursor exactly like a made-up one, and never with that workspace's events", () =>
    withTestHub(async (t) => {
      const y = await t.addWorkspace('y');
      await interleave(t, [t.workspaceId, y.workspaceId], 20, 3);
      const xPage = (await t.http('GET', '/v1/audit?action=test.event&limit=5', { token: t.apiKey })).body as Page;
      assert.ok(xPage.nextBefore);
      const xIds = new Set(xPage.events.map((e) => e.id));

      const theirs = await t.http('GET', `/v1/audit?before=${encodeURIComponent(xPage.nextBefore)}`, { token: y.apiKey });
      const random = randomUUID();
      const madeUp = await t.http('GET', `/v1/audit?before=${random}`, { token: y.apiKey });
      assert.equal(theirs.status, 400, JSON.stringify(theirs.body));
      assert.equal(theirs.body.error.code, 'BAD_REQUEST');
      assert.deepEqual(theirs.body, { error: { ...madeUp.body.error, message: madeUp.body.error.message.replace(random, xPage.nextBefore) } });

      // Y's whole log holds none of X's ids; X's holds none of Y's.
      const yAll = (await allPages(t, y.apiKey, 'limit=500')).flatMap((p) => p.events);
      assert.equal(yAll.filter((e) => e.action === 'test.event').length, 20);
      assert.ok(!yAll.some((e) => xIds.has(e.id)));
      // A cursor that is no id at all is refused by the schema.
      assert.equal((await t.http('GET', '/v1/audit?before=12', { token: t.apiKey })).status, 400);
      assert.equal((await t.http('GET', '/v1/audit?before=abc', { token: t.apiKey })).status, 400);
    }));
});
