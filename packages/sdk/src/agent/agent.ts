/**
 * An agent inside a Node program: one connection to the hub, any number of exposed services and reached
 * services. Exposed services and reach tunnels are announced again after every reconnect.
 */

import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import {
  ConnectError,
  TOKEN_EXPIRY_WARNING_MS,
  formatTarget,
  parseReachName,
  parseTarget,
  validateServiceName,
  type ServiceInfo,
  type ServiceProtocol,
  type Target,
} from '@private-connect/protocol';
import type { BackoffOptions } from './backoff.js';
import { HubConnection, type IncomingOpen } from './hub-connection.js';
import { choosePort, readPorts, savePort } from './port-store.js';
import { duplexPair } from './duplex-pair.js';
import { createAccessReporter, createShareFilter, type ShareFilter } from './share-filter.js';

export const AGENT_VERSION = '0.1.0';

/** Things an agent reports while it runs; the CLI prints them, a program may log them. */
export type AgentEvent =
  | { type: 'connected'; agentId: string; label: string }
  | { type: 'disconnected'; code: string; message: string; retryInMs: number }
  | { type: 'fatal'; code: string; message: string }
  | { type: 'exposed'; service: ServiceInfo }
  | { type: 'expose_failed'; name: string; code: string; message: string }
  | { type: 'listening'; name: string; host: string; port: number; wanted?: number; service: ServiceInfo }
  | { type: 'reach_registered'; name: string; tunnelId: string }
  | { type: 'stream_refused'; name: string; code: string; message: string }
  | { type: 'target_unreachable'; name: string; target: string; message: string }
  | { type: 'service_taken_over'; name: string }
  /** The agent token stops working within TOKEN_EXPIRY_WARNING_MS (by the hub's clock); rotate it. */
  | { type: 'token_expiring'; expiresAt: string; expiresInMs: number };

export interface AgentOptions {
  hubUrl: string;
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
}

export interface ReachOptions {
  /** Local port; 0 picks any free port. Default: the remembered port, else the service's own port. */
  port?: number;
  /** Local address to listen on (default 127.0.0.1). */
  host?: string;
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
  private readonly accessReports = createAccessReporter((access) => this.connection.request('access', access));

  constructor(private readonly options: AgentOptions) {
    this.emit = options.onEvent ?? (() => undefined);
    this.connection = new HubConnection({
      hubUrl: options.hubUrl,
      token: options.token,
      agent: { version: AGENT_VERSION, label: options.label ?? osHostname(), hostname: osHostname(), platform: process.platform },
      backoff: options.backoff,
      allowInsecure: options.allowInsecure,
      ca: options.ca,
      pingIntervalMs: options.pingIntervalMs,
      idleTimeoutMs: options.idleTimeoutMs,
    });
    this.connection.onOpen((open) => this.onIncomingOpen(open));
    this.connection.on('connected', (welcome) => {
      this.emit({ type: 'connected', agentId: welcome.agentId, label: welcome.label });
      if (welcome.tokenExpiresAt !== undefined && welcome.tokenExpiresInMs !== undefined && welcome.tokenExpiresInMs < TOKEN_EXPIRY_WARNING_MS) {
        this.emit({ type: 'token_expiring', expiresAt: welcome.tokenExpiresAt, expiresInMs: welcome.tokenExpiresInMs });
      }
      void this.reannounce();
    });
    this.connection.on('disconnected', ({ error, retryInMs }) =>
      this.emit({ type: 'disconnected', code: error.code, message: error.message, retryInMs }),
    );
    this.connection.on('fatal', (error) => this.emit({ type: 'fatal', code: error.code, message: error.message }));
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
    const { service } = await this.connection.request('expose', exposeArgs(entry));
    this.exposed.set(name, entry);
    this.emit({ type: 'exposed', service });
    return service;
  }

  /** Stops exposing `name` and removes it from the workspace. */
  async unexpose(name: string): Promise<void> {
    this.exposed.delete(name);
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
    return {
      name,
      host,
      port: state.port,
      close: async () => {
        this.reaches.delete(name);
        for (const socket of state.sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  /** Stops everything: local listeners, streams, the hub connection. */
  async close(): Promise<void> {
    for (const state of this.reaches.values()) {
      for (const socket of state.sockets) socket.destroy();
      state.server.close();
    }
    this.reaches.clear();
    this.shareFilter?.close();
    await this.connection.close();
  }

  private onLocalConnection(state: ReachState, socket: Socket): void {
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    this.connection.openStream(state.name).then(
      (stream) => {
        if (socket.destroyed) return stream.reset('STREAM_CLOSED', 'the local client went away before the stream opened');
        stream.attach(socket);
      },
      (err: unknown) => {
        const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL', String(err));
        this.emit({ type: 'stream_refused', name: state.name, code: error.code, message: error.message });
        socket.destroy();
      },
    );
  }

  private onIncomingOpen(open: IncomingOpen): void {
    const entry = this.exposed.get(open.notice.service);
    if (!entry) return open.refuse('SERVICE_NOT_FOUND', `Service not found: ${open.notice.service}`);
    const share = open.notice.share;
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
