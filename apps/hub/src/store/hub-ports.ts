/**
 * Allocations of hub TCP ports (table hub_ports): one port, one service, hub-wide. Allocation reads every
 * workspace's ports, so it runs as the system role and keys each query by workspace by hand.
 */

import type { Queryable } from '../db/index.js';

/** The ports a workspace holds, with the service of each, by port. */
export async function workspaceHubPorts(tx: Queryable, workspaceId: string): Promise<Array<{ port: number; service_name: string }>> {
  return tx.query('select port, service_name from hub_ports where workspace_id = $1 order by port', [workspaceId]);
}

/** What allocateHubPort did: took the port, found it taken (by another hub meanwhile), or found the quota full. */
export type Allocation = 'allocated' | 'taken' | 'quota';

/**
 * Gives `port` to the workspace's service `name` unless the workspace already holds `quota` ports (inside
 * withSystem). A transaction-scoped advisory lock per workspace serialises allocations of one workspace, across
 * hubs sharing the database too, so two at once cannot both pass the count.
 */
export async function allocateHubPort(tx: Queryable, port: number, workspaceId: string, name: string, quota: number): Promise<Allocation> {
  await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`hub_ports:${workspaceId}`]);
  const [held] = await tx.query<{ n: number }>('select count(*)::int as n from hub_ports where workspace_id = $1', [workspaceId]);
  if ((held?.n ?? 0) >= quota) return 'quota';
  const inserted = await tx.query('insert into hub_ports (port, workspace_id, service_name) values ($1, $2, $3) on conflict do nothing returning port', [port, workspaceId, name]);
  return inserted.length > 0 ? 'allocated' : 'taken';
}
