/** The PostgreSQL server of the tests of several hubs: a database of their own per run, dropped at the end. */

import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A role allowed to create databases (TEST_POSTGRES_URL; trust auth on this machine). */
export const ADMIN_URL = process.env.TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/** Runs `sql` on `url` (default ADMIN_URL) and returns its rows. */
export async function query<T>(sql: string, url = ADMIN_URL): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Creates an empty database `<prefix>_<random>`; `drop()` removes it (connections and all). */
export async function scratchDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await query(`create database ${name}`);
  return {
    url: Object.assign(new URL(ADMIN_URL), { pathname: `/${name}` }).href,
    drop: async () => void (await query(`drop database if exists ${name} with (force)`)),
  };
}
