/**
 * An agent inside a Node program: one connection to the hub, any number of exposed services and reached
 * services. Exposed services and reach tunnels are announced again after every reconnect.
 */

import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname as osHostname, networkInterfaces } from 'node:os';
import {
  ConnectError,
  TOKEN_EXPIRY_WARNING_MS,
  formatTarget,
  generateIdentity,
  generateStaticKey,
  keyFingerprint,
  parseReachName,
  parseTarget,
  validateServiceName,
  MAX_DIRECT_CANDIDATES,
  RateBuckets,
  type HealthCheck,
  type Identity,
  type ReachPath,
  type StaticKeyPair,
  type ServiceInfo,
  type ServiceProtocol,
  type Target,
} from '@private-connect/protocol';
import type { BackoffOptions } from './backoff.js';
import { HubConnection, type IncomingOpen } from './hub-connection.js';
import { choosePort, readPorts, savePort } from './port-store.js';
import { duplexPair } from '@private-connect/tunnel';
import { createAccessReporter, createShareFilter, type ShareFilter } from './share-filter.js';
import { monitorTarget } from '../diagnostics/target-monitor.js';
import { KnownAgents } from './known-agents.js';
import { loadOrCreateIdentity, loadOrCreateStaticKey } from './identity-file.js';
import type { HealthMonitor } from '../diagnostics/health-monitor.js';
import { DirectServer, createDirectReporter } from '../direct/direct-server.js';
import { DirectPaths } from '../direct/direct-paths.js';

export const AGENT_VERSION = '0.1.0';

/** Things an agent reports while it runs; the CLI prints them, a program may log them. */
export type AgentEvent =
  | { type: 'connected'; agentId: string; label: string; hubUrl: string }
  | { type: 'disconnected'; code: string; message: string; retryInMs: number }
  /** The hub is shutting down: open streams finish, then the agent reconnects at once (no backoff). */
  | { type: 'goaway'; message: string; openStreams: number }
  | { type: 'fatal'; code: string; message: string }
  | { type: 'exposed'; service: ServiceInfo }
  | { type: 'expose_failed'; name: string; code: string; message: string }
  | { type: 'listening'; name: string; host: string; port: number; wanted?: number; service: ServiceInfo }
  | { type: 'reach_registered'; name: string; tunnelId: string }
  | { type: 'stream_refused'; name: string; code: string; message: string }
  /**
   * This agent refused a stream to its service `name` opened by agent `from` (its label) because the stream's
   * end-to-end offer did not hold: an altered or misdirected handshake, a replayed open, a session it does not hold,
   * or no encryption offered (E2E_* codes). Stale sessions (E2E_SESSION_UNKNOWN) are retried by the opener at once.
   */
  | { type: 'open_rejected'; name: string; from: string; code: string; message: string }
  /**
   * A stream that had opened was reset: a record failed its end-to-end check (E2E_DECRYPT_FAILED, E2E_TRUNCATED),
   * the share was revoked, the other agent went away... `stream` is its id on this agent's connection; `by` is
   * 'local' when this agent found the fault and reset it, 'remote' when the reset came from the other end (the other
   * agent or the hub, which relays the other agent's code). A client closing its connection is no such event.
   */
  | { type: 'stream_reset'; name: string; stream: number; code: string; message: string; by: 'local' | 'remote' }
  | { type: 'target_unreachable'; name: string; target: string; message: string }
  | { type: 'service_taken_over'; name: string }
  /** The agent token stops working within TOKEN_EXPIRY_WARNING_MS (by the hub's clock); rotate it. */
  | { type: 'token_expiring'; expiresAt: string; expiresInMs: number }
  /** The periodic check of an exposed target: sent for the first result and whenever it turns good or bad. */
  | { type: 'health'; name: string; ok: boolean; checks: HealthCheck[] }
  /** First stream to `name`: the exposing agent's identity key is now pinned (trust on first use). */
  | { type: 'agent_pinned'; name: string; agentId: string; label: string; fingerprint: string }
  /** A workspace admin rotated this agent's token; the new one is in use and handed to `onToken` (never in an event). */
  | { type: 'token_rotated'; expiresAt: string; saved: boolean; message?: string }
  /**
   * The path new streams to reached service `name` take now: 'direct' (to the exposing agent's direct port at `via`)
   * or 'relay' (through the hub, `reason` says why not direct). Sent on every change.
   */
  | { type: 'path'; name: string; mode: 'direct' | 'relay'; via?: string; reason?: string }
  /** This agent takes direct connections on `port` (docs/direct.md); sent once, when it first exposes a service. */
  | { type: 'direct_listening'; host: string; port: number }
  /** A connection to the direct port was refused (a stranger, another workspace, an expired or replayed ticket). */
  | { type: 'direct_refused'; remote: string; reason: string };

export interface AgentOptions {
  hubUrl: string;
  /** More hubs of the same deployment, tried in turn when the current one is lost (see HubConnectionOptions). */
  hubUrls?: readonly string[];
  /** Which of several hubs comes first (see HubConnectionOptions): 'random' (default), or 'listed' (hubUrl first). */
  hubOrder?: 'random' | 'listed';
  token: string;
  label?: string;
  /** Where stable ports are remembered; without it, ports are not remembered. */
  portsFile?: string;
  backoff?: BackoffOptions;
  allowInsecure?: boolean;
  ca?: string | Buffer;
  pingIntervalMs?: number;
  idleTimeoutMs?: number;
  onEvent?: (event: AgentEvent) => void;
  /** Receives a token the hub rotated (from the dashboard or API); save it where `token` came from. */
  onToken?: (token: string, expiresAt: string) => void | Promise<void>;
  /**
   * This agent's Ed25519 identity (end-to-end encryption): a key, or the file it is kept in (made on first use).
   * Neither: a new key for the life of this Agent, so agents that reach it re-pin it after every restart.
   */
  identity?: Identity;
  identityFile?: string;
  /**
   * This agent's X25519 static key for end-to-end sessions, or the file it is kept in (made on first use), as the
   * identity. Neither: a new key for the life of this Agent.
   */
  staticKey?: StaticKeyPair;
  staticKeyFile?: string;
  /** Where the identity keys of exposing agents are pinned (known_agents.json); without it, in memory only. */
  knownAgentsFile?: string;
  /** Accept plaintext streams (--no-e2e); a stream is plaintext only when both its agents accept it. Default false. */
  allowPlaintext?: boolean;
  /**
   * Direct paths (docs/direct.md): an exposing agent also listens on a direct port (`port`, default any free one, on
   * `host`, default all IPv4 addresses) and a reaching agent carries streams over it when it can reach it. `false`:
   * neither (--no-direct). Default: on, unless the environment says CONNECT_DIRECT=off.
   */
  direct?: boolean | { port?: number; host?: string };
}

export interface ReachOptions {
  /** Local port; 0 picks any free port. Default: the remembered port, else the service's own port. */
  port?: number;
  /** Local address to listen on (default 127.0.0.1). */
  host?: string;
}

/** Connections and bytes through one service of this agent since it started (local side's view). */
export interface ServiceTraffic {
  connections: number;
  open: number;
  /** Bytes the local side sent into the tunnel. */
  bytesIn: number;
  /** Bytes the tunnel delivered to the local side. */
  bytesOut: number;
}

export interface Reach {
  name: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

interface ExposedService {
  name: string;
  target: Target;
  replace: boolean;
  protocol: ServiceProtocol;
  hubPort: boolean;
}

interface ReachState {
  name: string;
  server: Server;
  port: number;
  /** Local client sockets; each deletes itself on close. */
  sockets: Set<Socket>;
}

export interface ExposeOptions {
  /** Take the name over from another agent of the workspace. */
  replace?: boolean;
  /** What the service speaks (default tcp); 'http' services can get method/path limits in shares. */
  protocol?: ServiceProtocol;
  /** Also give the service a TCP port on the hub, for clients that run no agent. */
  hubPort?: boolean;
  /** How often to check the target and report its health to the hub (default 30 s); 0 turns it off. */
  checkIntervalMs?: number;
}

function exposeArgs(entry: ExposedService) {
  return {
    name: entry.name,
    target: formatTarget(entry.target),
    replace: entry.replace,
    ...(entry.protocol !== 'tcp' ? { protocol: entry.protocol } : {}),
    ...(entry.hubPort ? { hubPort: true } : {}),
  };
}

export class Agent {
  readonly connection: HubConnection;
  /** Exposed services by name, re-announced on reconnect; entries removed by unexpose(). */
  private readonly exposed = new Map<string, ExposedService>();
  /** Reach listeners by name, re-registered on reconnect; entries removed by their close(). */
  private readonly reaches = new Map<string, ReachState>();
  private readonly emit: (event: AgentEvent) => void;
  /** Applies share limits to HTTP services' requests; created on the first stream through a share. */
  private shareFilter: ShareFilter | undefined;
  /** Reports each request through a share to the hub (for the owner's audit log). */
  /** Health checks of exposed targets by service name; stopped and removed by unexpose() and close(). */
  private readonly monitors = new Map<string, HealthMonitor>();
  private readonly accessReports = createAccessReporter((access) => this.connection.request('access', access));
  /**
   * Traffic by service name: closed connections' totals and the sockets open now (each deletes itself on close).
   * One entry per service ever exposed or reached here, kept until the agent is dropped.
   */
  private readonly counters = new Map<string, { connections: number; bytesIn: number; bytesOut: number; live: Set<Socket> }>();

  /** The direct port of an exposing agent, listening once the first service is exposed. */
  private directServer: DirectServer | undefined;
  private directListening: Promise<DirectServer> | undefined;
  private readonly directReports = createDirectReporter((streams) => this.connection.request('direct_report', { streams }));
  /** New connections through each share (by id) to this agent's TCP services, for the share's rate. */
  private readonly shareConnectionRates = new RateBuckets();
  /** Direct paths to the services this agent reaches; undefined with direct paths off. */
  private readonly directPaths: DirectPaths | undefined;
  private readonly direct: { port: number; host: string } | undefined;
  private readonly identity: Identity;

  /** Pinned identity keys of the agents this one reached. */
  readonly knownAgents: KnownAgents;
  /** This agent's identity key fingerprint ("SHA256:..."), as the hub and other agents see it. */
  readonly fingerprint: string;

  constructor(private readonly options: AgentOptions) {
    this.emit = options.onEvent ?? (() => undefined);
    const identity = options.identity ?? (options.identityFile ? loadOrCreateIdentity(options.identityFile) : generateIdentity());
    const staticKey = options.staticKey ?? (options.staticKeyFile ? loadOrCreateStaticKey(options.staticKeyFile) : generateStaticKey());
    this.fingerprint = keyFingerprint(identity.publicKey);
    this.identity = identity;
    this.direct = directSetting(options.direct);
    this.knownAgents = new KnownAgents(options.knownAgentsFile);
    this.connection = new HubConnection({
      hubUrl: options.hubUrl,
      hubUrls: options.hubUrls,
      ...(options.hubOrder ? { hubOrder: options.hubOrder } : {}),
      token: options.token,
      agent: { version: AGENT_VERSION, label: options.label ?? osHostname(), hostname: osHostname(), platform: process.platform },
      backoff: options.backoff,
      allowInsecure: options.allowInsecure,
      ca: options.ca,
      pingIntervalMs: options.pingIntervalMs,
      idleTimeoutMs: options.idleTimeoutMs,
      e2e: {
        identity,
        staticKey,
        allowPlaintext: options.allowPlaintext ?? false,
        verifyPeer: (name, peer) => {
          if (this.knownAgents.check(options.hubUrl, name, peer) === 'new') {
            this.emit({ type: 'agent_pinned', name, agentId: peer.agentId, label: peer.label, fingerprint: keyFingerprint(peer.identityKey) });
          }
        },
      },
    });
    this.connection.onOpen((open) => this.onIncomingOpen(open));
    this.directPaths = this.direct
      ? new DirectPaths({
          identity,
          handshakes: this.connection.handshakes,
          ask: (name) => this.connection.request('direct', { name }),
          changed: (path) => {
            this.emit({ type: 'path', ...path });
            if (this.connection.connected) this.connection.request('path', path).catch(() => undefined);
          },
          streamFailed: (stream, code, message, by) => this.emit({ type: 'stream_reset', name: stream.service, stream: stream.id, code, message, by }),
        })
      : undefined;
    this.connection.on('sessionsEnded', ({ agentId, shareId, reason }) => {
      this.directServer?.cut({ ...(agentId !== undefined ? { agentId } : {}), ...(shareId !== undefined ? { shareId } : {}) }, reason);
      if (agentId !== undefined) this.directPaths?.endWith(agentId);
    });
    this.connection.on('openRejected', ({ service, from, error }) =>
      this.emit({ type: 'open_rejected', name: service, from: from.label || from.agentId, code: error.code, message: error.message }),
    );
    this.connection.on('openRefused', ({ stream, error }) => this.emit({ type: 'stream_refused', name: stream.service, code: error.code, message: error.message }));
    this.connection.on('connected', (welcome) => {
      this.emit({ type: 'connected', agentId: welcome.agentId, label: welcome.label, hubUrl: this.connection.hubUrl });
      if (welcome.tokenExpiresAt !== undefined && welcome.tokenExpiresInMs !== undefined && welcome.tokenExpiresInMs < TOKEN_EXPIRY_WARNING_MS) {
        this.emit({ type: 'token_expiring', expiresAt: welcome.tokenExpiresAt, expiresInMs: welcome.tokenExpiresInMs });
      }
      void this.reannounce();
    });
    this.connection.on('disconnected', ({ error, retryInMs }) =>
      this.emit({ type: 'disconnected', code: error.code, message: error.message, retryInMs }),
    );
    this.connection.on('token', (msg) => {
      // Not saved, the new token still serves this process; a restart falls back on the old one for its grace period.
      Promise.resolve(options.onToken?.(msg.token, msg.expiresAt)).then(
        () => this.emit({ type: 'token_rotated', expiresAt: msg.expiresAt, saved: options.onToken !== undefined }),
        (err: unknown) => this.emit({ type: 'token_rotated', expiresAt: msg.expiresAt, saved: false, message: err instanceof Error ? err.message : String(err) }),
      );
    });
    this.connection.on('streamFailed', ({ stream, error, by }) =>
      this.emit({ type: 'stream_reset', name: stream.service, stream: stream.id, code: error.code, message: error.message, by }),
    );
    this.connection.on('fatal', (error) => this.emit({ type: 'fatal', code: error.code, message: error.message }));
    this.connection.on('goaway', ({ message, openStreams }) => this.emit({ type: 'goaway', message, openStreams }));
    this.connection.on('event', ({ event, name }) => {
      if (event === 'service_offline' && this.exposed.has(name)) this.emit({ type: 'service_taken_over', name });
    });
    this.connection.start();
  }

  /** Exposes `target` (host:port) as `name` in the workspace; resolves once the hub accepted it. */
  async expose(name: string, target: string, options: ExposeOptions = {}): Promise<ServiceInfo> {
    validateServiceName(name);
    const parsed = parseTarget(target);
    const entry: ExposedService = { name, target: parsed, replace: options.replace ?? false, protocol: options.protocol ?? 'tcp', hubPort: options.hubPort ?? false };
    if (this.direct) await this.listenDirect(this.direct);
    const { service } = await this.connection.request('expose', exposeArgs(entry));
    this.exposed.set(name, entry);
    this.emit({ type: 'exposed', service });
    this.watchHealth(entry, options.checkIntervalMs);
    return service;
  }

  /** Checks the target of an exposed service now and then, and reports each result to the hub. */
  private watchHealth(entry: ExposedService, intervalMs?: number): void {
    this.monitors.get(entry.name)?.stop();
    this.monitors.delete(entry.name);
    if (intervalMs === 0) return;
    const monitor = monitorTarget({
      name: entry.name,
      target: entry.target,
      protocol: entry.protocol,
      ...(intervalMs !== undefined ? { intervalMs } : {}),
      connection: this.connection,
      onResult: ({ ok, checks, changed }) => changed && this.emit({ type: 'health', name: entry.name, ok, checks }),
    });
    this.monitors.set(entry.name, monitor);
  }

  /** Stops exposing `name` and removes it from the workspace. */
  async unexpose(name: string): Promise<void> {
    this.exposed.delete(name);
    this.directServer?.cutService(name);
    this.monitors.get(name)?.stop();
    this.monitors.delete(name);
    await this.connection.request('unexpose', { name });
  }

  /** Lists the services of the workspace. */
  async list(): Promise<ServiceInfo[]> {
    return (await this.connection.request('list', {})).services;
  }

  /** Listens locally for `name`: every connection to the returned port is a stream to the service. */
  async reach(name: string, options: ReachOptions = {}): Promise<Reach> {
    parseReachName(name);
    if (this.reaches.has(name)) throw new ConnectError('BAD_REQUEST', `"${name}" is already reached by this agent`);
    const { service } = await this.connection.request('resolve', { name });
    const host = options.host ?? '127.0.0.1';
    const remembered = this.options.portsFile ? (await readPorts(this.options.portsFile))[name] : undefined;
    const choice = await choosePort({ explicit: options.port, remembered, preferred: parseTarget(service.target).port, host });
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const state: ReachState = { name, server, port: 0, sockets: new Set() };
    server.on('connection', (socket) => this.onLocalConnection(state, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: Error & { code?: string }) =>
        reject(err.code === 'EADDRINUSE' ? new ConnectError('PORT_IN_USE', `port ${choice.port} on ${host} was taken meanwhile; try again`) : err),
      );
      server.listen({ port: choice.port, host, exclusive: true }, () => resolve());
    });
    state.port = (server.address() as AddressInfo).port;
    if (this.options.portsFile && (options.port !== undefined ? options.port !== 0 : remembered === undefined)) {
      await savePort(this.options.portsFile, name, state.port);
    }
    this.reaches.set(name, state);
    this.emit({ type: 'listening', name, host, port: state.port, ...(choice.wanted !== undefined ? { wanted: choice.wanted } : {}), service });
    await this.registerReach(state);
    this.directPaths?.watch(name);
    return {
      name,
      host,
      port: state.port,
      close: async () => {
        this.reaches.delete(name);
        this.directPaths?.unwatch(name);
        for (const socket of state.sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  /** Connections and bytes through `name` so far, counted over this agent's local sockets (closed and open). */
  traffic(name: string): ServiceTraffic {
    const counter = this.counters.get(name);
    if (!counter) return { connections: 0, open: 0, bytesIn: 0, bytesOut: 0 };
    let { bytesIn, bytesOut } = counter;
    for (const socket of counter.live) {
      bytesIn += socket.bytesRead;
      bytesOut += socket.bytesWritten;
    }
    return { connections: counter.connections, open: counter.live.size, bytesIn, bytesOut };
  }

  /** Counts a local socket of `name` (a reach client, or the connection to an exposed target) until it closes. */
  private count(name: string, socket: Socket): void {
    let counter = this.counters.get(name);
    if (!counter) this.counters.set(name, (counter = { connections: 0, bytesIn: 0, bytesOut: 0, live: new Set() }));
    const c = counter;
    c.connections++;
    c.live.add(socket);
    socket.once('close', () => {
      c.live.delete(socket);
      c.bytesIn += socket.bytesRead;
      c.bytesOut += socket.bytesWritten;
    });
  }

  /** Stops everything: local listeners, streams, the hub connection. */
  async close(): Promise<void> {
    for (const state of this.reaches.values()) {
      for (const socket of state.sockets) socket.destroy();
      state.server.close();
    }
    this.reaches.clear();
    for (const monitor of this.monitors.values()) monitor.stop();
    this.monitors.clear();
    this.shareFilter?.close();
    this.directPaths?.close();
    this.directReports.stop();
    await this.directServer?.close();
    await this.connection.close();
  }

  /** The path new streams to each reached service take now (direct or through the hub, and why). */
  paths(): ReachPath[] {
    if (this.directPaths) return this.directPaths.paths();
    return [...this.reaches.keys()].map((name) => ({ name, mode: 'relay', reason: 'direct paths are off on this agent (--no-direct)' }));
  }

  /** The port this agent takes direct connections on; undefined before its first expose, or with them off. */
  get directPort(): number | undefined {
    return this.directServer?.port;
  }

  /** Starts the direct port (once) and tells the hub where it is. */
  private listenDirect(direct: { port: number; host: string }): Promise<DirectServer> {
    this.directListening ??= (async () => {
      const server = new DirectServer({
        identity: this.identity,
        handshakes: this.connection.handshakes,
        self: () => this.connection.identity,
        onOpen: (open) => this.onIncomingOpen(open),
        report: (stream) => this.directReports.report(stream),
        refused: (remote, reason) => this.emit({ type: 'direct_refused', remote, reason }),
        rejected: (notice, error) =>
          this.emit({ type: 'open_rejected', name: notice.service, from: notice.from.label || notice.from.agentId, code: error.code, message: error.message }),
      });
      const port = await server.listen(direct.port, direct.host);
      this.directServer = server;
      this.emit({ type: 'direct_listening', host: direct.host, port });
      await this.advertise(server);
      return server;
    })();
    this.directListening.catch(() => (this.directListening = undefined));
    return this.directListening;
  }

  private async advertise(server: DirectServer): Promise<void> {
    const port = server.port;
    if (port === undefined || !this.direct) return;
    try {
      await this.connection.request('advertise', { port, addrs: localAddresses(this.direct.host) });
    } catch {
      // An older hub, or the connection went: the next welcome advertises again.
    }
  }

  private onLocalConnection(state: ReachState, socket: Socket): void {
    state.sockets.add(socket);
    this.count(state.name, socket);
    socket.on('close', () => state.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const direct = this.directPaths?.open(state.name) ?? Promise.resolve(undefined);
    direct.then((stream) => stream ?? this.connection.openStream(state.name)).then(
      (stream) => {
        if (socket.destroyed) return stream.reset('STREAM_CLOSED', 'the local client went away before the stream opened');
        stream.attach(socket);
      },
      (err: unknown) => {
        const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL', String(err));
        this.emit({ type: 'stream_refused', name: state.name, code: error.code, message: error.message });
        // A reset, not a clean end: a client waiting for the server to speak first would take an end for a server
        // that had nothing to say (docs/security.md).
        socket.resetAndDestroy();
      },
    );
  }

  private onIncomingOpen(open: IncomingOpen): void {
    const entry = this.exposed.get(open.notice.service);
    if (!entry) return open.refuse('SERVICE_NOT_FOUND', `Service not found: ${open.notice.service}`);
    const share = open.notice.share;
    if (share?.ratePerMin !== undefined && entry.protocol !== 'http') {
      // The rate of new connections through a share to a TCP service: the hub applies it to the streams it relays,
      // this agent to those that come direct. Relayed ones count here too, so both paths together keep to it.
      const wait = this.shareConnectionRates.take(share.id, share.ratePerMin, Date.now());
      if (wait > 0 && open.path === 'direct') {
        return open.refuse('RATE_LIMITED', `the share "${share.name}" allows ${share.ratePerMin} new connections a minute; try again in ${wait} s`);
      }
    }
    if (share && entry.protocol === 'http') {
      // Through a share: this agent reads the requests and applies the share's limits (the hub cannot).
      this.shareFilter ??= createShareFilter((access) => this.accessReports.report(access));
      open.accept();
      const [inside, outside] = duplexPair();
      open.stream.attach(inside);
      this.shareFilter.serve(outside, { policy: share, service: entry.name, target: entry.target, ...(open.notice.from.ip ? { ip: open.notice.from.ip } : {}) });
      return;
    }
    const socket = netConnect({ host: entry.target.host, port: entry.target.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    socket.pause();
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout after 10 s')), 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      this.count(entry.name, socket);
      open.accept();
      open.stream.attach(socket);
    });
    socket.once('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      if (socket.connecting || !socket.remoteAddress) {
        const target = formatTarget(entry.target);
        const message = `the agent exposing "${entry.name}" could not connect to ${target}: ${err.code ?? err.message}`;
        this.emit({ type: 'target_unreachable', name: entry.name, target, message });
        open.refuse('TARGET_UNREACHABLE', message);
      }
    });
  }

  private async registerReach(state: ReachState): Promise<void> {
    try {
      const { tunnelId } = await this.connection.request('reach', { name: state.name, localPort: state.port });
      this.emit({ type: 'reach_registered', name: state.name, tunnelId });
    } catch (err) {
      const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL');
      // Not fatal: the listener keeps serving; the hub answers each stream open for itself.
      this.emit({ type: 'stream_refused', name: state.name, code: error.code, message: error.message });
    }
  }

  /** After a reconnect: expose every service and register every reach again. */
  private async reannounce(): Promise<void> {
    if (this.directServer) await this.advertise(this.directServer);
    this.directPaths?.retryAll();
    for (const path of this.directPaths?.paths() ?? []) this.connection.request('path', path).catch(() => undefined);
    for (const entry of this.exposed.values()) {
      try {
        const { service } = await this.connection.request('expose', exposeArgs(entry));
        this.emit({ type: 'exposed', service });
      } catch (err) {
        const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL');
        if (error.code === 'HUB_UNREACHABLE' || error.code === 'SHUTTING_DOWN') return;
        this.emit({ type: 'expose_failed', name: entry.name, code: error.code, message: error.message });
      }
    }
    for (const state of this.reaches.values()) await this.registerReach(state);
  }
}

/** The direct setting of AgentOptions.direct, or undefined when direct paths are off. */
function directSetting(option: AgentOptions['direct']): { port: number; host: string } | undefined {
  const on = option ?? process.env.CONNECT_DIRECT !== 'off';
  if (on === false) return undefined;
  const chosen = typeof on === 'object' ? on : {};
  return { port: chosen.port ?? 0, host: chosen.host ?? '0.0.0.0' };
}

/**
 * The addresses to advertise for a direct port on `host`: that address alone, or for all addresses every IPv4
 * address of this machine (loopback last, for agents on the same machine), at most MAX_DIRECT_CANDIDATES.
 */
function localAddresses(host: string): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [host];
  const outside: string[] = [];
  const loopback: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family !== 'IPv4') continue;
      (entry.internal ? loopback : outside).push(entry.address);
    }
  }
  return [...new Set([...outside, ...loopback])].slice(0, MAX_DIRECT_CANDIDATES);
}
