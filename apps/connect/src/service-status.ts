/** Where a service stands for `connect ls` and `connect reach`: online, failing its health checks, or offline, and why. */

import type { ServiceHealth } from '@private-connect/protocol';

export type ServiceStatus = 'online' | 'failing' | 'offline';

/**
 * `failing` when its agent is connected and the agent's latest health report failed (the reason names the checks
 * that failed, e.g. "TCP connect ECONNREFUSED 127.0.0.1:5432"); `offline` when its agent is not connected.
 */
export function serviceStatus(service: { online: boolean; agentLabel: string; health?: ServiceHealth }): { status: ServiceStatus; reason?: string } {
  if (!service.online) return { status: 'offline', reason: `agent ${service.agentLabel} is not connected` };
  const failed = service.health && !service.health.ok ? service.health.checks.filter((c) => !c.ok) : [];
  if (failed.length === 0) return { status: 'online' };
  return { status: 'failing', reason: failed.map((c) => `${c.name.toUpperCase()} ${c.detail}`).join('; ') };
}
