/** The `health` control op: an exposing agent reports how its target did; stored in the workspace's diagnostics. */

import { ConnectError, type HealthReport } from '@private-connect/protocol';
import { findService } from '../store/services.js';
import { recordDiagnostics } from '../store/diagnostics.js';
import type { AgentConnection } from './agent-connection.js';
import { serviceNotFound } from './missing-service.js';

/**
 * Stores one report (checked by parseControlArgs: a malformed one was refused with BAD_REQUEST, the connection
 * up); a service of another workspace answers like a missing one; only the agent exposing the service may report it.
 */
export async function reportHealth(conn: AgentConnection, report: HealthReport): Promise<Record<string, never>> {
  const now = conn.ctx.clock.now();
  await conn.ctx.db.withWorkspace(conn.workspaceId, async (tx) => {
    const row = await findService(tx, report.service);
    if (!row) throw serviceNotFound(report.service);
    if (row.agent_id !== conn.agentId) throw new ConnectError('FORBIDDEN', `only the agent exposing "${report.service}" reports its health`);
    await recordDiagnostics(tx, conn.workspaceId, { serviceId: row.id, agentId: conn.agentId, ok: report.ok, checks: report.checks, now });
  });
  // The dashboard shows it live.
  const health = { ok: report.ok, checkedAt: now.toISOString(), checks: report.checks };
  conn.ctx.events.publish(conn.workspaceId, { event: 'health', data: { name: report.service, health } });
  return {};
}
