/** Transaction behaviour shared by both adapters: commit, rollback, errors and the values rows come back with. */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TransactionAbortedError } from '../src/db/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

describe(`database transactions (${dbKind})`, () => {
  let t: TestDatabase;
  let workspaceId: string;

  before(async () => {
    t = await createTestDatabase();
    const [row] = await t.db.withSystem((tx) => tx.query<{ id: string }>(`insert into workspaces (name) values ('tx') returning id`));
    workspaceId = row!.id;
  });
  after(async () => {
    await t?.dispose();
  });

  const agentCount = () =>
    t.db.withSystem(async (tx) => (await tx.query<{ n: number }>('select count(*)::int as n from agents'))[0]!.n);

  test('reports which kind of database it is', () => {
    assert.equal(t.db.kind, dbKind);
  });

  test('commits what fn wrote and returns what fn returned', async () => {
    const before = await agentCount();
    const id = await t.db.withWorkspace(workspaceId, async (tx) => {
      const [row] = await tx.query<{ id: string }>(`insert into agents (workspace_id, label) values ($1, 'kept') returning id`, [workspaceId]);
      return row!.id;
    });
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(await agentCount(), before + 1);
  });

  test('rolls back when fn throws and rethrows the very same error', async () => {
    const before = await agentCount();
    const thrown = new Error('boom');
    for (const run of [
      (fn: () => Promise<never>) => t.db.withWorkspace(workspaceId, async (tx) => {
        await tx.query(`insert into agents (workspace_id, label) values ($1, 'lost')`, [workspaceId]);
        return fn();
      }),
      (fn: () => Promise<never>) => t.db.withSystem(async (tx) => {
        await tx.query(`insert into agents (workspace_id, label) values ($1, 'lost')`, [workspaceId]);
        return fn();
      }),
    ]) {
      await assert.rejects(run(async () => { throw thrown; }), (error) => error === thrown);
    }
    assert.equal(await agentCount(), before);
  });

  test('passes a failed statement through with its SQLSTATE code', async () => {
    await assert.rejects(
      t.db.withSystem((tx) => tx.query('select 1 / 0')),
      (error) => (error as { code?: string }).code === '22012',
    );
  });

  test('fails the commit when fn swallowed a failed statement, instead of committing half', async () => {
    const before = await agentCount();
    await assert.rejects(
      t.db.withSystem(async (tx) => {
        await tx.query(`insert into agents (workspace_id, label) values ($1, 'half')`, [workspaceId]);
        await tx.query('select 1 / 0').catch(() => undefined);
      }),
      (error) => error instanceof TransactionAbortedError && error.code === '25P02',
    );
    assert.equal(await agentCount(), before);
  });

  test('refuses a query on a transaction handle after its transaction ended', async () => {
    let leaked: { query(sql: string): Promise<unknown> } | undefined;
    await t.db.withSystem(async (tx) => {
      leaked = tx;
    });
    await assert.rejects(leaked!.query('select 1'), /closed/);
  });

  test('returns bigint as a string, bytea as a Buffer, timestamptz as a Date and jsonb parsed', async () => {
    const bytes = randomBytes(32);
    const [row] = await t.db.withSystem((tx) =>
      tx.query<{ big: unknown; bytes: unknown; at: unknown; doc: unknown; int: unknown; nothing: unknown }>(
        `select 9007199254740993::bigint as big, $1::bytea as bytes, now() as at, '{"a":[1]}'::jsonb as doc,
                42 as int, null::text as nothing`,
        [bytes],
      ),
    );
    assert.equal(row!.big, '9007199254740993');
    assert.ok(Buffer.isBuffer(row!.bytes));
    assert.deepEqual(row!.bytes, bytes);
    assert.ok(row!.at instanceof Date);
    assert.deepEqual(row!.doc, { a: [1] });
    assert.equal(row!.int, 42);
    assert.equal(row!.nothing, null);
  });

  test('refuses several statements in one query() call; exec() runs them', async () => {
    await assert.rejects(t.db.withSystem((tx) => tx.query('select 1; select 2')));
    const rows = await t.db.withSystem(async (tx) => {
      await tx.exec!('create temporary table scratch (n int) on commit drop; insert into scratch values (1), (2)');
      return tx.query<{ n: number }>('select n from scratch order by n');
    });
    assert.deepEqual(rows, [{ n: 1 }, { n: 2 }]);
  });
});
