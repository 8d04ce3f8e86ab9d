/** An exposing agent's periodic check of one target, reported to the hub with the `health` control op. */

import { HEALTH_CHECK_INTERVAL_MS, type HealthCheck, type ServiceProtocol, type Target } from '@private-connect/protocol';
import type { HubConnection } from '../agent/hub-connection.js';
import { checkTarget } from './check-target.js';
import { startHealthMonitor, type HealthMonitor } from './health-monitor.js';

export interface TargetMonitorOptions {
  name: string;
  target: Target;
  protocol?: ServiceProtocol;
  /** Default HEALTH_CHECK_INTERVAL_MS (30 s). */
  intervalMs?: number;
  connection: HubConnection;
  /** Each result; `changed` is true for the first one and whenever `ok` flips. */
  onResult?(result: { ok: boolean; checks: HealthCheck[]; changed: boolean }): void;
  onError?(err: unknown): void;
}

/** Checks the target now and every interval; reports while connected to the hub (results meanwhile are dropped). */
export function monitorTarget(options: TargetMonitorOptions): HealthMonitor {
  let last: boolean | undefined;
  return startHealthMonitor({
    intervalMs: options.intervalMs ?? HEALTH_CHECK_INTERVAL_MS,
    check: () => checkTarget(options.target, { protocol: options.protocol }),
    report: async (checks) => {
      const ok = checks.every((c) => c.ok);
      options.onResult?.({ ok, checks, changed: ok !== last });
      last = ok;
      if (options.connection.connected) await options.connection.request('health', { service: options.name, ok, checks });
    },
    onError: options.onError,
  });
}
