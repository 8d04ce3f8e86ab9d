/**
 * What each hub carries: which services it routes, which agents it has, and their traffic. A hub announces its own
 * on `<ns>.presence` as they change, and all of them again to any hub that asks on `<ns>.sync`; the other hubs'
 * routes go into the router as RemoteRoutes, so a stream open finds its hub in one in-memory lookup. When two hubs
 * route one name, the later claim wins (ties by hub id), like a takeover on one hub. The routes of a hub that went
 * away wait REROUTE_WAIT_MS for their agents to come back on another hub (reroute.ts).
 */

import { ConnectError } from '@private-connect/protocol';
import type { Logger } from '../logger.js';
import { isAccepting, type Lifecycle } from '../lifecycle.js';
import type { AgentConnection } from '../relay/agent-connection.js';
import type { RelayStats } from '../relay/relay-stats.js';
import type { LocalRoute, RemoteRoute, ServiceRouter } from '../relay/router.js';
import type { ClusterBus } from './bus.js';
import type { Liveness } from './liveness.js';
import type { PresenceMessage, PresenceOf } from './messages.js';
import type { RemoteStreams } from './remote-streams.js';
import { awaitNextRoute, REROUTE_WAIT_MS, type RerouteDeps } from './reroute.js';

/** How often this hub's per-service traffic is compared and, when it changed, told to the other hubs. */
export const TRAFFIC_REPORT_MS = 2_000;

export interface Presence {
  /** Another hub's route, agent count or traffic. */
  receive(m: PresenceOf<'claim' | 'gone' | 'agents' | 'traffic'>): void;
  /** Asks every other hub to announce everything it carries (`<ns>.sync`). */
  ask(): void;
  /** Announces everything this hub carries. */
  announceAll(): void;
  /** An agent connected here, or left: tells the other hubs how many connections it has here now. */
  agentChanged(workspaceId: string, agentId: string): void;
  /** Agents of `workspaceId` connected to other hubs. */
  remoteAgents(workspaceId: string): Set<string>;
  /** Hub `other` went away: its routes wait for their agents on other hubs (REROUTE_WAIT_MS), then go. */
  hubGone(other: string): void;
  /** Hub `other` is dead: its agents and traffic are forgotten. */
  forget(other: string): void;
  /** Stops announcing; withdraw() then tells the other hubs that this hub's routes are gone. */
  close(): void;
  withdraw(): void;
}

export interface PresenceDeps {
  bus: ClusterBus;
  router: ServiceRouter;
  stats: RelayStats;
  connections: Set<AgentConnection>;
  lifecycle: Lifecycle;
  liveness: Liveness;
  streams: RemoteStreams;
  reroute: RerouteDeps;
  log: Logger;
  trafficReportMs?: number;
}

export function createPresence(deps: PresenceDeps): Presence {
  const { bus, router, liveness } = deps;
  const hubId = bus.hubId;
  /** `${ws} ${agentId}` → hub → connections of that agent there; an entry goes when its last hub has none. */
  const agentsElsewhere = new Map<string, Map<string, number>>();
  /** What was last told of each workspace's traffic; cleared when a hub asks for everything again. */
  const reportedTraffic = new Map<string, string>();
  const tell = (m: PresenceMessage) => void bus.send('presence', m);

  /** A route to a service that an agent on hub `m.hub` exposes. */
  const remoteRoute = (m: PresenceOf<'claim'>): RemoteRoute => ({
    hubId: m.hub,
    since: m.since,
    agentId: m.agentId,
    label: m.label,
    acceptsPlaintext: m.plain,
    get state() {
      return liveness.isUp(m.hub) ? 'open' : 'closed';
    },
    acceptStream(opener, openerId, notice, tag) {
      if (!liveness.isUp(m.hub)) return new ConnectError('SERVICE_OFFLINE', `the agent exposing "${notice.service}" is not connected right now`);
      if (!isAccepting(deps.lifecycle)) return new ConnectError('SHUTTING_DOWN', 'the hub is shutting down; reconnect and try again');
      deps.streams.open(m.hub, m.ws, opener, openerId, notice, tag);
      return undefined;
    },
  });

  /**
   * The route of a service whose hub went away, kept for REROUTE_WAIT_MS: opens to it wait for the service's next
   * route (its agent reconnecting to a hub that is up), which replaces this one as soon as it is announced.
   */
  const movedRoute = (ws: string, name: string, gone: RemoteRoute): RemoteRoute => {
    const deadline = performance.now() + REROUTE_WAIT_MS;
    const route: RemoteRoute = {
      hubId: gone.hubId,
      since: gone.since,
      agentId: gone.agentId,
      label: gone.label,
      acceptsPlaintext: gone.acceptsPlaintext,
      state: 'open',
      acceptStream(opener, openerId, notice, tag) {
        if (!isAccepting(deps.lifecycle)) return new ConnectError('SHUTTING_DOWN', 'the hub is shutting down; reconnect and try again');
        awaitNextRoute(deps.reroute, opener, openerId, tag ? { workspaceId: ws, notice, tag } : { workspaceId: ws, notice }, gone.hubId, deadline);
        return undefined;
      },
    };
    setTimeout(() => router.deleteRemote(ws, name, gone.hubId, route), REROUTE_WAIT_MS).unref();
    return route;
  };

  const announceRoute = (ws: string, name: string, conn: LocalRoute | undefined, since?: number): void => {
    tell(
      conn
        ? { t: 'claim', hub: hubId, ws, name, agentId: conn.agentId, label: conn.label, plain: conn.acceptsPlaintext, since: since ?? router.localSinceOf(ws, name) ?? Date.now() }
        : { t: 'gone', hub: hubId, ws, name },
    );
  };
  const announceAgent = (ws: string, agentId: string): void => {
    let n = 0;
    for (const c of deps.connections) if (c.workspaceId === ws && c.agentId === agentId && c.state === 'open') n++;
    tell({ t: 'agents', hub: hubId, ws, agentId, connections: n });
  };
  const reportTraffic = (): void => {
    for (const ws of deps.stats.services.workspaces()) {
      const services = deps.stats.services.localSnapshot(ws);
      const text = JSON.stringify(services);
      if (reportedTraffic.get(ws) === text) continue;
      reportedTraffic.set(ws, text);
      tell({ t: 'traffic', hub: hubId, ws, services });
    }
  };
  const announceAll = (): void => {
    reportedTraffic.clear();
    reportTraffic();
    for (const { workspaceId, name, conn, since } of router.locals()) announceRoute(workspaceId, name, conn, since);
    const agents = new Set<string>();
    for (const c of deps.connections) if (c.state === 'open') agents.add(`${c.workspaceId} ${c.agentId}`);
    for (const key of agents) {
      const [ws, agentId] = key.split(' ') as [string, string];
      announceAgent(ws, agentId);
    }
  };

  bus.listen('sync', (value) => {
    const m = value as { hub?: unknown } | undefined;
    if (typeof m?.hub === 'string' && m.hub !== hubId) {
      liveness.heard(m.hub);
      announceAll();
    }
  });
  router.onLocalChange((ws, name, conn) => announceRoute(ws, name, conn));
  const trafficTimer = setInterval(reportTraffic, deps.trafficReportMs ?? TRAFFIC_REPORT_MS);
  trafficTimer.unref();

  return {
    receive(m) {
      switch (m.t) {
        case 'claim': {
          const localSince = router.localSinceOf(m.ws, m.name);
          if (localSince !== undefined) {
            // Both hubs route the name: the later claim wins (ties by hub id), like a takeover on one hub.
            if (localSince > m.since || (localSince === m.since && hubId > m.hub)) return announceRoute(m.ws, m.name, router.getLocal(m.ws, m.name));
            const local = router.getLocal(m.ws, m.name)!;
            router.delete(m.ws, m.name, local);
            local.exposed.delete(m.name);
            local.sendControl({ t: 'event', event: 'service_offline', name: m.name });
          }
          return router.setRemote(m.ws, m.name, remoteRoute(m));
        }
        case 'gone':
          return router.deleteRemote(m.ws, m.name, m.hub);
        case 'agents': {
          const key = `${m.ws} ${m.agentId}`;
          let hubs = agentsElsewhere.get(key);
          if (m.connections > 0) {
            if (!hubs) agentsElsewhere.set(key, (hubs = new Map()));
            hubs.set(m.hub, m.connections);
          } else if (hubs) {
            hubs.delete(m.hub);
            if (hubs.size === 0) agentsElsewhere.delete(key);
          }
          return;
        }
        case 'traffic':
          return deps.stats.services.setRemote(m.ws, m.hub, m.services);
      }
    },
    ask: () => void bus.send('sync', { hub: hubId }),
    announceAll,
    agentChanged: announceAgent,
    remoteAgents(ws) {
      const out = new Set<string>();
      for (const key of agentsElsewhere.keys()) {
        const [w, agentId] = key.split(' ') as [string, string];
        if (w === ws) out.add(agentId);
      }
      return out;
    },
    hubGone(other) {
      for (const { workspaceId, name, route } of router.deleteHub(other)) router.setRemote(workspaceId, name, movedRoute(workspaceId, name, route));
    },
    forget(other) {
      deps.stats.services.dropHub(other);
      for (const [key, hubs] of agentsElsewhere) {
        hubs.delete(other);
        if (hubs.size === 0) agentsElsewhere.delete(key);
      }
    },
    close() {
      clearInterval(trafficTimer);
      router.onLocalChange(() => undefined);
    },
    withdraw() {
      // Routes of this hub go at once for the others (the agents' teardown announced most of them already).
      for (const { workspaceId, name } of router.locals()) announceRoute(workspaceId, name, undefined);
    },
  };
}
