/** A fresh, migrated database per test: in-memory PGlite, or a new PostgreSQL database when TEST_DATABASE=postgres. */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/index.js';

/** Which database the db-backed tests run on, for test names. */
export const dbKind: 'pglite' | 'postgres' = process.env.TEST_DATABASE === 'postgres' ? 'postgres' : 'pglite';

/** Server the postgres tests create their databases on. */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  db: Database;
  /** URL of the test database (postgres only). */
  url?: string;
  /** Closes the database; on postgres also drops it. */
  dispose(): Promise<void>;
}

/** Creates an empty database with all migrations applied. Call dispose() in a finally or after() hook. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (dbKind === 'pglite') {
    const db = await openDatabase({});
    return { db, dispose: () => db.close() };
  }
  const name = `pc_test_${randomBytes(8).toString('hex')}`;
  await admin(`create database ${name}`);
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  let db: Database;
  try {
    db = await openDatabase({ databaseUrl: url.href });
  } catch (error) {
    await admin(`drop database if exists ${name} with (force)`);
    throw error;
  }
  return {
    db,
    url: url.href,
    async dispose() {
      try {
        await db.close();
      } finally {
        await admin(`drop database if exists ${name} with (force)`);
      }
    },
  };
}

/** Runs one statement as the PostgreSQL superuser of TEST_POSTGRES_URL (create/drop databases, roles). */
export async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** An assert.rejects validator: a PostgreSQL error with this SQLSTATE code and a message matching `message`. */
export function isPgError(code: string, message: RegExp) {
  return (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, code, String(error));
    assert.match((error as Error).message, message);
    return true;
  };
}
