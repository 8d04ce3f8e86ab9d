/** The database contract the hub codes against: workspace-scoped transactions under RLS, and owner transactions. */

import { ConnectError, isUuid } from '@private-connect/protocol';

/** A transaction handle: runs one SQL statement with `$1`-style parameters and returns its rows. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Runs several `;`-separated statements without parameters (migrations). Both adapters provide it; it is
   * optional so that the contract for ordinary queries stays one method.
   */
  exec?(sql: string): Promise<void>;
}

/** The hub's database: an embedded PGlite or a PostgreSQL pool, with the same SQL and the same RLS policies. */
export interface Database {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs fn in a transaction as role connect_app with app.workspace_id = workspaceId (set_config(..., true)), so
   * row level security applies. Rejects a workspaceId that is not a UUID with ConnectError('BAD_REQUEST').
   * Commits when fn resolves; rolls back when it throws and rethrows the error unchanged.
   */
  withWorkspace<T>(workspaceId: string, fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Transaction as the owner (RLS not applied): ONLY for credential lookups, bootstrap and migrations. */
  withSystem<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Closes the pool or the embedded database (and releases its data-folder lock). */
  close(): Promise<void>;
}

/** The role workspace transactions run as; it owns nothing, so forced RLS always applies to it. */
export const APP_ROLE = 'connect_app';

/** Throws ConnectError('BAD_REQUEST') unless value is a UUID in its canonical 8-4-4-4-12 hex form. */
export function assertWorkspaceId(value: unknown): asserts value is string {
  if (!isUuid(value)) {
    throw new ConnectError('BAD_REQUEST', 'the workspace id must be a UUID (8-4-4-4-12 hex digits)');
  }
}

/**
 * The first statements of every workspace transaction: drop to connect_app and set app.workspace_id, both for
 * this transaction only. Adapters call it right after BEGIN.
 */
export async function enterWorkspace(tx: Queryable, workspaceId: string): Promise<void> {
  try {
    await tx.query(`set local role ${APP_ROLE}`);
  } catch (error) {
    if ((error as { code?: unknown }).code === '42501') {
      // A non-superuser DATABASE_URL user must be a member of connect_app to switch to it.
      throw new ConnectError(
        'INTERNAL',
        `the database user cannot switch to role ${APP_ROLE}; run \`grant ${APP_ROLE} to <user>\` as a superuser`,
        { cause: error },
      );
    }
    throw error;
  }
  await tx.query(`select set_config('app.workspace_id', $1, true)`, [workspaceId]);
}

/** Thrown when COMMIT turned into ROLLBACK because a statement failed and fn swallowed the error (SQLSTATE 25P02). */
export class TransactionAbortedError extends Error {
  readonly code = '25P02';
  constructor() {
    super('the transaction was rolled back instead of committed: a statement in it failed');
    this.name = 'TransactionAbortedError';
  }
}
