/** Opens the hub's database from its configuration and brings the schema up to date. */

import type { Database } from './database.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';

export interface OpenDatabaseOptions {
  /** PostgreSQL URL; when set, the embedded database is not used. */
  databaseUrl?: string;
  /** Folder of the embedded PGlite database; in memory when undefined. */
  dataDir?: string;
}

/** PostgreSQL when databaseUrl is set, else PGlite at dataDir; runs migrate() before returning. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const db = options.databaseUrl ? await openPostgres(options.databaseUrl) : await openPglite(options.dataDir);
  try {
    await migrate(db);
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  return db;
}
