/** What shares, public links and hub ports need from the hub. */

import type { Clock } from '../clock.js';
import type { HubConfig } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { AgentConnection, SessionsEnd } from '../relay/agent-connection.js';
import type { LocalPeer } from '../relay/local-peer.js';
import type { RelayStats } from '../relay/relay-stats.js';
import type { ServiceRouter } from '../relay/router.js';
import type { AccessLog } from './access-log.js';
import type { RateBuckets } from '@private-connect/protocol';

export interface SharingContext {
  db: Database;
  clock: Clock;
  config: HubConfig;
  log: Logger;
  router: ServiceRouter;
  stats: RelayStats;
  /** Agent connections past their handshake (to cut streams of a revoked share). */
  connections: Set<AgentConnection>;
  /** The hub's own stream opener (public links, hub ports). */
  local: LocalPeer;
  /** Batched audit events for accesses. */
  access: AccessLog;
  /** Per share / link rate buckets (in this hub process). */
  rates: RateBuckets;
  /** The client address of a request: the socket's peer, or what a trusted proxy (TRUST_PROXY) says. */
  clientIp(req: import('node:http').IncomingMessage): string | undefined;
  /** The other hubs, when this hub is one of several: a revocation here cuts their streams too. */
  cluster?: {
    revoked(kind: 'share' | 'link', id: string): void;
    /** End-to-end sessions through a share revoked here end: the other hubs tell their agents too. */
    endSessions(end: SessionsEnd): void;
    /** This hub allocated (`on`) or released a hub TCP port: the other hubs listen on it too, or stop. */
    hubPort(port: number, workspaceId: string, name: string, on: boolean): void;
  };
}
