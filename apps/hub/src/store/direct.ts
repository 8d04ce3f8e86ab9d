/**
 * Direct paths in the database (migration 014): what an agent's live connection advertised (its direct port and
 * candidate addresses, read by whichever hub answers `direct` for one of its services), and a workspace's setting.
 */

import type { DirectCandidate } from '@private-connect/protocol';
import type { Database, Queryable } from '../db/index.js';
import { withBootstrap } from './system.js';

/** What an exposing agent advertised, as `direct` reads it: undefined when it advertised nothing (or is offline). */
export interface Advertised {
  port: number;
  candidates: DirectCandidate[];
}

/** Records what connection `connId` of agent `agentId` (current workspace) advertised; it replaces the last. */
export async function storeAdvertised(tx: Queryable, agentId: string, connId: string, advertised: Advertised): Promise<void> {
  await tx.query(`update agents set direct_port = $2, direct_addrs = $3::jsonb, direct_conn = $4 where id = $1`, [
    agentId,
    advertised.port,
    JSON.stringify(advertised.candidates),
    connId,
  ]);
}

/** Forgets what connection `connId` advertised (it closed); a newer connection's advertisement stays. */
export async function clearAdvertised(tx: Queryable, agentId: string, connId: string): Promise<void> {
  await tx.query(`update agents set direct_port = null, direct_addrs = null, direct_conn = null where id = $1 and direct_conn = $2`, [agentId, connId]);
}

/** A hub alone starting: what connections of its previous run advertised is stale (every workspace's). */
export async function clearAllAdvertised(db: Database): Promise<void> {
  await withBootstrap(db, (tx) => tx.query('update agents set direct_port = null, direct_addrs = null, direct_conn = null where direct_conn is not null'));
}

/** What agent `agentId` of the current workspace advertised (and on which connection), with its identity key. */
export async function findAdvertised(tx: Queryable, agentId: string): Promise<{ advertised?: Advertised; conn?: string; identityKey: string | null } | undefined> {
  const [row] = await tx.query<{ direct_port: number | null; direct_addrs: unknown; direct_conn: string | null; identity_key: string | null }>(
    `select direct_port, direct_addrs, direct_conn, identity_key from agents where id = $1 and revoked_at is null`,
    [agentId],
  );
  if (!row) return undefined;
  const addrs = typeof row.direct_addrs === 'string' ? (JSON.parse(row.direct_addrs) as unknown) : row.direct_addrs;
  const advertised = row.direct_port === null ? undefined : { port: row.direct_port, candidates: Array.isArray(addrs) ? (addrs as DirectCandidate[]) : [] };
  return { ...(advertised ? { advertised } : {}), ...(row.direct_conn ? { conn: row.direct_conn } : {}), identityKey: row.identity_key };
}

/** Whether the current workspace hands out direct paths (on unless an admin turned them off). */
export async function directPathsOn(tx: Queryable): Promise<boolean> {
  const [row] = await tx.query<{ direct_paths: boolean }>(`select direct_paths from workspaces`);
  return row?.direct_paths ?? false;
}

/** Turns the current workspace's direct paths on or off; returns the setting before. */
export async function setDirectPaths(tx: Queryable, on: boolean): Promise<boolean | undefined> {
  const [before] = await tx.query<{ direct_paths: boolean }>(`select direct_paths from workspaces for update`);
  if (!before) return undefined;
  await tx.query(`update workspaces set direct_paths = $1`, [on]);
  return before.direct_paths;
}
