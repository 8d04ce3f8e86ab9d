/**
 * Several hubs on one PostgreSQL, relaying to each other over NATS (NATS_URL). Everything durable stays in the
 * database; what lives here is what is true only while processes run:
 *
 * - presence: which hub routes which service (and has which agents), announced on `<ns>.presence` as it changes
 *   and again to any hub that asks on `<ns>.sync`, so a stream open finds its hub in one in-memory lookup;
 * - liveness: each hub says it is alive on `<ns>.hb` every heartbeat; a hub silent for `deadAfterMs` is dead: its
 *   routes go and the streams through it end (HUB_GONE), and its agents reconnect to another hub by themselves.
 *   An open to another hub that is not answered soon asks NATS whether that hub is still subscribed
 *   (`<ns>.alive.<hub>`): "no responders" means it died (a killed process leaves NATS at once), long before its
 *   heartbeats are missed. Opens caught by a hub's death wait for their service's next route (reroute.ts);
 * - frames: a stream whose two agents sit on different hubs crosses on a HubLink (hub-link.ts);
 * - load: the heartbeat carries the hub's number of agent connections, and a hub above its share asks some idle
 *   agents to move to another hub (rebalance.ts).
 *
 * `<ns>` is `pc.<deployment id>`, the id in the database's `deployment` table: hubs of one deployment meet without
 * configuration, and two deployments on one NATS never see each other.
 */

import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ConnectError, type OpenNotice } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { EventBus, HubEvent } from '../events.js';
import { isAccepting, type Lifecycle } from '../lifecycle.js';
import type { AgentConnection } from '../relay/agent-connection.js';
import type { RelayStats } from '../relay/relay-stats.js';
import type { ServiceTrafficInfo } from '../relay/service-traffic.js';
import type { LocalRoute, RemoteRoute, ServiceRouter } from '../relay/router.js';
import { openPair, type RelayPeer, type StreamEnd, type StreamTag } from '../relay/streams.js';
import { HubLink, type RemoteOpen } from './hub-link.js';
import { createRebalancer, REBALANCE_MS, surplusAgents } from './rebalance.js';
import { awaitNextRoute, REROUTE_WAIT_MS, reopenElsewhere, type RemoteOpenInfo, type RerouteDeps } from './reroute.js';
import { closeHubTunnels } from '../store/tunnels.js';

export const HEARTBEAT_MS = 1_000;
export const DEAD_AFTER_MS = 3_500;
/** How often this hub's per-service traffic is compared and, when it changed, told to the other hubs. */
export const TRAFFIC_REPORT_MS = 2_000;
/** An open to another hub unanswered this long asks NATS whether that hub is still there, and again each PROBE_AGAIN_MS. */
const PROBE_AFTER_MS = 100;
const PROBE_AGAIN_MS = 500;
/** The longest wait for a hub's answer to that question; no answer in time proves nothing (its heartbeats decide). */
const PROBE_TIMEOUT_MS = 1_000;

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
  /** Streams crossing to other hubs now, and frames sent and received over links so far. */
  linkStats(): { streams: number; framesOut: number; framesIn: number };
  /** The links to other hubs, as holders of stream ends. */
  linkPeers(): Iterable<RelayPeer>;
  close(): Promise<void>;
}

type PresenceMessage =
  | { t: 'claim'; hub: string; ws: string; name: string; agentId: string; label: string; plain: boolean; since: number }
  | { t: 'gone'; hub: string; ws: string; name: string }
  | { t: 'agents'; hub: string; ws: string; agentId: string; connections: number }
  | { t: 'revoke'; hub: string; ws: string; agentId: string }
  | { t: 'cut'; hub: string; ws: string; kind: 'share' | 'link'; id: string }
  | { t: 'hubport'; hub: string; ws: string; name: string; port: number; on: boolean }
  | { t: 'traffic'; hub: string; ws: string; services: ServiceTrafficInfo[] }
  /** `hub` lost frames from `peer` (or its own NATS connection): `peer` ends its streams with `hub` and starts a new link. */
  | { t: 'linkreset'; hub: string; ws: string; peer: string };

/** Connects to NATS, learns the deployment id and the other hubs, and starts announcing this hub's routes. */
export async function startCluster(deps: ClusterDeps, options: ClusterOptions): Promise<Cluster> {
  // Loaded here, by hubs in a cluster only: 2 MiB of heap a lone hub does not need.
  const { connect, Empty, RequestError } = await import('@nats-io/transport-node');
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  const deadAfterMs = options.deadAfterMs ?? DEAD_AFTER_MS;
  const { router, log } = deps;
  const [row] = await deps.db.withSystem((tx) => tx.query<{ id: string }>('select id from deployment'));
  if (!row) throw new ConnectError('INTERNAL', 'the database has no deployment id (migration 007 did not run)');
  const ns = `pc.${row.id}`;
  const hubId = options.hubId ?? randomUUID();
  let nc: NatsConnection;
  try {
    nc = await connect({ ...natsServer(options.natsUrl), name: `hub ${hubId}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  } catch (err) {
    throw new ConnectError('INTERNAL', `cannot connect to NATS at ${natsServer(options.natsUrl).servers}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const clog = log.child({ hub: hubId });
  const encoder = new TextEncoder();
  const json = (value: unknown) => encoder.encode(JSON.stringify(value));
  const publish = (subject: string, data: Uint8Array): boolean => {
    if (nc.isClosed()) return false;
    try {
      nc.publish(subject, data);
      return true;
    } catch (err) {
      clog.debug({ err }, 'NATS publish failed');
      return false;
    }
  };

  /** Other hub id → when it was last heard from. */
  const alive = new Map<string, number>();
  /** Other hub id → the agent connections it carries, from its heartbeat; deleted when it is declared dead. */
  const loads = new Map<string, number>();
  const rebalancer = createRebalancer(deps.connections);
  const links = new Map<string, HubLink>();
  /** Hubs heard from lately that NATS says are no longer subscribed (they died): their routes moved. Deleted when
   *  they are heard again, or declared dead. */
  const unreachable = new Set<string>();
  /** What each open sent over a link needs to be sent elsewhere, by its end on the link (gone with the end). */
  const opensSent = new WeakMap<StreamEnd, RemoteOpenInfo>();
  /** The question in flight to NATS of whether a hub is still there, per hub; deleted when answered. */
  const probes = new Map<string, Promise<boolean>>();
  const rerouteDeps: RerouteDeps = { stats: deps.stats, find: (ws, name) => router.get(ws, name) };
  const isUp = (other: string) => alive.has(other) && !unreachable.has(other);
  /** `${ws} ${agentId}` → hub → connections of that agent there. */
  const agentsElsewhere = new Map<string, Map<string, number>>();

  const linkTo = (other: string): HubLink => {
    let link = links.get(other);
    if (!link) {
      const subject = `${ns}.f.${other}.${hubId}`;
      link = new HubLink(other, hubId, { publish: (frame, epoch, seq) => publish(`${subject}.${epoch}.${seq}`, frame), maxPayload: () => nc.info?.max_payload ?? 1024 * 1024 }, deps.stats, clog);
      links.set(other, link);
    }
    return link;
  };

  /** A route to a service that an agent on hub `hub` exposes. */
  const remoteRoute = (m: Extract<PresenceMessage, { t: 'claim' }>): RemoteRoute => ({
    hubId: m.hub,
    since: m.since,
    agentId: m.agentId,
    label: m.label,
    acceptsPlaintext: m.plain,
    get state() {
      return isUp(m.hub) ? 'open' : 'closed';
    },
    acceptStream(opener: RelayPeer, openerId: number, notice: OpenNotice, tag?: StreamTag) {
      if (!isUp(m.hub)) return new ConnectError('SERVICE_OFFLINE', `the agent exposing "${notice.service}" is not connected right now`);
      if (!isAccepting(deps.lifecycle)) return new ConnectError('SHUTTING_DOWN', 'the hub is shutting down; reconnect and try again');
      const link = linkTo(m.hub);
      // The exposing hub counts the stream and its bytes for the service; this one only relays.
      const end = openPair(opener, openerId, link, link.allocate(m.ws, tag), notice, deps.stats, tag).peer;
      opensSent.set(end, tag ? { workspaceId: m.ws, notice, tag } : { workspaceId: m.ws, notice });
      watchOpen(link, end);
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
        awaitNextRoute(rerouteDeps, opener, openerId, tag ? { workspaceId: ws, notice, tag } : { workspaceId: ws, notice }, gone.hubId, deadline);
        return undefined;
      },
    };
    setTimeout(() => router.deleteRemote(ws, name, gone.hubId, route), REROUTE_WAIT_MS).unref();
    return route;
  };

  /**
   * Hub `other` went away: its routes wait for their agents elsewhere (movedRoute), the streams through it end
   * (HUB_GONE), and the opens it had not answered wait for their service's next route. Returns the streams ended.
   */
  const routesGone = (other: string): number => {
    for (const { workspaceId, name, route } of router.deleteHub(other)) router.setRemote(workspaceId, name, movedRoute(workspaceId, name, route));
    const link = links.get(other);
    links.delete(other);
    return (
      link?.drop({
        reopen: (end) => reopenElsewhere(rerouteDeps, end, opensSent.get(end), other),
        code: 'HUB_GONE',
        message: 'the hub of the other agent of this stream went away',
      }) ?? 0
    );
  };

  /** Whether hub `other` is still subscribed on NATS: false only on "no responders" (it left NATS: it died). */
  const probe = (other: string): Promise<boolean> => {
    let answer = probes.get(other);
    if (!answer) {
      answer = nc
        .request(`${ns}.alive.${other}`, Empty, { timeout: PROBE_TIMEOUT_MS })
        .then(
          () => true,
          (err: unknown) => !(err instanceof RequestError && err.isNoResponders()),
        )
        .finally(() => probes.delete(other));
      probes.set(other, answer);
    }
    return answer;
  };

  /** An open sent to another hub over `link`: while it is not answered, that hub's presence on NATS is checked. */
  const watchOpen = (link: HubLink, end: StreamEnd): void => {
    const other = link.hubId;
    const check = (): void => {
      if (end.state !== 'opening' || link.streams.get(end.id) !== end || links.get(other) !== link || nc.isClosed()) return;
      void probe(other).then((present) => {
        if (!present && isUp(other)) {
          unreachable.add(other);
          const cut = routesGone(other);
          clog.warn({ peer: other, streams: cut }, 'hub left NATS (an open to it found no responder): its routes wait for their agents on other hubs');
        } else if (present) {
          setTimeout(check, PROBE_AGAIN_MS).unref();
        }
      });
    };
    setTimeout(check, PROBE_AFTER_MS).unref();
  };

  const heard = (other: string): void => {
    if (other === hubId) return;
    const known = alive.has(other) && !unreachable.delete(other);
    alive.set(other, Date.now());
    // A hub not known (new, or back after a partition): everyone announces again so that it learns the routes.
    if (!known) {
      clog.info({ peer: other }, 'hub joined the cluster');
      publish(`${ns}.sync`, json({ hub: hubId }));
    }
  };

  const announceRoute = (ws: string, name: string, conn: LocalRoute | undefined, since?: number): void => {
    const m: PresenceMessage = conn
      ? { t: 'claim', hub: hubId, ws, name, agentId: conn.agentId, label: conn.label, plain: conn.acceptsPlaintext, since: since ?? router.localSinceOf(ws, name) ?? Date.now() }
      : { t: 'gone', hub: hubId, ws, name };
    publish(`${ns}.presence`, json(m));
  };
  const announceAgent = (ws: string, agentId: string): void => {
    let n = 0;
    for (const c of deps.connections) if (c.workspaceId === ws && c.agentId === agentId && c.state === 'open') n++;
    publish(`${ns}.presence`, json({ t: 'agents', hub: hubId, ws, agentId, connections: n } satisfies PresenceMessage));
  };
  /** What was last told of each workspace's traffic; cleared when a hub asks for everything again. */
  const reportedTraffic = new Map<string, string>();
  const reportTraffic = (): void => {
    for (const ws of deps.stats.services.workspaces()) {
      const services = deps.stats.services.localSnapshot(ws);
      const text = JSON.stringify(services);
      if (reportedTraffic.get(ws) === text) continue;
      reportedTraffic.set(ws, text);
      publish(`${ns}.presence`, json({ t: 'traffic', hub: hubId, ws, services } satisfies PresenceMessage));
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

  const onPresence = (m: PresenceMessage): void => {
    if (m.hub === hubId) return;
    heard(m.hub);
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
      case 'revoke':
        return deps.cutAgent(m.ws, m.agentId);
      case 'cut':
        return deps.cutRevoked(m.kind, m.id);
      case 'traffic':
        return deps.stats.services.setRemote(m.ws, m.hub, m.services);
      case 'hubport':
        return deps.followHubPort(m.port, m.ws, m.name, m.on);
      case 'linkreset': {
        if (m.peer !== hubId) return;
        const link = links.get(m.hub);
        links.delete(m.hub);
        link?.drop();
        return;
      }
    }
  };

  const onOpen = (link: HubLink, id: number, open: RemoteOpen): void => {
    const target = router.getLocal(open.workspaceId, open.notice.service);
    if (!target || target.state !== 'open') {
      return link.refuse(id, 'SERVICE_OFFLINE', `the agent exposing "${open.notice.service}" is not connected right now`);
    }
    const refused = target.acceptStream(link, id, open.notice, open.tag);
    if (refused) link.refuse(id, refused.code, refused.message);
  };

  const declareDead = (other: string): void => {
    alive.delete(other);
    // A hub that left NATS had its routes moved then already.
    const cut = unreachable.delete(other) ? 0 : routesGone(other);
    loads.delete(other);
    deps.stats.services.dropHub(other);
    for (const [key, hubs] of agentsElsewhere) {
      hubs.delete(other);
      if (hubs.size === 0) agentsElsewhere.delete(key);
    }
    // Its tunnels (reach sessions) ended with it; every hub that noticed closes them (once, whoever is first).
    deps.db.withSystem((tx) => closeHubTunnels(tx, { of: [other] })).catch((err: unknown) => clog.error({ err }, 'closing the tunnels of a dead hub failed'));
    clog.warn({ peer: other, streams: cut }, 'hub is gone: its routes are dropped and the streams through it ended');
  };

  const decoder = new TextDecoder();
  const parse = <T>(data: Uint8Array): T | undefined => {
    try {
      return JSON.parse(decoder.decode(data)) as T;
    } catch {
      return undefined;
    }
  };
  const subs: Subscription[] = [
    nc.subscribe(`${ns}.hb`, { callback: (_err, msg) => {
      const hb = parse<{ hub?: unknown; agents?: unknown }>(msg.data);
      if (typeof hb?.hub !== 'string') return;
      heard(hb.hub);
      if (Number.isSafeInteger(hb.agents) && (hb.agents as number) >= 0) loads.set(hb.hub, hb.agents as number);
    } }),
    nc.subscribe(`${ns}.presence`, { callback: (_err, msg) => {
      const m = parse<PresenceMessage>(msg.data);
      if (isPresence(m)) onPresence(m);
      else clog.warn({ bytes: msg.data.length }, 'a presence message of the wrong shape was dropped');
    } }),
    nc.subscribe(`${ns}.events`, { callback: (_err, msg) => {
      const m = parse<{ hub?: unknown; ws?: unknown; event?: HubEvent }>(msg.data);
      if (typeof m?.hub !== 'string' || m.hub === hubId || typeof m.ws !== 'string' || !isForwardedEvent(m.event)) return;
      deps.events.deliver(m.ws, m.event);
    } }),
    // Answers "are you there?" (probe): a hub that died has no subscription, and NATS says "no responders" at once.
    nc.subscribe(`${ns}.alive.${hubId}`, { callback: (_err, msg) => void msg.respond(Empty) }),
    nc.subscribe(`${ns}.sync`, { callback: (_err, msg) => {
      const m = parse<{ hub?: unknown }>(msg.data);
      if (typeof m?.hub === 'string' && m.hub !== hubId) {
        heard(m.hub);
        announceAll();
      }
    } }),
    nc.subscribe(`${ns}.f.${hubId}.*.*.*`, { callback: (_err, msg) => {
      // <ns>.f.<to>.<from>.<epoch>.<seq>: the last three tokens.
      const [from = '', epochText = '', seqText = ''] = msg.subject.split('.').slice(-3);
      const epoch = Number(epochText);
      const seq = Number(seqText);
      if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(seq) || from === hubId) {
        return clog.warn({ subject: msg.subject }, 'a malformed frame from another hub was dropped');
      }
      if (!isUp(from)) heard(from);
      const link = linkTo(from);
      const order = link.sequence(epoch, seq);
      if (order === 'stale') return;
      if (order === 'gap') {
        clog.warn({ peer: from, epoch, seq }, 'frames from another hub were lost: the streams with it ended, and it is asked for a new link');
        publish(`${ns}.presence`, json({ t: 'linkreset', hub: hubId, ws: '', peer: from } satisfies PresenceMessage));
        return;
      }
      const data = msg.data;
      const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      try {
        link.receive(raw, (id, open) => onOpen(link, id, open));
      } catch (err) {
        clog.warn({ err, peer: from }, 'a malformed frame from another hub was dropped');
      }
    } }),
  ];

  // This hub's own NATS connection: frames sent and received meanwhile are lost, so the streams through other hubs
  // end now, and when it is back the other hubs are told to end theirs with this one and the routes are asked again.
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        const cut = [...links.values()].reduce((n, link) => n + link.drop(), 0);
        links.clear();
        clog.warn({ server: status.server, streams: cut }, 'lost NATS: the streams to other hubs ended');
      } else if (status.type === 'reconnect') {
        for (const other of alive.keys()) publish(`${ns}.presence`, json({ t: 'linkreset', hub: hubId, ws: '', peer: other } satisfies PresenceMessage));
        publish(`${ns}.sync`, json({ hub: hubId }));
        announceAll();
        clog.info({ server: status.server }, 'NATS is back: the routes of the other hubs are asked again');
      } else if (status.type === 'slowConsumer') {
        clog.warn({ pending: status.pending }, 'NATS: this hub reads its messages too slowly');
      }
    }
  })();
  router.onLocalChange((ws, name, conn) => announceRoute(ws, name, conn));
  deps.events.onPublish((ws, event) => {
    if (isForwardedEvent(event)) publish(`${ns}.events`, json({ hub: hubId, ws, event }));
  });
  const beat = () => publish(`${ns}.hb`, json({ hub: hubId, agents: rebalancer.carried() }));
  const timer = setInterval(() => {
    beat();
    const now = Date.now();
    for (const [other, at] of alive) if (now - at > deadAfterMs) declareDead(other);
  }, heartbeatMs);
  timer.unref();
  const trafficTimer = setInterval(reportTraffic, options.trafficReportMs ?? TRAFFIC_REPORT_MS);
  trafficTimer.unref();
  // Every hub up must have said what it carries (a hub of an older version does not: then nothing moves).
  const rebalanceTimer = setInterval(() => {
    const up = [...alive.keys()].filter(isUp);
    if (!isAccepting(deps.lifecycle) || up.length === 0 || !up.every((other) => loads.has(other))) return;
    const surplus = surplusAgents(rebalancer.carried(), up.map((other) => loads.get(other)!));
    const moved = surplus > 0 ? rebalancer.move(surplus) : 0;
    if (moved > 0) clog.info({ moved, surplus, peers: Object.fromEntries(up.map((other) => [other, loads.get(other)])) }, 'this hub carries more than its share of agents: some were asked to move (GOAWAY HUB_REBALANCING)');
  }, options.rebalanceMs ?? REBALANCE_MS);
  rebalanceTimer.unref();
  beat();
  publish(`${ns}.sync`, json({ hub: hubId }));
  await nc.flush();
  clog.info({ namespace: ns }, 'hub joined NATS; routes of other hubs arrive as they announce them');
  // Once the hubs alive have been heard from: open tunnels of any other hub are left over from hubs that are gone
  // (a whole cluster restarted, or a hub died with nobody to notice).
  const settle = setTimeout(() => {
    deps.db
      .withSystem((tx) => closeHubTunnels(tx, { except: [hubId, ...alive.keys()] }))
      .then((n) => n > 0 && clog.info({ tunnels: n }, 'closed the tunnels of hubs that are gone'))
      .catch((err: unknown) => clog.error({ err }, 'closing the tunnels of gone hubs failed'));
  }, deadAfterMs + heartbeatMs);
  settle.unref();

  let closing: Promise<void> | undefined;
  return {
    hubId,
    namespace: ns,
    peers: () => [...alive.keys()].filter(isUp),
    remoteAgents(ws) {
      const out = new Set<string>();
      for (const key of agentsElsewhere.keys()) {
        const [w, agentId] = key.split(' ') as [string, string];
        if (w === ws) out.add(agentId);
      }
      return out;
    },
    agentChanged: announceAgent,
    revokeAgent(ws, agentId) {
      publish(`${ns}.presence`, json({ t: 'revoke', hub: hubId, ws, agentId } satisfies PresenceMessage));
    },
    hubPort(port, ws, name, on) {
      publish(`${ns}.presence`, json({ t: 'hubport', hub: hubId, ws, name, port, on } satisfies PresenceMessage));
    },
    revoked(kind, id) {
      publish(`${ns}.presence`, json({ t: 'cut', hub: hubId, ws: '', kind, id } satisfies PresenceMessage));
    },
    linkStats() {
      let streams = 0;
      let framesOut = 0;
      let framesIn = 0;
      for (const link of links.values()) {
        streams += link.streams.size;
        framesOut += link.framesOut;
        framesIn += link.framesIn;
      }
      return { streams, framesOut, framesIn };
    },
    linkPeers: () => links.values(),
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        clearInterval(trafficTimer);
        clearInterval(rebalanceTimer);
        clearTimeout(settle);
        router.onLocalChange(() => undefined);
        deps.events.onPublish(undefined);
        for (const other of [...links.keys()]) links.get(other)!.drop();
        links.clear();
        for (const sub of subs) sub.unsubscribe();
        // Routes of this hub go at once for the others (the agents' teardown announced most of them already).
        for (const { workspaceId, name } of router.locals()) announceRoute(workspaceId, name, undefined);
        await nc.flush().catch(() => undefined);
        await nc.close();
      })();
      return closing;
    },
  };
}

/** The shape of a presence message; anything else on the subject is dropped. */
function isPresence(value: unknown): value is PresenceMessage {
  const m = value as Record<string, unknown> | null | undefined;
  if (!m || typeof m.hub !== 'string' || typeof m.ws !== 'string') return false;
  switch (m.t) {
    case 'claim':
      return typeof m.name === 'string' && typeof m.agentId === 'string' && typeof m.label === 'string' && typeof m.plain === 'boolean' && Number.isFinite(m.since);
    case 'gone':
      return typeof m.name === 'string';
    case 'agents':
      return typeof m.agentId === 'string' && Number.isInteger(m.connections);
    case 'revoke':
      return typeof m.agentId === 'string';
    case 'cut':
      return (m.kind === 'share' || m.kind === 'link') && typeof m.id === 'string';
    case 'linkreset':
      return typeof m.peer === 'string';
    case 'traffic':
      return Array.isArray(m.services) && m.services.length <= 10_000 && m.services.every(isTrafficInfo);
    case 'hubport':
      return typeof m.name === 'string' && Number.isInteger(m.port) && (m.port as number) > 0 && (m.port as number) < 65536 && typeof m.on === 'boolean';
    default:
      return false;
  }
}

/** NATS_URL as the client takes it: the server, and the user and password written in the URL (nats://user:pass@host). */
export function natsServer(natsUrl: string): { servers: string; user?: string; pass?: string } {
  if (!natsUrl.includes('://')) return { servers: natsUrl };
  const url = new URL(natsUrl);
  const servers = `${url.protocol}//${url.host}`;
  if (!url.username) return { servers };
  return { servers, user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
}

/** Events that travel to the other hubs' dashboards: agents, services and health. Traffic stats stay per hub. */
function isForwardedEvent(value: unknown): value is HubEvent {
  const e = value as { event?: unknown; data?: unknown } | null | undefined;
  return !!e && (e.event === 'agent' || e.event === 'service' || e.event === 'health') && typeof e.data === 'object' && e.data !== null;
}

function isTrafficInfo(value: unknown): value is ServiceTrafficInfo {
  const s = value as Record<string, unknown> | null;
  return !!s && typeof s.name === 'string' && [s.streams, s.encryptedStreams, s.bytesIn, s.bytesOut].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
}
