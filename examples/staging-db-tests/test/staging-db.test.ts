/**
 * A test suite that runs its queries against a staging PostgreSQL reached with reach(): it talks to the database
 * only through the local reach() port.
 *
 * With STAGING_DB_SERVICE set it uses your hub: the config folder `connect up` wrote (CONNECT_HOME, else ~/.connect)
 * and the PG* variables (PGUSER, PGPASSWORD, PGDATABASE) for the database's own login; it works in a schema of its
 * own, dropped at the end. Without it the suite brings everything: a hub process, an agent exposing the local
 * PostgreSQL (127.0.0.1:5432, trust auth) with expose(), and a database made for this run and dropped after it.
 */

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { expose, type Exposed } from '@private-connect/sdk';
import { enrolAgent, removeDirs, startHubProcess, type AgentHome, type HubProcess } from '@private-connect/e2e';
import { reachStagingDb, type StagingDb } from '../src/staging-db.js';

const ownHub = process.env.STAGING_DB_SERVICE;
const runId = randomBytes(4).toString('hex');

describe('the staging database, through reach()', () => {
  let hub: HubProcess | undefined;
  let homes: AgentHome[] = [];
  let exposed: Exposed | undefined;
  let staging: StagingDb;
  /** Connections to the run's own database (or schema): what the tests query. */
  let db: pg.Pool;
  /** Undoes what before() made in the database, run by after(). */
  let drop: (() => Promise<unknown>) | undefined;

  before(async () => {
    if (ownHub) {
      staging = await reachStagingDb({ service: ownHub });
      const schema = `pc_example_${runId}`;
      const admin = staging.pool();
      await admin.query(`CREATE SCHEMA ${schema}`);
      drop = () => admin.query(`DROP SCHEMA ${schema} CASCADE`);
      db = staging.pool({ options: `-c search_path=${schema}` });
      return;
    }
    hub = await startHubProcess();
    homes = await Promise.all([enrolAgent(hub, { label: 'db-host' }), enrolAgent(hub, { label: 'ci-runner' })]);
    exposed = await expose('127.0.0.1:5432', { name: 'staging-db', home: homes[0]!.home });
    staging = await reachStagingDb({ home: homes[1]!.home });
    const database = `pc_staging_${runId}`;
    const admin = staging.pool({ user: 'postgres', database: 'postgres' });
    await admin.query(`CREATE DATABASE ${database}`);
    drop = () => admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
    db = staging.pool({ user: 'postgres', database });
  });

  after(async () => {
    try {
      await db?.end();
      await drop?.();
    } finally {
      await staging?.close();
      await exposed?.close();
      await hub?.stop();
      await removeDirs(hub?.dataDir, ...homes.map((h) => h.home));
    }
  });

  test('the database behind the port is PostgreSQL, in the database (or schema) of this run', async () => {
    const { rows } = await db.query<{ version: string; database: string; schema: string; serverPort: number }>(
      'select version() as version, current_database() as database, current_schema() as schema, inet_server_port() as "serverPort"',
    );
    assert.match(rows[0]!.version, /^PostgreSQL /);
    if (ownHub) return assert.equal(rows[0]!.schema, `pc_example_${runId}`);
    assert.equal(rows[0]!.database, `pc_staging_${runId}`);
    // The client dialled the reach() port; the server it got is the one on 5432, on the other side of the tunnel.
    assert.notEqual(staging.port, 5432);
    assert.equal(rows[0]!.serverPort, 5432);
  });

  test('a migration, then rows written and read back in order', async () => {
    await db.query('create table orders (id serial primary key, customer text not null, total_cents integer not null)');
    await db.query("insert into orders (customer, total_cents) values ('ada', 1250), ('grace', 990), ('ada', 300)");
    const { rows } = await db.query<{ customer: string; sum: string; n: string }>(
      'select customer, sum(total_cents) as sum, count(*) as n from orders group by customer order by customer',
    );
    assert.deepEqual(rows.map((r) => [r.customer, Number(r.sum), Number(r.n)]), [['ada', 1550, 2], ['grace', 990, 1]]);
  });

  test('a rolled-back transaction leaves nothing behind', async () => {
    await db.query('create table events (id serial primary key, kind text not null)');
    const client = await db.connect();
    try {
      await client.query('begin');
      await client.query("insert into events (kind) values ('signup'), ('login')");
      assert.equal((await client.query('select count(*)::int as n from events')).rows[0].n, 2, 'inside the transaction');
      await client.query('rollback');
    } finally {
      client.release();
    }
    assert.equal((await db.query('select count(*)::int as n from events')).rows[0].n, 0);
  });

  test('four connections at once each get their own server session', async () => {
    const pool = staging.pool({ ...(ownHub ? {} : { user: 'postgres', database: `pc_staging_${runId}` }), max: 4 });
    try {
      const clients = await Promise.all([0, 1, 2, 3].map(() => pool.connect()));
      const pids = await Promise.all(clients.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid));
      for (const c of clients) c.release();
      assert.equal(new Set(pids).size, 4);
    } finally {
      await pool.end();
    }
  });

  test('a 1 MiB value goes in and comes back byte for byte', async () => {
    const blob = randomBytes(1024 * 1024);
    await db.query('create table blobs (id int primary key, data bytea not null)');
    await db.query('insert into blobs values (1, $1)', [blob]);
    const { rows } = await db.query<{ data: Buffer; md5: string }>('select data, md5(data) as md5 from blobs where id = 1');
    assert.ok(rows[0]!.data.equals(blob));
    assert.equal(rows[0]!.md5, createHash('md5').update(blob).digest('hex'));
  });
});
