/**
 * Several hubs on one PostgreSQL, relaying to each other over NATS (NATS_URL). Everything durable stays in the
 * database; what lives here is what is true only while processes run, in four parts that this module composes:
 *
 * - presence (presence.ts): which hub routes which service and has which agents, announced on `<ns>.presence` as it
 *   changes and again to any hub that asks on `<ns>.sync`, so a stream open finds its hub in one in-memory lookup;
 * - liveness (liveness.ts): heartbeats on `<ns>.hb`; a hub silent for deadAfterMs, or that NATS says left, is gone:
 *   its routes wait for their agents on other hubs (reroute.ts), the streams through it end (HUB_GONE);
 * - remote streams (remote-streams.ts): a stream whose two agents sit on different hubs crosses on a HubLink
 *   (hub-link.ts);
 * - broadcasts (broadcasts.ts): revocations, hub ports and the dashboards' live events, to every hub.
 *
 * And load: the heartbeat carries the hub's number of agent connections, and a hub above its share asks some idle
 * agents to move to another hub (rebalance.ts). All of them talk to NATS through one ClusterBus (bus.ts).
 *
 * `<ns>` is `pc.<deployment id>`, the id in the database's `deployment` table: hubs of one deployment meet without
 * configuration, and two deployments on one NATS never see each other.
 */

import { randomUUID } from 'node:crypto';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { EventBus } from '../events.js';
import { isAccepting, type Lifecycle } from '../lifecycle.js';
import type { AgentConnection, DirectGrant, SessionsEnd } from '../relay/agent-connection.js';
import type { RelayStats } from '../relay/relay-stats.js';
import type { ServiceRouter } from '../relay/router.js';
import { endSessions } from '../relay/cuts.js';
import { applyDirectGrant } from '../relay/direct.js';
import type { RelayPeer } from '../relay/streams.js';
import { deploymentId } from '../store/deployment.js';
import { closeHubTunnels } from '../store/tunnels.js';
import { createBroadcasts } from './broadcasts.js';
import { connectBus } from './bus.js';
import { DEAD_AFTER_MS, HEARTBEAT_MS, startLiveness } from './liveness.js';
import { isPresence } from './messages.js';
import { createPresence } from './presence.js';
import { createRebalancer, REBALANCE_MS, surplusAgents } from './rebalance.js';
import { createRemoteStreams } from './remote-streams.js';
import type { RerouteDeps } from './reroute.js';

export interface ClusterOptions {
  natsUrl: string;
  /** This hub's id (default: a new random one). */
  hubId?: string;
  heartbeatMs?: number;
  deadAfterMs?: number;
  trafficReportMs?: number;
  /** How often this hub compares its agents with its share of the cluster's (default REBALANCE_MS). */
  rebalanceMs?: number;
}

export interface ClusterDeps {
  db: Database;
  router: ServiceRouter;
  stats: RelayStats;
  log: Logger;
  connections: Set<AgentConnection>;
  lifecycle: Lifecycle;
  /** The dashboards' live events: agent and service changes and health reports go to every hub's subscribers. */
  events: EventBus;
  /** Ends this hub's connections of an agent revoked on another hub. */
  cutAgent(workspaceId: string, agentId: string): void;
  /** Ends this hub's streams through a share or public link revoked on another hub. */
  cutRevoked(kind: 'share' | 'link', id: string): void;
  /** Another hub allocated (`on`) or released a hub TCP port. */
  followHubPort(port: number, workspaceId: string, name: string, on: boolean): void;
}

export interface Cluster {
  readonly hubId: string;
  /** The deployment's subject namespace. */
  readonly namespace: string;
  /** The other hubs heard from within deadAfterMs. */
  peers(): string[];
  /** Agents of `workspaceId` connected to other hubs. */
  remoteAgents(workspaceId: string): Set<string>;
  /** An agent connected here, or left: tells the other hubs. */
  agentChanged(workspaceId: string, agentId: string): void;
  /** An agent was revoked: the other hubs end its connections too. */
  revokeAgent(workspaceId: string, agentId: string): void;
  /** A share or public link was revoked: the other hubs cut its streams too. */
  revoked(kind: 'share' | 'link', id: string): void;
  /** A hub TCP port was allocated or released here: the other hubs listen on it too, or stop. */
  hubPort(port: number, workspaceId: string, name: string, on: boolean): void;
  /** End-to-end sessions ended here: the other hubs send end_sessions to their agents too. */
  endSessions(end: SessionsEnd): void;
  /** A direct ticket was handed out here for an exposing agent on another hub (relay/direct.ts). */
  directGrant(grant: DirectGrant): void;
  /** Streams crossing to other hubs now, and frames sent and received over links so far. */
  linkStats(): { streams: number; framesOut: number; framesIn: number };
  /** The links to other hubs, as holders of stream ends. */
  linkPeers(): Iterable<RelayPeer>;
  close(): Promise<void>;
}

/** Connects to NATS, learns the deployment id and the other hubs, and starts announcing this hub's routes. */
export async function startCluster(deps: ClusterDeps, options: ClusterOptions): Promise<Cluster> {
  const deadAfterMs = options.deadAfterMs ?? DEAD_AFTER_MS;
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  const ns = `pc.${await deploymentId(deps.db)}`;
  const hubId = options.hubId ?? randomUUID();
  const log = deps.log.child({ hub: hubId });
  const bus = await connectBus(options.natsUrl, ns, hubId, log);
  const { router } = deps;
  const rebalancer = createRebalancer(deps.connections);
  const reroute: RerouteDeps = { stats: deps.stats, find: (ws, name) => router.get(ws, name) };

  // The parts below are created in this order, with no await between them: liveness's events reach the others only
  // from NATS callbacks, which run after all of them exist.
  /** Hub `other` went away: its routes wait for their agents elsewhere, the streams through it end. Returns those. */
  const hubGone = (other: string): number => {
    presence.hubGone(other);
    return streams.hubGone(other);
  };
  const liveness = startLiveness(
    bus,
    // A hub that does not listen yet (or drains) does not say what it carries: no agent is sent to it.
    { heartbeatMs, deadAfterMs, carried: () => (deps.lifecycle.state === 'ready' ? rebalancer.carried() : undefined) },
    {
      // A hub not known (new, or back after a partition): everyone announces again so that it learns the routes.
      joined: () => presence.ask(),
      unreachable: (other) => log.warn({ peer: other, streams: hubGone(other) }, 'hub left NATS (an open to it found no responder): its routes wait for their agents on other hubs'),
      dead(other, movedAlready) {
        // A hub that left NATS had its routes moved then already.
        const cut = movedAlready ? 0 : hubGone(other);
        presence.forget(other);
        // Its tunnels (reach sessions) ended with it; every hub that noticed closes them (once, whoever is first).
        closeHubTunnels(deps.db, { of: [other] }).catch((err: unknown) => log.error({ err }, 'closing the tunnels of a dead hub failed'));
        log.warn({ peer: other, streams: cut }, 'hub is gone: its routes are dropped and the streams through it ended');
      },
    },
    log,
  );
  const streams = createRemoteStreams({ bus, router, stats: deps.stats, liveness, reroute, log });
  const presence = createPresence({ bus, router, stats: deps.stats, connections: deps.connections, lifecycle: deps.lifecycle, liveness, streams, reroute, log, trafficReportMs: options.trafficReportMs });
  const broadcasts = createBroadcasts({
    bus,
    events: deps.events,
    cutAgent: deps.cutAgent,
    cutRevoked: deps.cutRevoked,
    followHubPort: deps.followHubPort,
    endSessions: (end) => void endSessions(deps.connections, end),
    directGrant: (grant) => void applyDirectGrant(deps.connections, grant),
  });

  // One subject for what hubs tell each other, each message to the part it is for.
  bus.listen('presence', (m, msg) => {
    if (!isPresence(m)) return log.warn({ bytes: msg.data.length }, 'a presence message of the wrong shape was dropped');
    if (m.hub === hubId) return;
    liveness.heard(m.hub);
    switch (m.t) {
      case 'claim':
      case 'gone':
      case 'agents':
      case 'traffic':
        return presence.receive(m);
      case 'revoke':
      case 'cut':
      case 'endsessions':
      case 'directgrant':
      case 'hubport':
        return broadcasts.receive(m);
      case 'linkreset':
        return streams.receive(m);
    }
  });

  // This hub's own NATS connection: frames sent and received meanwhile are lost, so the streams through other hubs
  // end now, and when it is back the other hubs are told to end theirs with this one and the routes are asked again.
  void (async () => {
    for await (const status of bus.status()) {
      if (status.type === 'disconnect') {
        log.warn({ server: status.server, streams: streams.dropAll() }, 'lost NATS: the streams to other hubs ended');
      } else if (status.type === 'reconnect') {
        streams.askNewLinks(liveness.known());
        presence.ask();
        presence.announceAll();
        log.info({ server: status.server }, 'NATS is back: the routes of the other hubs are asked again');
      } else if (status.type === 'slowConsumer') {
        log.warn({ pending: status.pending }, 'NATS: this hub reads its messages too slowly');
      }
    }
  })();

  // Every hub up must have said what it carries (a hub of an older version does not: then nothing moves).
  const rebalanceTimer = setInterval(() => {
    const loads = liveness.loadsUp();
    if (!isAccepting(deps.lifecycle) || !loads || loads.size === 0) return;
    const surplus = surplusAgents(rebalancer.carried(), [...loads.values()]);
    const moved = surplus > 0 ? rebalancer.move(surplus) : 0;
    if (moved > 0) log.info({ moved, surplus, peers: Object.fromEntries(loads) }, 'this hub carries more than its share of agents: some were asked to move (GOAWAY HUB_REBALANCING)');
  }, options.rebalanceMs ?? REBALANCE_MS);
  rebalanceTimer.unref();

  liveness.beat();
  presence.ask();
  await bus.flush();
  log.info({ namespace: ns }, 'hub joined NATS; routes of other hubs arrive as they announce them');
  // Once the hubs alive have been heard from: open tunnels of any other hub are left over from hubs that are gone
  // (a whole cluster restarted, or a hub died with nobody to notice).
  const settle = setTimeout(() => {
    closeHubTunnels(deps.db, { except: [hubId, ...liveness.known()] })
      .then((n) => n > 0 && log.info({ tunnels: n }, 'closed the tunnels of hubs that are gone'))
      .catch((err: unknown) => log.error({ err }, 'closing the tunnels of gone hubs failed'));
  }, deadAfterMs + heartbeatMs);
  settle.unref();

  let closing: Promise<void> | undefined;
  return {
    hubId,
    namespace: ns,
    peers: liveness.peers,
    remoteAgents: presence.remoteAgents,
    agentChanged: presence.agentChanged,
    revokeAgent: broadcasts.revokeAgent,
    hubPort: broadcasts.hubPort,
    revoked: broadcasts.revoked,
    endSessions: broadcasts.endSessions,
    directGrant: broadcasts.directGrant,
    linkStats: streams.stats,
    linkPeers: streams.peers,
    close() {
      closing ??= (async () => {
        clearInterval(rebalanceTimer);
        clearTimeout(settle);
        liveness.close();
        presence.close();
        broadcasts.close();
        streams.dropAll();
        bus.unsubscribeAll();
        presence.withdraw();
        await bus.close();
      })();
      return closing;
    },
  };
}
