/**
 * Row level security of workspace_members, and the identity tables connect_app may not touch at all (users,
 * sessions, magic_links are reached only through withSystem).
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Database } from '../src/db/index.js';
import { createTestDatabase, dbKind, isPgError, type TestDatabase } from './support/test-database.js';

interface Fixture {
  workspace: string;
  user: string;
}

async function seed(db: Database, tag: string): Promise<Fixture> {
  return db.withSystem(async (tx) => {
    const [ws] = await tx.query<{ id: string }>(`insert into workspaces (name) values ($1) returning id`, [`ws-${tag}`]);
    const [user] = await tx.query<{ id: string }>(`insert into users (email, created_at) values ($1, now()) returning id`, [`${tag}-${randomBytes(3).toString('hex')}@example.com`]);
    await tx.query(`insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, 'owner', now())`, [ws!.id, user!.id]);
    await tx.query(`insert into sessions (token_hash, user_id, created_at, last_seen_at) values ($1, $2, now(), now())`, [randomBytes(32), user!.id]);
    const [invitation] = await tx.query<{ id: string }>(
      `insert into invitations (workspace_id, email, role, created_at, expires_at) values ($1, 'x@example.com', 'member', now(), now() + interval '1 hour') returning id`,
      [ws!.id],
    );
    await tx.query(
      `insert into magic_links (token_hash, email, purpose, workspace_id, role, created_at, expires_at, invitation_id) values ($1, 'x@example.com', 'invite', $2, 'member', now(), now() + interval '1 hour', $3)`,
      [randomBytes(32), ws!.id, invitation!.id],
    );
    return { workspace: ws!.id, user: user!.id };
  });
}

const members = (db: Database) => db.withSystem((tx) => tx.query('select * from workspace_members order by workspace_id, user_id'));

describe(`row level security of membership and identity tables (${dbKind})`, () => {
  let t: TestDatabase;
  let x: Fixture;
  let y: Fixture;
  before(async () => {
    t = await createTestDatabase();
    x = await seed(t.db, 'x');
    y = await seed(t.db, 'y');
  });
  after(async () => {
    await t?.dispose();
  });

  test('a workspace sees only its own members', async () => {
    const rows = await t.db.withWorkspace(x.workspace, (tx) => tx.query<{ user_id: string }>('select user_id from workspace_members'));
    assert.deepEqual(rows.map((row) => row.user_id), [x.user]);
  });

  test('refuses adding a member to another workspace', async () => {
    await assert.rejects(
      t.db.withWorkspace(x.workspace, (tx) =>
        tx.query(`insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, 'owner', now())`, [y.workspace, x.user]),
      ),
      isPgError('42501', /row-level security/),
    );
  });

  test("cannot change another workspace's member's role, nor move a member into another workspace", async () => {
    const before = await members(t.db);
    const updated = await t.db.withWorkspace(x.workspace, (tx) =>
      tx.query(`update workspace_members set role = 'member' where workspace_id = $1 returning user_id`, [y.workspace]),
    );
    assert.equal(updated.length, 0);
    await assert.rejects(
      t.db.withWorkspace(x.workspace, (tx) => tx.query(`update workspace_members set workspace_id = $1 where user_id = $2`, [y.workspace, x.user])),
      isPgError('42501', /row-level security/),
    );
    assert.deepEqual(await members(t.db), before);
  });

  test("cannot remove another workspace's member", async () => {
    const before = await members(t.db);
    const deleted = await t.db.withWorkspace(x.workspace, (tx) => tx.query('delete from workspace_members where user_id = $1 returning user_id', [y.user]));
    assert.equal(deleted.length, 0);
    assert.deepEqual(await members(t.db), before);
  });

  test('a workspace with no members sees none', async () => {
    const rows = await t.db.withWorkspace(randomUUID(), (tx) => tx.query('select * from workspace_members'));
    assert.equal(rows.length, 0);
  });

  for (const table of ['users', 'sessions', 'magic_links', 'setup_links', 'device_codes']) {
    test(`refuses connect_app any access to ${table}, even inside its own workspace`, async () => {
      for (const sql of [`select * from ${table}`, `delete from ${table}`, `update ${table} set created_at = now()`]) {
        await assert.rejects(t.db.withWorkspace(x.workspace, (tx) => tx.query(sql)), isPgError('42501', /permission denied/), sql);
      }
    });
  }

  test('were connect_app granted magic_links, setup_links or device_codes, it would see and write only its own workspace rows', async () => {
    const rollback = new Error('roll back');
    const seen: Record<string, string[]> = {};
    await assert.rejects(
      t.db.withSystem(async (tx) => {
        for (const ws of [x.workspace, y.workspace]) {
          await tx.query(`insert into setup_links (token_hash, workspace_id, created_at, expires_at) values ($1, $2, now(), now() + interval '1 day')`, [randomBytes(32), ws]);
          await tx.query(
            `insert into device_codes (device_code_hash, user_code, created_at, expires_at, approved_at, workspace_id) values ($1, $2, now(), now() + interval '1 hour', now(), $3)`,
            [randomBytes(32), ws === x.workspace ? 'XXXX-XXXX' : 'YYYY-YYYY', ws],
          );
        }
        // A login link names no workspace: no workspace sees it.
        await tx.query(`insert into magic_links (token_hash, email, purpose, created_at, expires_at) values ($1, 'login@example.com', 'login', now(), now() + interval '1 hour')`, [randomBytes(32)]);
        for (const table of ['magic_links', 'setup_links', 'device_codes']) await tx.query(`grant select, insert, update, delete on ${table} to connect_app`);
        await tx.query('set local role connect_app');
        await tx.query(`select set_config('app.workspace_id', $1, true)`, [x.workspace]);
        for (const table of ['magic_links', 'setup_links', 'device_codes']) {
          seen[table] = (await tx.query<{ workspace_id: string | null }>(`select workspace_id from ${table}`)).map((row) => String(row.workspace_id));
          assert.equal((await tx.query(`update ${table} set created_at = now() where workspace_id = $1 returning 1`, [y.workspace])).length, 0, table);
          assert.equal((await tx.query(`delete from ${table} where workspace_id = $1 returning 1`, [y.workspace])).length, 0, table);
        }
        await assert.rejects(
          tx.query(`insert into setup_links (token_hash, workspace_id, created_at, expires_at) values ($1, $2, now(), now())`, [randomBytes(32), y.workspace]),
          isPgError('42501', /row-level security/),
        );
        throw rollback; // the grants, the role and the rows go with the transaction
      }),
      (error) => error === rollback,
    );
    assert.deepEqual(seen, { magic_links: [x.workspace], setup_links: [x.workspace], device_codes: [x.workspace] });
  });
});
