/** What every agent connection shares: database, router, stats, the set of live connections. */

import { ConnectError, type OpenNotice } from '@private-connect/protocol';
import type { Clock } from '../clock.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { findService } from '../store/services.js';
import { notFound } from '../auth/guard.js';
import type { AgentConnection } from './agent-connection.js';
import type { ServiceRouter } from './router.js';
import type { RelayStats } from './relay-stats.js';
import type { SharingContext } from '../sharing/context.js';
import type { EventBus } from '../events.js';
import type { Lifecycle } from '../lifecycle.js';

export interface RelayContext {
  /** This hub process (random at start): recorded with the tunnels opened here. */
  hubId: string;
  db: Database;
  clock: Clock;
  router: ServiceRouter;
  log: Logger;
  stats: RelayStats;
  /** Connections past their handshake. Added by the handshake, deleted by the connection's teardown. */
  connections: Set<AgentConnection>;
  /** Shares, public links and hub ports. */
  sharing: SharingContext;
  /** Agent and service changes for the dashboards of the connection's workspace (GET /v1/events). */
  events: EventBus;
  /** Starting, ready or draining: a draining hub takes no new streams (lifecycle.ts). */
  lifecycle: Lifecycle;
  /** The other hubs, when this hub is one of several (NATS_URL): told when an agent connects or leaves. */
  cluster?: { agentChanged(workspaceId: string, agentId: string): void };
  handshakeTimeoutMs: number;
  maxPendingControl: number;
  /** The error for a stream open to a name that has no live route. */
  lookupMissingService(workspaceId: string, name: string): Promise<ConnectError>;
  /** Opens `conn`'s stream `id` to `share/service`, a service of another workspace through a joined share; or
   *  refuses it. The open answer (or OPEN_ERROR) reaches the agent either way. */
  openShared(conn: AgentConnection, id: number, name: string, handshake: Pick<OpenNotice, 'e2e' | 'plain'>): Promise<void>;
}

/** A service that is not routed is either offline (known in this workspace) or not found: never more. */
export async function lookupMissingService(db: Database, workspaceId: string, name: string): Promise<ConnectError> {
  const row = await db.withWorkspace(workspaceId, (tx) => findService(tx, name));
  if (!row) return serviceNotFound(name);
  return new ConnectError('SERVICE_OFFLINE', `"${name}" is exposed by agent "${row.agent_label}", which is not connected right now`);
}

/** The one answer for a name that does not exist in the caller's workspace, whoever else may have it. */
export function serviceNotFound(name: string): ConnectError {
  return notFound('service', name);
}
