/** The hub's database layer. */

export { APP_ROLE, assertWorkspaceId, TransactionAbortedError, type Database, type Queryable } from './database.js';
export { LOCK_FILE } from './data-dir-lock.js';
export { migrate, MIGRATIONS_DIR, MIGRATION_LOCK_ID } from './migrate.js';
export { openDatabase, type OpenDatabaseOptions } from './open.js';
export { openPglite, type PgliteOptions } from './pglite.js';
export { makePgliteTemplate, pgliteVersion, seedFromTemplate, TEMPLATE_DIR, TEMPLATE_STAMP, templateUsable } from './pglite-template.js';
export { CONNECT_TIMEOUT_MS, describeTarget, openPostgres, type PostgresOptions } from './postgres.js';
