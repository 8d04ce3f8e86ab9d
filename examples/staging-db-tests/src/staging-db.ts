/** The staging database of the test suite, reached through Private Connect: one reach() port, pg pools on it. */

import pg from 'pg';
import { reach, type Reached, type ReachServiceOptions } from '@private-connect/sdk';

export interface StagingDbOptions extends ReachServiceOptions {
  /** The name the database is exposed as (`connect expose db:5432 --name staging-db`). Default staging-db. */
  service?: string;
}

export interface StagingDb {
  /** The local port every connection to the database goes through. */
  port: number;
  reached: Reached;
  /** A pool of connections through the port; host and port are filled in, the rest (user, database, ...) is yours. */
  pool(config?: Omit<pg.PoolConfig, 'host' | 'port'>): pg.Pool;
  /** Ends every pool made here that is still open, then closes the port and stops the agent. */
  close(): Promise<void>;
}

/** Reaches the staging database (resolves once its local port listens). */
export async function reachStagingDb(options: StagingDbOptions = {}): Promise<StagingDb> {
  const { service = 'staging-db', ...reachOptions } = options;
  const reached = await reach(service, reachOptions);
  /** Every pool handed out; ended (and cleared) by close(). */
  const pools = new Set<pg.Pool>();
  return {
    port: reached.port,
    reached,
    pool(config = {}) {
      const pool = new pg.Pool({ max: 4, ...config, host: reached.host, port: reached.port });
      // The server may end an idle connection (a restart, DROP DATABASE ... WITH (FORCE), an idle timeout): pg
      // reports that as an 'error' event on the pool, which would crash the process without a listener. The pool
      // drops that connection and opens a new one for the next query.
      pool.on('error', (err) => console.warn(`staging-db: an idle connection ended: ${err.message}`));
      pools.add(pool);
      return pool;
    },
    async close() {
      try {
        await Promise.all([...pools].filter((pool) => !pool.ending && !pool.ended).map((pool) => pool.end()));
        pools.clear();
      } finally {
        await reached.close();
      }
    },
  };
}
