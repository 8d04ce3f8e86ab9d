/** The embedded database: PGlite (PostgreSQL in WASM, in this process), in memory or persisted to a folder. */

import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite, TransactionAbortedError as PGliteAbortedError, types, type Transaction } from '@electric-sql/pglite';
import { assertWorkspaceId, enterWorkspace, TransactionAbortedError, type Database, type Queryable } from './database.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';

/**
 * Opens PGlite persisted to dataDir (created if missing, and locked with `<dataDir>/hub.lock` while open), or in
 * memory when dataDir is undefined. Values come back as node-postgres returns them: bigint as string, bytea as Buffer.
 * PGlite is one session: transactions run one at a time, so never open a second transaction from inside fn.
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  let lock: DataDirLock | undefined;
  if (dataDir !== undefined) {
    dataDir = resolve(dataDir);
    await mkdir(dataDir, { recursive: true });
    lock = await lockDataDir(dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({ dataDir, parsers: PARSERS });
  } catch (error) {
    await lock?.release();
    throw error;
  }

  async function transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    try {
      return await pglite.transaction(fn);
    } catch (error) {
      if (error instanceof PGliteAbortedError) throw new TransactionAbortedError();
      throw error;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    kind: 'pglite',
    async withWorkspace(workspaceId, fn) {
      assertWorkspaceId(workspaceId);
      return transaction(async (raw) => {
        const tx = wrap(raw);
        await enterWorkspace(tx, workspaceId);
        return fn(tx);
      });
    },
    async withSystem(fn) {
      return transaction((raw) => fn(wrap(raw)));
    },
    close() {
      closing ??= (async () => {
        try {
          await pglite.close();
        } finally {
          await lock?.release();
        }
      })();
      return closing;
    },
  };
}

// Match node-postgres so store code sees the same values on both databases.
const PARSERS = {
  [types.INT8]: (text: string) => text,
  [types.BYTEA]: (text: string) => Buffer.from(text.slice(2), 'hex'), // bytea_output = hex: "\x0a0b..."
};

function wrap(tx: Transaction): Queryable {
  return {
    async query<T>(sql: string, params?: unknown[]) {
      return (await tx.query<T>(sql, params)).rows;
    },
    async exec(sql: string) {
      await tx.exec(sql);
    },
  };
}
