/** Diagnostics: the health reports exposing agents send about their services, with a bounded history. */

import type { HealthCheck, ServiceHealth } from '@private-connect/protocol';
import type { Queryable } from '../db/index.js';

/** Reports kept per service; older ones are deleted as new ones arrive. */
export const DIAGNOSTICS_PER_SERVICE = 100;
/** No report older than this is kept. */
export const DIAGNOSTICS_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

interface DiagnosticsRow {
  service_id: string;
  checked_at: Date | string;
  ok: boolean;
  checks: HealthCheck[] | string;
}

/** Stores one report of `serviceId` and prunes that service's history (newest DIAGNOSTICS_PER_SERVICE, 7 days). */
export async function recordDiagnostics(
  tx: Queryable,
  workspaceId: string,
  report: { serviceId: string; agentId: string; ok: boolean; checks: HealthCheck[]; now: Date },
): Promise<void> {
  await tx.query(
    `insert into diagnostics (workspace_id, service_id, agent_id, checked_at, ok, checks) values ($1, $2, $3, $4, $5, $6::jsonb)`,
    [workspaceId, report.serviceId, report.agentId, report.now, report.ok, JSON.stringify(report.checks)],
  );
  await tx.query(
    `delete from diagnostics
      where service_id = $1
        and (checked_at < $2
             or id not in (select id from diagnostics where service_id = $1 order by id desc limit $3))`,
    [report.serviceId, new Date(report.now.getTime() - DIAGNOSTICS_MAX_AGE_MS), DIAGNOSTICS_PER_SERVICE],
  );
}

/** The newest `limit` reports of a service of the current workspace, newest first. */
export async function serviceDiagnostics(tx: Queryable, serviceId: string, limit: number): Promise<ServiceHealth[]> {
  const rows = await tx.query<DiagnosticsRow>(
    `select service_id, checked_at, ok, checks from diagnostics where service_id = $1 order by id desc limit $2`,
    [serviceId, limit],
  );
  return rows.map(toHealth);
}

/** The latest report of every service of the current workspace that has one, by service id. */
export async function latestDiagnostics(tx: Queryable): Promise<Map<string, ServiceHealth>> {
  const rows = await tx.query<DiagnosticsRow>(
    `select distinct on (service_id) service_id, checked_at, ok, checks from diagnostics order by service_id, id desc`,
  );
  return new Map(rows.map((row) => [String(row.service_id), toHealth(row)]));
}

function toHealth(row: DiagnosticsRow): ServiceHealth {
  const checks = typeof row.checks === 'string' ? (JSON.parse(row.checks) as HealthCheck[]) : row.checks;
  return { ok: row.ok, checkedAt: new Date(row.checked_at).toISOString(), checks };
}

/** A service of the current workspace by id (its name for the answer), or undefined. */
export async function findServiceById(tx: Queryable, id: string): Promise<{ id: string; name: string } | undefined> {
  const [row] = await tx.query<{ id: string; name: string }>('select id, name from services where id = $1', [id]);
  return row ? { id: String(row.id), name: row.name } : undefined;
}
