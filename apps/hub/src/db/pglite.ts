/** The embedded database: PGlite (PostgreSQL in WASM, in this process), in memory or persisted to a folder. */

import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { Transaction } from '@electric-sql/pglite';
import { assertWorkspaceId, enterWorkspace, TransactionAbortedError, type Database, type Queryable } from './database.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { seedFromTemplate, TEMPLATE_DIR } from './pglite-template.js';

export interface PgliteOptions {
  /** Template copied into a new data folder instead of running initdb (pglite-template.ts); default: the build's. */
  templateDir?: string;
}

/**
 * Opens PGlite persisted to dataDir (created if missing, and locked with `<dataDir>/hub.lock` while open), or in
 * memory when dataDir is undefined. Values come back as node-postgres returns them: bigint as string, bytea as Buffer.
 * PGlite is one session: transactions run one at a time, so never open a second transaction from inside fn.
 */
export async function openPglite(dataDir?: string, options: PgliteOptions = {}): Promise<Database> {
  let lock: DataDirLock | undefined;
  if (dataDir !== undefined) {
    dataDir = resolve(dataDir);
    await mkdir(dataDir, { recursive: true });
    lock = await lockDataDir(dataDir);
  }
  let PGlite: typeof import('@electric-sql/pglite').PGlite;
  let PGliteAbortedError: typeof import('@electric-sql/pglite').TransactionAbortedError;
  let pglite: InstanceType<typeof PGlite>;
  try {
    if (dataDir !== undefined) await seedFromTemplate(dataDir, options.templateDir ?? TEMPLATE_DIR);
    setFlagsFromString(LIFTOFF_ONLY);
    // Loaded here, not by every hub: a hub on PostgreSQL does not need it.
    ({ PGlite, TransactionAbortedError: PGliteAbortedError } = await import('@electric-sql/pglite'));
    pglite = await PGlite.create({ dataDir, parsers: PARSERS, startParams: [...PGlite.defaultStartParams, ...SETTINGS.flatMap((s) => ['-c', s])] });
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

/**
 * PostgreSQL settings on top of PGlite's own. PGlite zeroes its whole shared memory when it starts, so all of it is
 * resident from the first second: with the defaults (shared_buffers 128MB, lock and process tables for 100
 * connections) that was 146 MB of the hub's RSS (12 MB now). The hub's tables are small and pages that leave the buffers stay
 * in the OS page cache; PGlite is one session, so four connection slots are plenty (at least
 * superuser_reserved_connections + 1); docs/BENCHMARKS.md, "Memory".
 */
const SETTINGS = ['shared_buffers=8MB', 'max_connections=4'];

/**
 * V8 flag set before PGlite compiles its WASM: baseline (Liftoff) code only. By default V8 recompiles hot WASM
 * functions with TurboFan in the background, and that code and the memory of compiling it stayed resident: 70-100
 * MiB of an idle hub's RSS. The price is CPU per database row: ~10% (bench/src/audit-bench.ts, every path
 * distinct: 77 -> 87 µs per audited request). Process-wide, set on every open (idempotent).
 */
const LIFTOFF_ONLY = '--liftoff-only';

// Match node-postgres so store code sees the same values on both databases.
const PARSERS = {
  [20 /* int8 */]: (text: string) => text,
  [17 /* bytea */]: (text: string) => Buffer.from(text.slice(2), 'hex'), // bytea_output = hex: "\x0a0b..."
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
