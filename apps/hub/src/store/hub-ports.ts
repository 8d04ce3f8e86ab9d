/**
 * Allocations of hub TCP ports (table hub_ports): one port, one service, hub-wide. What a workspace does with its
 * own ports (find, count, allocate, release) runs inside withWorkspace, under the table's RLS policy; only the two
 * questions about every workspace's ports (which to listen on at start, which are free) are cross-workspace.
 */

import type { Database } from '../db/index.js';
import { withCrossWorkspace } from './system.js';

/** An allocated port and the service it is for. */
export interface HubPortRow {
  port: number;
  workspace_id: string;
  service_name: string;
}

/** Every allocated port of every workspace, by port: what a starting hub listens on. */
export async function listAllHubPorts(db: Database): Promise<HubPortRow[]> {
  return withCrossWorkspace(db, (tx) => tx.query<HubPortRow>('select port, workspace_id, service_name from hub_ports order by port'));
}

/** The ports between first and last (inclusive) allocated to any workspace: those an allocation skips. */
export async function takenHubPorts(db: Database, first: number, last: number): Promise<Set<number>> {
  const rows = await withCrossWorkspace(db, (tx) => tx.query<{ port: number }>('select port from hub_ports where port between $1 and $2', [first, last]));
  return new Set(rows.map((row) => row.port));
}

/** The port of the workspace's service `name`, or undefined when it has none. */
export async function findHubPort(db: Database, workspaceId: string, name: string): Promise<number | undefined> {
  const [row] = await db.withWorkspace(workspaceId, (tx) => tx.query<{ port: number }>('select port from hub_ports where service_name = $1', [name]));
  return row?.port;
}

/** True when `port` is still allocated to the workspace's service `name`. */
export async function hubPortAllocated(db: Database, workspaceId: string, port: number, name: string): Promise<boolean> {
  const rows = await db.withWorkspace(workspaceId, (tx) => tx.query('select 1 from hub_ports where port = $1 and service_name = $2', [port, name]));
  return rows.length > 0;
}

/** The ports a workspace holds, with the service of each, by port. */
export async function workspaceHubPorts(db: Database, workspaceId: string): Promise<Array<{ port: number; service_name: string }>> {
  return db.withWorkspace(workspaceId, (tx) => tx.query('select port, service_name from hub_ports order by port'));
}

/** What allocateHubPort did: took the port, found it taken (by another hub meanwhile), or found the quota full. */
export type Allocation = 'allocated' | 'taken' | 'quota';

/**
 * Gives `port` to the workspace's service `name` unless the workspace already holds `quota` ports. A
 * transaction-scoped advisory lock per workspace serialises allocations of one workspace, across hubs sharing the
 * database too, so two at once cannot both pass the count. The count sees the workspace's rows only (RLS); a port
 * another workspace holds is a primary key conflict all the same, which `on conflict do nothing` answers as taken.
 */
export async function allocateHubPort(db: Database, port: number, workspaceId: string, name: string, quota: number): Promise<Allocation> {
  return db.withWorkspace(workspaceId, async (tx) => {
    await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`hub_ports:${workspaceId}`]);
    const [held] = await tx.query<{ n: number }>('select count(*)::int as n from hub_ports');
    if ((held?.n ?? 0) >= quota) return 'quota';
    const inserted = await tx.query('insert into hub_ports (port, workspace_id, service_name) values ($1, $2, $3) on conflict do nothing returning port', [port, workspaceId, name]);
    return inserted.length > 0 ? 'allocated' : 'taken';
  });
}

/** Frees the port(s) of the workspace's service `name`; returns the ports freed. */
export async function releaseHubPort(db: Database, workspaceId: string, name: string): Promise<number[]> {
  const rows = await db.withWorkspace(workspaceId, (tx) => tx.query<{ port: number }>('delete from hub_ports where service_name = $1 returning port', [name]));
  return rows.map((row) => row.port);
}
