/** The PostgreSQL database: a node-postgres pool, one pooled connection per transaction. */

import type pg from 'pg';
import { ConnectError } from '@private-connect/protocol';
import { assertWorkspaceId, enterWorkspace, TransactionAbortedError, type Database, type Queryable } from './database.js';

/** How long opening the database waits for the first connection before giving up. */
export const CONNECT_TIMEOUT_MS = 10_000;

export interface PostgresOptions {
  /** Most connections in the pool (node-postgres default: 10). */
  max?: number;
}

/**
 * Connects to PostgreSQL at url and checks the connection once, failing with ConnectError('INTERNAL') that names
 * host:port/database (never the password) and the reason.
 */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Database> {
  // Loaded here, not by every hub: 3 MiB of heap a hub on the embedded database does not need.
  const { default: pg } = await import('pg');
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  try {
    await probe.connect();
    await probe.query('select 1');
  } catch (error) {
    throw new ConnectError('INTERNAL', `cannot connect to PostgreSQL at ${describeTarget(url)}: ${(error as Error).message}`, { cause: error });
  } finally {
    await probe.end().catch(() => undefined);
  }

  const pool = new pg.Pool({ connectionString: url, max: options.max });
  // An idle connection that dies (server restart, terminated backend) is dropped from the pool and replaced on
  // next use; without a listener its 'error' event would crash the process.
  pool.on('error', () => undefined);
  // The same for a connection that dies while checked out: its query rejects (and the caller handles that), and
  // the 'error' event the client emits as well must not crash the hub.
  pool.on('connect', (client) => client.on('error', () => undefined));

  async function transaction<T>(setup: ((tx: Queryable) => Promise<void>) | undefined, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    let open = true;
    const tx: Queryable = {
      async query<R>(sql: string, params?: unknown[]) {
        if (!open) throw new Error('Transaction is closed');
        // Always the extended protocol, like PGlite's query(): one statement, text results.
        const config = { text: sql, values: params ?? [], queryMode: 'extended' };
        return (await client.query(config as pg.QueryConfig)).rows as R[];
      },
      async exec(sql: string) {
        if (!open) throw new Error('Transaction is closed');
        await client.query(sql);
      },
    };
    try {
      await client.query('begin');
      await setup?.(tx);
      const result = await fn(tx);
      open = false;
      const commit = await client.query('commit');
      if (commit.command === 'ROLLBACK') throw new TransactionAbortedError();
      return result;
    } catch (error) {
      open = false;
      // After a failed COMMIT there is no transaction left and ROLLBACK only warns; if it throws, the
      // connection is unusable and is destroyed instead of returned to the pool.
      await client.query('rollback').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  let closing: Promise<void> | undefined;
  return {
    kind: 'postgres',
    async withWorkspace(workspaceId, fn) {
      assertWorkspaceId(workspaceId);
      return transaction((tx) => enterWorkspace(tx, workspaceId), fn);
    },
    async withSystem(fn) {
      return transaction(undefined, fn);
    },
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}

/** `host:port/database` of a connection URL, without user or password, for messages. */
export function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    const host = parsed.searchParams.get('host') ?? (parsed.hostname || 'localhost');
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username) || 'postgres';
    return `${host}:${parsed.port || '5432'}/${database}`;
  } catch {
    return 'the configured DATABASE_URL (not a valid URL)';
  }
}
