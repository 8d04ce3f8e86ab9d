/**
 * Every table that has a workspace_id column is under row level security: enabled, forced (so the owner does not
 * slip past it either), and with a policy that keys both reads and writes on current_workspace_id(). A migration
 * that adds such a table without its policy fails here, on PGlite and on PostgreSQL.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

interface TableRls {
  table: string;
  enabled: boolean;
  forced: boolean;
  policies: Array<{ name: string; qual: string | null; with_check: string | null }>;
}

describe(`row level security covers every workspace table (${dbKind})`, () => {
  let t: TestDatabase;
  let tables: TableRls[];
  before(async () => {
    t = await createTestDatabase();
    const rows = await t.db.withSystem((tx) =>
      tx.query<{ table: string; enabled: boolean; forced: boolean; name: string | null; qual: string | null; with_check: string | null }>(
        `select c.relname as table, c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
                p.policyname as name, p.qual, p.with_check
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
           join pg_attribute a on a.attrelid = c.oid and a.attname = 'workspace_id' and not a.attisdropped
           left join pg_policies p on p.schemaname = 'public' and p.tablename = c.relname
          where c.relkind in ('r', 'p')
          order by c.relname, p.policyname`,
      ),
    );
    const byTable = new Map<string, TableRls>();
    for (const row of rows) {
      let entry = byTable.get(row.table);
      if (!entry) byTable.set(row.table, (entry = { table: row.table, enabled: row.enabled, forced: row.forced, policies: [] }));
      if (row.name) entry.policies.push({ name: row.name, qual: row.qual, with_check: row.with_check });
    }
    tables = [...byTable.values()];
  });
  after(async () => {
    await t?.dispose();
  });

  test('finds the workspace tables (the query is not vacuous)', () => {
    const names = tables.map((entry) => entry.table);
    for (const table of ['agents', 'services', 'hub_ports', 'links', 'shares', 'invitations']) assert.ok(names.includes(table), `${table} not found in ${names.join(', ')}`);
  });

  test('every table with a workspace_id column has row level security enabled and forced', () => {
    const gaps = tables.filter((entry) => !entry.enabled || !entry.forced).map((entry) => `${entry.table} (enabled: ${entry.enabled}, forced: ${entry.forced})`);
    assert.deepEqual(gaps, [], `tables with a workspace_id column but no enabled and forced RLS: ${gaps.join(', ')}`);
  });

  test('every table with a workspace_id column has a policy on current_workspace_id() for reads and writes', () => {
    const keyed = (text: string | null) => text !== null && /workspace_id = current_workspace_id\(\)/.test(text);
    const gaps = tables
      .filter((entry) => entry.policies.length === 0 || !entry.policies.every((policy) => keyed(policy.qual) && keyed(policy.with_check)))
      .map((entry) => `${entry.table} (${entry.policies.map((p) => `${p.name}: using ${p.qual}, check ${p.with_check}`).join('; ') || 'no policy'})`);
    assert.deepEqual(gaps, [], `tables with a workspace_id column and no policy keyed on current_workspace_id(): ${gaps.join(', ')}`);
  });
});
