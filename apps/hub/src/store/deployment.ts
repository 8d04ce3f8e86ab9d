/** The deployment's id (table deployment, migration 007): one row, shared by every hub on the database. */

import { ConnectError } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import { withBootstrap } from './system.js';

/** The id every hub of this database shares (the cluster's NATS subject namespace). */
export async function deploymentId(db: Database): Promise<string> {
  const [row] = await withBootstrap(db, (tx) => tx.query<{ id: string }>('select id from deployment'));
  if (!row) throw new ConnectError('INTERNAL', 'the database has no deployment id (migration 007 did not run)');
  return row.id;
}
