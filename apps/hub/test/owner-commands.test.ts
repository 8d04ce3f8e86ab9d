/**
 * `connect-hub make-owner` and `connect-hub setup-link` (operator-commands.ts), run as the real command against the
 * database a hub uses: an embedded data folder (the hub stopped) or PostgreSQL (TEST_DATABASE=postgres, the hub may
 * run). For hubs whose setup link was lost.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectError } from '@private-connect/protocol';
import { openDatabase, type Database } from '../src/db/index.js';
import { bootstrapIfEmpty } from '../src/store/bootstrap.js';
import { findSetupLink } from '../src/store/setup-links.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe(`connect-hub make-owner and setup-link (${dbKind})`, () => {
  let dataDir: string | undefined;
  let t: TestDatabase | undefined;
  let env: NodeJS.ProcessEnv;
  let bootstrap: { workspaceId: string; setupToken: string };

  /** Runs fn on the hub's database: the shared PostgreSQL one, or the data folder opened and closed again. */
  const withDb = async <T>(fn: (db: Database) => Promise<T>): Promise<T> => {
    if (t) return fn(t.db);
    const db = await openDatabase({ dataDir });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const roleOf = (email: string, workspaceId: string) =>
    withDb((db) => db.withSystem((tx) => tx.query<{ role: string }>('select m.role from workspace_members m join users u on u.id = m.user_id where u.email = $1 and m.workspace_id = $2', [email, workspaceId])));

  before(async () => {
    if (dbKind === 'postgres') {
      t = await createTestDatabase();
      env = { DATABASE_URL: t.url };
    } else {
      dataDir = await mkdtemp(join(tmpdir(), 'pc-owner-'));
      env = { HUB_DATA_DIR: dataDir, DATABASE_URL: '' };
    }
    // What the first start did: the bootstrap workspace, its key and its setup link.
    const made = await withDb((db) => bootstrapIfEmpty(db, undefined, new Date()));
    bootstrap = made!;
  });
  after(async () => {
    await t?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('makes a new address owner of the first workspace (its default one), audited as the system', async () => {
    const answer = await run(['make-owner', 'Alice@Example.com']);
    assert.equal(answer.code, 0, answer.stderr);
    assert.match(answer.stdout, /^alice@example\.com is now owner of the workspace "default" \(/);
    assert.match(answer.stdout, /Sign in at http:\/\/localhost:3000\/login/);
    assert.deepEqual(await roleOf('alice@example.com', bootstrap.workspaceId), [{ role: 'owner' }]);
    const [user] = await withDb((db) => db.withSystem((tx) => tx.query<{ personal_workspace_id: string }>('select personal_workspace_id from users where email = $1', ['alice@example.com'])));
    assert.equal(user!.personal_workspace_id, bootstrap.workspaceId, 'no empty workspace of her own: the dashboard opens on this one');
    const audit = await withDb((db) =>
      db.withWorkspace(bootstrap.workspaceId, (tx) => tx.query<{ actor_type: string; metadata: Record<string, unknown> }>(`select actor_type, metadata from audit_log where action = 'member.add'`)),
    );
    assert.deepEqual(audit.map((a) => [a.actor_type, a.metadata.email, a.metadata.role, a.metadata.via]), [['system', 'alice@example.com', 'owner', 'connect-hub make-owner']]);
  });

  it('takes --workspace by name or id, promotes a member to owner, and says when there was nothing to do', async () => {
    const team = await withDb((db) =>
      db.withSystem(async (tx) => {
        const [ws] = await tx.query<{ id: string }>(`insert into workspaces (name) values ('team') returning id`);
        const [bob] = await tx.query<{ id: string }>(`insert into users (email, created_at) values ('bob@example.com', now()) returning id`);
        await tx.query(`insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, 'member', now())`, [ws!.id, bob!.id]);
        return ws!.id;
      }),
    );
    const promoted = await run(['make-owner', 'bob@example.com', '--workspace', 'team']);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /bob@example\.com is now owner \(was a member\) of the workspace "team"/);
    assert.deepEqual(await roleOf('bob@example.com', team), [{ role: 'owner' }]);
    const audit = await withDb((db) => db.withWorkspace(team, (tx) => tx.query<{ metadata: Record<string, unknown> }>(`select metadata from audit_log where action = 'member.role'`)));
    assert.deepEqual(audit.map((a) => [a.metadata.from, a.metadata.role]), [['member', 'owner']]);
    const again = await run(['make-owner', 'bob@example.com', '--workspace', team]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /bob@example\.com was already owner of the workspace "team"/);
  });

  it('refuses a bad address, an unknown workspace and a missing address with a message that says what to do', async () => {
    const bad = await run(['make-owner', 'not-an-address']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /connect-hub make-owner: BAD_REQUEST: expected an email address/);
    const unknown = await run(['make-owner', 'carol@example.com', '--workspace', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /connect-hub make-owner: NOT_FOUND: no workspace with the id or name "nope"; workspaces:\n {2}\S+ {2}default\n/);
    assert.deepEqual(await withDb((db) => db.withSystem((tx) => tx.query(`select 1 from users where email = 'carol@example.com'`))), [], 'nothing was made');
    const missing = await run(['make-owner']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /usage: connect-hub make-owner <email>/);
  });

  it('setup-link prints a new link on the dashboard URL; the one the first start printed stops working', async () => {
    const answer = await run(['setup-link'], { WEB_PORT: '4321', HUB_HOST: '0.0.0.0' });
    assert.equal(answer.code, 0, answer.stderr);
    const link = new URL(answer.stdout.trim());
    assert.equal(`${link.origin}${link.pathname}`, 'http://localhost:4321/setup');
    assert.match(answer.stderr, /workspace "default".*works once, until/);
    await withDb(async (db) => {
      const fresh = await db.withSystem((tx) => findSetupLink(tx, link.searchParams.get('token'), new Date()));
      assert.equal(fresh.workspaceId, bootstrap.workspaceId);
      await assert.rejects(
        db.withSystem((tx) => findSetupLink(tx, bootstrap.setupToken, new Date())),
        (err: unknown) => err instanceof ConnectError && err.code === 'LINK_EXPIRED',
      );
    });
  });

  if (dbKind === 'pglite') {
    it('refuses while the hub has the embedded database open, and says to stop it first', async () => {
      const db = await openDatabase({ dataDir });
      try {
        const answer = await run(['make-owner', 'dave@example.com']);
        assert.equal(answer.code, 1);
        assert.match(answer.stderr, /connect-hub make-owner: cannot open the database: .*in use.*stop the hub first/);
      } finally {
        await db.close();
      }
      assert.deepEqual(await roleOf('dave@example.com', bootstrap.workspaceId), []);
    });
  }
});
