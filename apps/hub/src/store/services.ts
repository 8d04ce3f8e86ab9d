/** Services: the durable record of what is exposed (name → agent + target). Who is online lives in the router. */

import { ConnectError, formatTarget, type ServiceInfo, type ServiceProtocol, type Target } from '@private-connect/protocol';
import type { Queryable } from '../db/index.js';

export interface ServiceRow {
  id: string;
  name: string;
  agent_id: string;
  agent_label: string;
  target_host: string;
  target_port: number;
  protocol: ServiceProtocol;
  /** The service's port on the hub, when it has one. */
  hub_port: number | null;
}

const SELECT = `select s.id, s.name, s.agent_id, a.label as agent_label, s.target_host, s.target_port, s.protocol,
                       (select p.port from hub_ports p where p.workspace_id = s.workspace_id and p.service_name = s.name) as hub_port
                  from services s join agents a on a.id = s.agent_id`;

/** Finds a service of the current workspace by name. */
export async function findService(tx: Queryable, name: string): Promise<ServiceRow | undefined> {
  const [row] = await tx.query<ServiceRow>(`${SELECT} where s.name = $1`, [name]);
  return row;
}

/** Lists the current workspace's services. */
export async function listServices(tx: Queryable): Promise<ServiceRow[]> {
  return tx.query<ServiceRow>(`${SELECT} order by s.name`);
}

/**
 * Creates or updates the service `name` for `agentId`. A name held by another agent is refused with
 * SERVICE_NAME_TAKEN unless `replace` is set.
 */
export async function upsertService(
  tx: Queryable,
  workspaceId: string,
  agentId: string,
  name: string,
  target: Target,
  replace: boolean,
  protocol: ServiceProtocol = 'tcp',
): Promise<{ row: ServiceRow; created: boolean; changed: boolean }> {
  const existing = await findService(tx, name);
  if (existing && existing.agent_id !== agentId && !replace) {
    throw new ConnectError(
      'SERVICE_NAME_TAKEN',
      `"${name}" is already exposed by agent "${existing.agent_label}"; choose another name or pass --replace`,
    );
  }
  if (!existing) {
    await tx.query(
      `insert into services (workspace_id, agent_id, name, target_host, target_port, protocol, last_online_at)
       values ($1, $2, $3, $4, $5, $6, now())`,
      [workspaceId, agentId, name, target.host, target.port, protocol],
    );
  } else {
    await tx.query(
      `update services set agent_id = $2, target_host = $3, target_port = $4, protocol = $5, updated_at = now(), last_online_at = now()
        where id = $1`,
      [existing.id, agentId, target.host, target.port, protocol],
    );
  }
  const row = (await findService(tx, name))!;
  const changed = !existing || existing.agent_id !== agentId || existing.target_host !== target.host || existing.target_port !== target.port || existing.protocol !== protocol;
  return { row, created: !existing, changed };
}

/** Deletes the service `name` if `agentId` owns it; returns whether it did. */
export async function deleteService(tx: Queryable, agentId: string, name: string): Promise<ServiceRow | undefined> {
  const existing = await findService(tx, name);
  if (!existing || existing.agent_id !== agentId) return undefined;
  await tx.query('delete from services where id = $1', [existing.id]);
  return existing;
}

/** Records that the services `names` of `agentId` were online until now (the agent disconnected). */
export async function markServicesOffline(tx: Queryable, agentId: string, names: string[]): Promise<void> {
  await tx.query('update services set last_online_at = now() where agent_id = $1 and name = any($2::text[])', [agentId, names]);
}

/** The wire shape of a service. */
export function toServiceInfo(row: ServiceRow, online: boolean): ServiceInfo {
  return {
    id: row.id,
    name: row.name,
    target: formatTarget({ host: row.target_host, port: row.target_port }),
    agentId: row.agent_id,
    agentLabel: row.agent_label,
    online,
    protocol: row.protocol,
    ...(row.hub_port !== null && row.hub_port !== undefined ? { hubPort: row.hub_port } : {}),
  };
}
