/** Tunnels: active reach sessions (an agent listening locally for a service), opened and closed by agents. */

import type { Database, Queryable } from '../db/index.js';
import { withBootstrap, withCrossWorkspace } from './system.js';

export async function openTunnel(
  tx: Queryable,
  workspaceId: string,
  serviceId: string,
  agentId: string,
  localPort: number,
  connectionId: string,
  hubId: string,
): Promise<string> {
  const [row] = await tx.query<{ id: string }>(
    `insert into tunnels (workspace_id, service_id, agent_id, local_port, connection_id, hub_id) values ($1, $2, $3, $4, $5, $6) returning id`,
    [workspaceId, serviceId, agentId, localPort, connectionId, hubId],
  );
  return row!.id;
}

/**
 * Closes the open tunnels of hubs that are gone: those of `hubs.of`, or (with `except`) of every hub but those.
 * Every workspace's tunnels, hence withCrossWorkspace.
 */
export async function closeHubTunnels(db: Database, hubs: { of: string[] } | { except: string[] }): Promise<number> {
  const rows = await withCrossWorkspace(db, (tx) =>
    'of' in hubs
      ? tx.query('update tunnels set closed_at = now() where hub_id = any($1::uuid[]) and closed_at is null returning id', [hubs.of])
      : tx.query('update tunnels set closed_at = now() where (hub_id is null or hub_id <> all($1::uuid[])) and closed_at is null returning id', [hubs.except]),
  );
  return rows.length;
}

/** Closes every open tunnel: a lone hub starting (no other hub on the database) knows none of them is live. */
export async function closeAllTunnels(db: Database): Promise<void> {
  await withBootstrap(db, (tx) => tx.query('update tunnels set closed_at = now() where closed_at is null'));
}

/** Closes one tunnel of the given connection; returns whether it was open. */
export async function closeTunnel(tx: Queryable, tunnelId: string, connectionId: string): Promise<boolean> {
  const rows = await tx.query(
    'update tunnels set closed_at = now() where id = $1 and connection_id = $2 and closed_at is null returning id',
    [tunnelId, connectionId],
  );
  return rows.length > 0;
}

/** Closes every tunnel of a connection that went away. */
export async function closeConnectionTunnels(tx: Queryable, connectionId: string): Promise<number> {
  const rows = await tx.query('update tunnels set closed_at = now() where connection_id = $1 and closed_at is null returning id', [
    connectionId,
  ]);
  return rows.length;
}
