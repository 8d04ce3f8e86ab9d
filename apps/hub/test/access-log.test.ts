/**
 * The access log coalesces identical access events of one flush window into one audit row with `metadata.count`:
 * every request counted exactly once, rows never merged across workspaces or across any stored difference, the
 * window written on time, early past its distinct-event bound, and on close().
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectJsonLines, createLogger } from '../src/logger.js';
import { createAccessLog, type AccessLog, type AccessLogOptions } from '../src/sharing/access-log.js';
import type { AuditEvent } from '../src/store/audit.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';
import { eventually } from './support/test-hub.js';

const LINK = '0b6f1a52-7d8e-4c2a-9a57-3f1e2d4c5b6a';

/** A link.access event like the link proxy's, with `over` on top and `metadata` merged into its metadata. */
function access(over: Partial<AuditEvent> = {}, metadata: Record<string, unknown> = {}): AuditEvent {
  return {
    actorType: 'public',
    action: 'link.access',
    targetType: 'link',
    targetId: LINK,
    ip: '127.0.0.1',
    userAgent: 'wrk',
    ...over,
    metadata: { method: 'GET', path: '/', status: 200, service: 'web', mode: 'path', ...metadata },
  };
}

interface Row {
  at: Date;
  ip: string | null;
  user_agent: string | null;
  metadata: { path: string; status: number; count: number; lastAt?: string; code?: string; [key: string]: unknown };
}

describe(`access log: identical accesses of a window make one row with a count (${dbKind})`, () => {
  let database: TestDatabase;
  let x = '';
  let y = '';
  const logs = collectJsonLines();
  const logger = createLogger('warn', logs.sink);
  const open: AccessLog[] = [];
  const accessLog = (options: AccessLogOptions = {}) => {
    const made = createAccessLog(database.db, logger, { flushMs: 60 * 60 * 1000, ...options });
    open.push(made);
    return made;
  };
  /** The link.access rows `workspaceId` sees (row level security applies), oldest first. */
  const rows = (workspaceId: string) =>
    database.db.withWorkspace(workspaceId, (tx) => tx.query<Row>("select at, ip, user_agent, metadata from audit_log where action = 'link.access' order by at, id"));
  const clear = () => database.db.withSystem((tx) => tx.query('delete from audit_log'));
  const total = (list: Row[]) => list.reduce((sum, row) => sum + row.metadata.count, 0);

  before(async () => {
    database = await createTestDatabase();
    [x, y] = await database.db.withSystem(async (tx) => {
      const made = await tx.query<{ id: string }>("insert into workspaces (name) values ('x'), ('y') returning id");
      return made.map((row) => row.id);
    }) as [string, string];
  });

  after(async () => {
    await Promise.all(open.map((log) => log.close()));
    await database?.dispose();
  });

  test('N identical accesses make one row: count N, at = the first, lastAt = the last', async () => {
    await clear();
    const log = accessLog();
    const first = Date.now();
    log.record(x, access());
    await sleep(20);
    for (let i = 1; i < 500; i++) log.record(x, access());
    const last = Date.now();
    await log.flush();
    const found = await rows(x);
    assert.equal(found.length, 1, JSON.stringify(found.map((r) => r.metadata)));
    const [row] = found as [Row];
    assert.equal(row.metadata.count, 500);
    assert.ok(Math.abs(row.at.getTime() - first) <= 5, `at ${row.at.toISOString()} is the first request's time`);
    const lastAt = Date.parse(row.metadata.lastAt!);
    assert.ok(lastAt - row.at.getTime() >= 20 && lastAt <= last, `lastAt ${row.metadata.lastAt} is the last request's time`);
    assert.deepEqual([row.metadata.path, row.metadata.status, row.metadata.service, row.ip, row.user_agent], ['/', 200, 'web', '127.0.0.1', 'wrk'], 'the rest is stored as recorded');
  });

  test('a lone access has count 1 and no lastAt', async () => {
    await clear();
    const log = accessLog();
    log.record(x, access());
    await log.flush();
    const [row] = await rows(x);
    assert.equal(row!.metadata.count, 1);
    assert.equal('lastAt' in row!.metadata, false);
  });

  test('accesses that differ in status, path, address, user agent, code or upgrade are separate rows', async () => {
    await clear();
    const log = accessLog();
    const variants: AuditEvent[] = [
      access(),
      access({}, { status: 404 }),
      access({}, { path: '/other' }),
      access({ ip: '127.0.0.2' }),
      access({ userAgent: 'curl/8' }),
      access({ userAgent: undefined }),
      access({}, { status: 400, code: 'AMBIGUOUS_PATH' }),
      access({}, { status: 400, code: 'BAD_REQUEST' }),
      access({}, { upgrade: true }),
      access({ targetId: '5d1c0e9a-2b3f-4a6d-8e7f-9a0b1c2d3e4f' }),
    ];
    for (let round = 0; round < 3; round++) for (const event of variants) log.record(x, event);
    await log.flush();
    const found = await rows(x);
    assert.equal(found.length, variants.length, JSON.stringify(found.map((r) => [r.ip, r.user_agent, r.metadata])));
    for (const row of found) assert.equal(row.metadata.count, 3);
  });

  test('over a mixed burst from two workspaces the counts add up exactly to the requests, for every kind of request', async () => {
    await clear();
    // A small distinct-event bound, so the burst spans several windows written while it goes on.
    const log = accessLog({ maxKeys: 7 });
    const sent = new Map<string, number>();
    let seed = 42;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 3000; i++) {
      const workspace = next() % 2 === 0 ? x : y;
      const [path, status, ip] = [`/p${next() % 5}`, [200, 404, 429][next() % 3]!, `127.0.0.${1 + (next() % 2)}`];
      log.record(workspace, access({ ip }, { path, status }));
      const kind = `${workspace} ${ip} ${path} ${status}`;
      sent.set(kind, (sent.get(kind) ?? 0) + 1);
      if (i % 500 === 0) await sleep(1); // writes run while requests keep coming
    }
    await log.flush();
    const counted = new Map<string, number>();
    for (const workspace of [x, y]) {
      for (const row of await rows(workspace)) {
        const kind = `${workspace} ${row.ip} ${row.metadata.path} ${row.metadata.status}`;
        counted.set(kind, (counted.get(kind) ?? 0) + row.metadata.count);
      }
    }
    assert.deepEqual(new Map([...counted].sort()), new Map([...sent].sort()));
    assert.equal(total([...(await rows(x)), ...(await rows(y))]), 3000);
  });

  test('two workspaces never share a row, and each sees only its own (row level security)', async () => {
    await clear();
    const log = accessLog();
    for (let i = 0; i < 10; i++) log.record(x, access());
    for (let i = 0; i < 4; i++) log.record(y, access());
    await log.flush();
    assert.deepEqual((await rows(x)).map((r) => r.metadata.count), [10]);
    assert.deepEqual((await rows(y)).map((r) => r.metadata.count), [4]);
    const all = await database.db.withSystem((tx) => tx.query<{ workspace_id: string; count: number }>("select workspace_id, (metadata->>'count')::int as count from audit_log order by count"));
    assert.deepEqual(all.map((r) => [r.workspace_id, r.count]), [[y, 4], [x, 10]]);
  });

  test('close() writes what the window holds', async () => {
    await clear();
    const log = createAccessLog(database.db, logger, { flushMs: 60 * 60 * 1000 });
    for (let i = 0; i < 25; i++) log.record(x, access());
    log.record(x, access({}, { status: 502 }));
    await log.close();
    assert.deepEqual((await rows(x)).map((r) => [r.metadata.status, r.metadata.count]), [[200, 25], [502, 1]]);
  });

  test('a window is written flushMs after its first access, without a flush', async () => {
    await clear();
    const log = accessLog({ flushMs: 100 });
    log.record(x, access());
    log.record(x, access());
    const [row] = await eventually(async () => {
      const found = await rows(x);
      return found.length > 0 && found;
    });
    assert.equal(row!.metadata.count, 2);
  });

  test('a window is written early once it holds maxKeys distinct accesses', async () => {
    await clear();
    const log = accessLog({ maxKeys: 10 });
    for (let i = 0; i < 9; i++) log.record(x, access({}, { path: `/p${i}` }));
    for (let i = 0; i < 100; i++) log.record(x, access({}, { path: '/p0' }));
    await sleep(200);
    assert.equal((await rows(x)).length, 0, 'below the bound the window waits for its hour');
    log.record(x, access({}, { path: '/p9' }));
    const found = await eventually(async () => {
      const list = await rows(x);
      return list.length === 10 && list;
    });
    assert.equal(total(found), 110);
    log.record(x, access({}, { path: '/p0' }));
    await sleep(200);
    assert.equal((await rows(x)).length, 10, 'the next access opens a new window');
    await log.flush();
    assert.equal(total(await rows(x)), 111);
  });

  test('record() never throws: an event whose metadata has no JSON is logged when its window is written, the others are stored', async () => {
    await clear();
    const log = accessLog();
    assert.doesNotThrow(() => log.record(x, access({}, { size: 1n })));
    log.record(x, access());
    await log.flush();
    assert.deepEqual((await rows(x)).map((r) => r.metadata.count), [1]);
    assert.ok(logs.lines.some((line) => line.msg === 'writing access events to the audit log failed' && line.requests === 1), JSON.stringify(logs.lines));
  });
});
