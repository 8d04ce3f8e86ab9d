/** Row level security: what a workspace CANNOT see or do to another workspace's rows, on every scoped table. */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { ConnectError } from '@private-connect/protocol';
import type { Database, Queryable } from '../src/db/index.js';
import { allocateHubPort, findHubPort, hubPortAllocated, releaseHubPort, workspaceHubPorts } from '../src/store/hub-ports.js';
import { createTestDatabase, dbKind, isPgError, type TestDatabase } from './support/test-database.js';

const TABLES = [
  'workspaces',
  'agents',
  'agent_tokens',
  'api_keys',
  'services',
  'tunnels',
  'audit_log',
  'diagnostics',
  'shares',
  'links',
  'hub_ports',
  'invitations',
] as const;
type Table = (typeof TABLES)[number];

/** One workspace and the id (the key) of its one row in every scoped table. */
type Fixture = Record<Table, string>;

/** The column a table's rows are known by: `id`, but hub_ports is keyed by its port. */
const key = (table: Table) => (table === 'hub_ports' ? 'port' : 'id');

/** How each table is attacked: an insert for another workspace, and a harmless column change. */
const SPECS: Record<Table, { insert: (y: Fixture) => [string, unknown[]]; set: string; insertRefusal: RegExp }> = {
  workspaces: {
    insert: () => [`insert into workspaces (name) values ('intruder')`, []],
    set: `name = 'taken over'`,
    insertRefusal: /permission denied/, // the app may not create workspaces at all
  },
  agents: {
    insert: (y) => [`insert into agents (workspace_id, label) values ($1, 'intruder')`, [y.workspaces]],
    set: `label = 'taken over'`,
    insertRefusal: /row-level security/,
  },
  agent_tokens: {
    insert: (y) => [
      `insert into agent_tokens (workspace_id, agent_id, token_hash, expires_at) values ($1, $2, $3, now() + interval '1 day')`,
      [y.workspaces, y.agents, randomBytes(32)],
    ],
    set: `revoked_at = now()`,
    insertRefusal: /row-level security/,
  },
  api_keys: {
    insert: (y) => [
      `insert into api_keys (workspace_id, name, prefix, key_hash) values ($1, 'intruder', 'pc_intr', $2)`,
      [y.workspaces, randomBytes(32)],
    ],
    set: `revoked_at = now()`,
    insertRefusal: /row-level security/,
  },
  services: {
    insert: (y) => [
      `insert into services (workspace_id, agent_id, name, target_host, target_port) values ($1, $2, 'intruder', 'localhost', 22)`,
      [y.workspaces, y.agents],
    ],
    set: `target_host = 'attacker.example'`,
    insertRefusal: /row-level security/,
  },
  tunnels: {
    insert: (y) => [
      `insert into tunnels (workspace_id, service_id, agent_id, local_port, connection_id) values ($1, $2, $3, 0, $4)`,
      [y.workspaces, y.services, y.agents, randomUUID()],
    ],
    set: `closed_at = now()`,
    insertRefusal: /row-level security/,
  },
  audit_log: {
    insert: (y) => [`insert into audit_log (workspace_id, actor_type, action) values ($1, 'system', 'intrude')`, [y.workspaces]],
    set: `action = 'rewritten'`,
    insertRefusal: /row-level security/,
  },
  diagnostics: {
    insert: (y) => [
      `insert into diagnostics (workspace_id, service_id, agent_id, ok, checks) values ($1, $2, $3, true, '[]')`,
      [y.workspaces, y.services, y.agents],
    ],
    set: `ok = false`,
    insertRefusal: /row-level security/,
  },
  shares: {
    insert: (y) => [
      `insert into shares (workspace_id, name, code_hash, code_prefix, services, created_by_type, expires_at) values ($1, 'intruder', $2, 'pcs_intr', '{db}', 'system', now() + interval '1 day')`,
      [y.workspaces, randomBytes(32)],
    ],
    set: `name = 'taken-over'`,
    insertRefusal: /row-level security/,
  },
  links: {
    insert: (y) => [
      `insert into links (workspace_id, service_name, token_hash, token_prefix, created_by_type, expires_at) values ($1, 'db', $2, 'intrud', 'system', now() + interval '1 day')`,
      [y.workspaces, randomBytes(32)],
    ],
    set: `revoked_at = now()`,
    insertRefusal: /row-level security/,
  },
  hub_ports: {
    insert: (y) => [`insert into hub_ports (port, workspace_id, service_name) values (20099, $1, 'intruder')`, [y.workspaces]],
    set: `service_name = 'taken-over'`,
    insertRefusal: /row-level security/,
  },
  invitations: {
    insert: (y) => [
      `insert into invitations (workspace_id, email, role, created_at, expires_at) values ($1, 'intruder@example.com', 'admin', now(), now() + interval '1 day')`,
      [y.workspaces],
    ],
    set: `role = 'admin'`,
    insertRefusal: /row-level security/,
  },
};

/** Tables the app may not delete from at all (no grant), as opposed to "only its own rows". */
const NO_DELETE = new Set<Table>(['workspaces', 'audit_log', 'shares', 'links', 'invitations']);
const NO_UPDATE = new Set<Table>(['audit_log', 'diagnostics', 'hub_ports']);

async function seed(db: Database, tag: string): Promise<Fixture> {
  return db.withSystem(async (tx) => {
    const one = async (sql: string, params: unknown[]) => String((await tx.query<{ id: unknown }>(sql, params))[0]!.id);
    const workspaces = await one(`insert into workspaces (name) values ($1) returning id`, [`ws-${tag}`]);
    const agents = await one(`insert into agents (workspace_id, label) values ($1, $2) returning id`, [workspaces, `agent-${tag}`]);
    const agent_tokens = await one(
      `insert into agent_tokens (workspace_id, agent_id, token_hash, expires_at) values ($1, $2, $3, now() + interval '1 day') returning id`,
      [workspaces, agents, randomBytes(32)],
    );
    const api_keys = await one(
      `insert into api_keys (workspace_id, name, prefix, key_hash) values ($1, $2, 'pc_test', $3) returning id`,
      [workspaces, `key-${tag}`, randomBytes(32)],
    );
    const services = await one(
      `insert into services (workspace_id, agent_id, name, target_host, target_port) values ($1, $2, $3, 'localhost', 5432) returning id`,
      [workspaces, agents, `db-${tag}`],
    );
    const tunnels = await one(
      `insert into tunnels (workspace_id, service_id, agent_id, local_port, connection_id) values ($1, $2, $3, 15432, $4) returning id`,
      [workspaces, services, agents, randomUUID()],
    );
    const audit_log = await one(
      `insert into audit_log (workspace_id, actor_type, action) values ($1, 'system', 'test.seed') returning id`,
      [workspaces],
    );
    const diagnostics = await one(
      `insert into diagnostics (workspace_id, service_id, agent_id, ok, checks) values ($1, $2, $3, true, '[]') returning id`,
      [workspaces, services, agents],
    );
    const shares = await one(
      `insert into shares (workspace_id, name, code_hash, code_prefix, services, created_by_type, expires_at)
       values ($1, $2, $3, 'pcs_test', '{db}', 'system', now() + interval '1 day') returning id`,
      [workspaces, `share-${tag}`, randomBytes(32)],
    );
    const links = await one(
      `insert into links (workspace_id, service_name, token_hash, token_prefix, created_by_type, expires_at)
       values ($1, $2, $3, 'abcdef', 'system', now() + interval '1 day') returning id`,
      [workspaces, `db-${tag}`, randomBytes(32)],
    );
    const hub_ports = await one(`insert into hub_ports (port, workspace_id, service_name) values ($1, $2, $3) returning port as id`, [
      tag === 'x' ? 20001 : 20002,
      workspaces,
      `db-${tag}`,
    ]);
    const invitations = await one(
      `insert into invitations (workspace_id, email, role, created_at, expires_at) values ($1, $2, 'member', now(), now() + interval '1 day') returning id`,
      [workspaces, `invitee-${tag}@example.com`],
    );
    return { workspaces, agents, agent_tokens, api_keys, services, tunnels, audit_log, diagnostics, shares, links, hub_ports, invitations };
  });
}

/** The row as the owner sees it, bypassing RLS. */
function ownerView(db: Database, table: Table, id: string): Promise<Record<string, unknown>[]> {
  return db.withSystem((tx) => tx.query(`select * from ${table} where ${key(table)} = $1`, [id]));
}

/** Runs fn in a workspace transaction and rolls it back, returning fn's result. */
async function rolledBack<T>(db: Database, workspaceId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const rollback = new Error('roll back');
  let result: T | undefined;
  await assert.rejects(
    db.withWorkspace(workspaceId, async (tx) => {
      result = await fn(tx);
      throw rollback;
    }),
    (error) => error === rollback,
  );
  return result as T;
}

describe(`row level security (${dbKind})`, () => {
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

  for (const table of TABLES) {
    describe(table, () => {
      test(`a workspace sees only its own ${table} rows`, async () => {
        const rows = await t.db.withWorkspace(x.workspaces, (tx) => tx.query<{ id: unknown }>(`select ${key(table)} as id from ${table}`));
        assert.deepEqual(rows.map((row) => String(row.id)), [x[table]]);
      });

      test(`refuses an insert into ${table} for another workspace`, async () => {
        const [sql, params] = SPECS[table].insert(y);
        await assert.rejects(
          t.db.withWorkspace(x.workspaces, (tx) => tx.query(sql, params)),
          isPgError('42501', SPECS[table].insertRefusal),
        );
        const count = await t.db.withSystem((tx) => tx.query<{ n: number }>(`select count(*)::int as n from ${table}`));
        assert.equal(count[0]!.n, 2);
      });

      if (NO_UPDATE.has(table)) {
        test(`refuses any update of ${table}, even of the workspace's own rows`, async () => {
          for (const id of [x[table], y[table]]) {
            const before = await ownerView(t.db, table, id);
            await assert.rejects(
              t.db.withWorkspace(x.workspaces, (tx) => tx.query(`update ${table} set ${SPECS[table].set} where ${key(table)} = $1`, [id])),
              isPgError('42501', /permission denied/),
            );
            assert.deepEqual(await ownerView(t.db, table, id), before);
          }
        });
      } else {
        test(`an update of another workspace's ${table} row by id changes nothing`, async () => {
          const before = await ownerView(t.db, table, y[table]);
          const updated = await t.db.withWorkspace(x.workspaces, (tx) =>
            tx.query(`update ${table} set ${SPECS[table].set} where ${key(table)} = $1 returning 1`, [y[table]]),
          );
          assert.equal(updated.length, 0);
          assert.deepEqual(await ownerView(t.db, table, y[table]), before);
          // The same statement does reach the workspace's own row, so the 0 above is RLS and not a bad statement.
          const own = await rolledBack(t.db, x.workspaces, (tx) =>
            tx.query(`update ${table} set ${SPECS[table].set} where ${key(table)} = $1 returning 1`, [x[table]]),
          );
          assert.equal(own.length, 1);
        });
      }

      if (NO_DELETE.has(table)) {
        test(`refuses any delete from ${table}, even of the workspace's own rows`, async () => {
          for (const id of [x[table], y[table]]) {
            await assert.rejects(
              t.db.withWorkspace(x.workspaces, (tx) => tx.query(`delete from ${table} where ${key(table)} = $1`, [id])),
              isPgError('42501', /permission denied/),
            );
            assert.equal((await ownerView(t.db, table, id)).length, 1);
          }
        });
      } else {
        test(`a delete of another workspace's ${table} row by id removes nothing`, async () => {
          const before = await ownerView(t.db, table, y[table]);
          const deleted = await t.db.withWorkspace(x.workspaces, (tx) =>
            tx.query(`delete from ${table} where ${key(table)} = $1 returning 1`, [y[table]]),
          );
          assert.equal(deleted.length, 0);
          assert.deepEqual(await ownerView(t.db, table, y[table]), before);
          const own = await rolledBack(t.db, x.workspaces, (tx) => tx.query(`delete from ${table} where ${key(table)} = $1 returning 1`, [x[table]]));
          assert.equal(own.length, 1);
        });
      }
    });
  }

  test('refuses a workspace id that is missing or not a UUID, without running fn', async () => {
    for (const id of [undefined, '', 'garbage', `' or true --`, `${randomUUID()} `, randomUUID().replaceAll('-', '')]) {
      let ran = false;
      await assert.rejects(
        t.db.withWorkspace(id as string, async () => {
          ran = true;
        }),
        (error) => error instanceof ConnectError && error.code === 'BAD_REQUEST',
      );
      assert.equal(ran, false);
    }
  });

  test('connect_app without app.workspace_id set sees no rows in any table', async () => {
    const counts = await t.db.withSystem(async (tx) => {
      await tx.query('set local role connect_app');
      const result: Record<string, number> = {};
      for (const table of TABLES) result[table] = (await tx.query(`select * from ${table}`)).length;
      return result;
    });
    assert.deepEqual(counts, Object.fromEntries(TABLES.map((table) => [table, 0])));
  });

  test('a workspace that has no rows sees none', async () => {
    const rows = await t.db.withWorkspace(randomUUID(), async (tx) => {
      const seen: number[] = [];
      for (const table of TABLES) seen.push((await tx.query(`select * from ${table}`)).length);
      return seen;
    });
    assert.deepEqual(rows, TABLES.map(() => 0));
  });

  test('workspace queries run as connect_app, which is not a superuser and cannot bypass RLS', async () => {
    const [row] = await t.db.withWorkspace(x.workspaces, (tx) =>
      tx.query<{ user: string; workspace: string; rolsuper: boolean; rolbypassrls: boolean }>(
        `select current_user as user, current_setting('app.workspace_id') as workspace, rolsuper, rolbypassrls
           from pg_roles where rolname = current_user`,
      ),
    );
    assert.deepEqual(row, { user: 'connect_app', workspace: x.workspaces, rolsuper: false, rolbypassrls: false });
  });

  test('the role and workspace id do not outlive the transaction', async () => {
    await t.db.withWorkspace(x.workspaces, async () => undefined);
    const [row] = await t.db.withSystem((tx) =>
      tx.query<{ user: string; workspace: string | null }>(
        `select current_user as user, current_setting('app.workspace_id', true) as workspace`,
      ),
    );
    assert.notEqual(row!.user, 'connect_app');
    assert.ok(row!.workspace === null || row!.workspace === '', `app.workspace_id leaked: ${row!.workspace}`);
  });

  test("a hub port allocation cannot take, see or free a port another workspace holds", async () => {
    const port = Number(y.hub_ports);
    const before = await ownerView(t.db, 'hub_ports', y.hub_ports);
    const grabbed = await t.db.withWorkspace(x.workspaces, (tx) =>
      tx.query(`insert into hub_ports (port, workspace_id, service_name) values ($1, $2, 'grab') on conflict do nothing returning port`, [port, x.workspaces]),
    );
    assert.equal(grabbed.length, 0);
    // The store's functions run under the workspace's RLS context too: Y's port is taken, invisible and not X's to free.
    assert.equal(await allocateHubPort(t.db, port, x.workspaces, 'grab', 10), 'taken');
    assert.equal(await findHubPort(t.db, x.workspaces, 'db-y'), undefined);
    assert.equal(await hubPortAllocated(t.db, x.workspaces, port, 'db-y'), false);
    assert.deepEqual(await releaseHubPort(t.db, x.workspaces, 'db-y'), []);
    assert.deepEqual(await workspaceHubPorts(t.db, x.workspaces), [{ port: Number(x.hub_ports), service_name: 'db-x' }]);
    assert.deepEqual(await ownerView(t.db, 'hub_ports', y.hub_ports), before);
    // Y sees its own port through the same functions, so the misses above are RLS.
    assert.equal(await findHubPort(t.db, y.workspaces, 'db-y'), port);
  });

  test("refuses a row that points at another workspace's agent", async () => {
    await assert.rejects(
      t.db.withWorkspace(x.workspaces, (tx) =>
        tx.query(
          `insert into services (workspace_id, agent_id, name, target_host, target_port) values ($1, $2, 'cross', 'localhost', 22)`,
          [x.workspaces, y.agents],
        ),
      ),
      isPgError('23503', /foreign key/),
    );
  });
});
