/** Forward-only SQL migrations: `NNN_name.sql` files applied once each, in name order, recorded in schema_migrations. */

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectError } from '@private-connect/protocol';
import type { Database } from './database.js';

/** apps/hub/migrations, seen from the compiled apps/hub/dist/src/db/migrate.js. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));

/** Advisory lock key that serialises migrations of hubs starting at once on one PostgreSQL. */
export const MIGRATION_LOCK_ID = 727000;

/**
 * Applies every `*.sql` file in dir not yet recorded in schema_migrations, each in its own owner transaction that
 * first takes pg_advisory_xact_lock(MIGRATION_LOCK_ID), so concurrent hubs apply each file exactly once. A failing
 * file rolls back, is not recorded and stops the run. Returns the names applied by this call.
 */
export async function migrate(db: Database, dir: string = MIGRATIONS_DIR): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.sql')).sort();
  const applied: string[] = [];
  for (const name of names) {
    const sql = await readFile(join(dir, name), 'utf8');
    const ran = await db.withSystem(async (tx) => {
      if (!tx.exec) throw new ConnectError('INTERNAL', 'this database adapter cannot run multi-statement migrations');
      await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
      const [table] = await tx.query<{ exists: boolean }>(`select to_regclass('schema_migrations') is not null as exists`);
      if (!table?.exists) {
        await tx.exec('create table schema_migrations (name text primary key, applied_at timestamptz not null default now())');
      } else if ((await tx.query('select 1 from schema_migrations where name = $1', [name])).length > 0) {
        return false;
      }
      await tx.exec(sql);
      await tx.query('insert into schema_migrations (name) values ($1)', [name]);
      return true;
    });
    if (ran) applied.push(name);
  }
  return applied;
}
