/** What the /v1 route files need of the hub: the database, the relay's live state, events and the cluster. */

import type { Database } from '../db/index.js';
import type { Clock } from '../clock.js';
import type { ServiceRouter } from '../relay/router.js';
import type { AgentConnection } from '../relay/agent-connection.js';
import type { ServiceTraffic } from '../relay/service-traffic.js';
import type { EventBus } from '../events.js';
import type { Cluster } from '../cluster/cluster.js';
import type { AuthDeps } from '../auth/principal.js';

/** Built once in hub.ts and passed to every register*Routes. */
export interface ApiDeps extends AuthDeps {
  router: ServiceRouter;
  connections: Set<AgentConnection>;
  /** Per-service open streams and bytes (GET /v1/services). */
  traffic: ServiceTraffic;
  agentTokenTtlMs: number;
  /** Live events of each workspace (GET /v1/events). */
  events: EventBus;
  /** The other hubs, when this hub is one of several (NATS_URL). */
  cluster?: Pick<Cluster, 'remoteAgents' | 'revokeAgent'>;
}
