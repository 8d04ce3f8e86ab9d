/**
 * One agent WebSocket on the hub: handshake, the stream table, and the relay of frames between the two agents
 * of each stream. The hub reads frame headers only; DATA payloads are forwarded as the same buffer. A stream
 * frame is applied by streams.ts (relayStreamFrame), the one place that follows it to the other end.
 *
 * Also what every connection shares (RelayContext) and what the relay asks of the layers above it, which hub.ts
 * wires in: the control requests (control-handler.ts), shares across workspaces (sharing/), hub TCP ports.
 */

import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  ConnectError,
  ConnectionCredit,
  FrameType,
  MAX_SMALL_JSON,
  MAX_STREAM_ID,
  MAX_STREAMS_PER_CONNECTION,
  PROTOCOL_VERSION,
  ProtocolError,
  WRITE_STALL_TIMEOUT_MS,
  closeReason,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  encodeWindow,
  frameTypeName,
  parseAgentMessage,
  parseOpenRequest,
  verifyStaticKey,
  type AccessReport,
  type ErrorCode,
  type Frame,
  type HelloMessage,
  type OpenNotice,
  type ReachPath,
  type RequestMessage,
  type ServiceInfo,
  type SharePolicy,
} from '@private-connect/protocol';
import type { Clock } from '../clock.js';
import type { Database } from '../db/index.js';
import type { EventBus } from '../events.js';
import { isAccepting, type Lifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../store/credentials.js';
import type { Advertised } from '../store/direct.js';
import type { TicketKey } from '../store/ticket-key.js';
import { EarlyFrames } from './early-frames.js';
import type { RelayStats } from './relay-stats.js';
import type { LocalRoute, ServiceRouter, StreamTarget } from './router.js';
import { openPair, peerGone, refuseOpen, relayStreamFrame, type RelayPeer, type StreamEnd, type StreamTag } from './streams.js';

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
  /** Agent and service changes for the dashboards of the connection's workspace (GET /v1/events). */
  events: EventBus;
  /** Starting, ready or draining: a draining hub takes no new streams (lifecycle.ts). */
  lifecycle: Lifecycle;
  /** The control requests of every connection, and its open/close bookkeeping (control-handler.ts). */
  control: ControlHandler;
  /** `alias/service` names: services of other workspaces through shares (sharing/shares.ts). */
  shared: SharedServices;
  /** TCP ports on the hub for services (sharing/hub-ports.ts). */
  hubPorts: HubPortControl;
  /** The deployment's key for direct tickets (store/ticket-key.ts): its public half goes in every welcome. */
  ticketKey: TicketKey;
  /**
   * The other hubs, when this hub is one of several (NATS_URL): told when an agent connects or leaves, when sessions
   * end, and when a direct ticket was handed out for an exposing agent connected to another hub (relay/direct.ts).
   */
  cluster?: {
    agentChanged(workspaceId: string, agentId: string): void;
    endSessions(end: SessionsEnd): void;
    directGrant(grant: DirectGrant): void;
  };
  handshakeTimeoutMs: number;
  maxPendingControl: number;
  /** The error for a stream open to a name that has no live route (missing-service.ts). */
  lookupMissingService(workspaceId: string, name: string): Promise<ConnectError>;
}

/**
 * Sessions that end: those made with agent `agentId` (told to every other agent of its workspace), or those made
 * through share `shareId` (told to the agents of the owner's workspace `workspaceId` that expose one of `services`).
 */
export interface SessionsEnd {
  workspaceId: string;
  agentId?: string;
  shareId?: string;
  services?: string[];
  reason: string;
}

/**
 * A direct ticket handed out: exposing agent `agentId` of `workspaceId` may now hold direct streams of agent `from`
 * (through share `shareId`), so it must hear when that agent or share is revoked (relay/cuts.ts endSessions).
 */
export interface DirectGrant {
  workspaceId: string;
  agentId: string;
  from: string;
  shareId?: string;
}

/** A service of another workspace through a share, as `direct` sees it (sharing/shares.ts directShared). */
export interface SharedDirect {
  /** The owner's workspace, and the service's name there. */
  workspaceId: string;
  service: string;
  /** The exposing agent's route while it is online. */
  target: StreamTarget | undefined;
  share: SharePolicy;
  expiresAt: Date;
}

/** The path a reaching agent said its new streams to a service take (op `path`), and when it said so. */
export interface KnownPath extends ReachPath {
  at: Date;
}

/** At most this many services' paths are kept per connection (op `path`); the oldest goes first. */
export const MAX_PATHS_PER_CONNECTION = 256;

/** What a connection hands to the control plane: its requests, its start (after hello) and its end. */
export interface ControlHandler {
  /** Runs one control request; its result is the reply. Throws ConnectError for refusals. */
  request(conn: AgentConnection, msg: RequestMessage): Promise<unknown>;
  opened(conn: AgentConnection): void;
  closed(conn: AgentConnection): void;
}

/** What the relay asks of shares across workspaces, for names `alias/service` of the caller's workspace. */
export interface SharedServices {
  /** The shared service for the resolve and reach control ops; throws the refusal. */
  resolve(conn: AgentConnection, name: string): Promise<{ info: ServiceInfo; shareId: string }>;
  /** Opens `conn`'s stream `id` to the shared service, or refuses it: the agent gets the answer either way. */
  open(conn: AgentConnection, id: number, name: string, handshake: Pick<OpenNotice, 'e2e' | 'plain'>): Promise<void>;
  /** The checks of an OPEN of `alias/service`, for a direct ticket (op `direct`); throws the refusal. */
  direct(conn: AgentConnection, name: string): Promise<SharedDirect>;
  /** The exposing agent reports HTTP requests through a share (control op `access`). */
  reportAccess(conn: AgentConnection, report: AccessReport): Promise<Record<string, never>>;
}

/** A service's TCP port on the hub (expose --hub-port, and unexpose). */
export interface HubPortControl {
  ensure(workspaceId: string, name: string): Promise<number>;
  release(workspaceId: string, name: string): Promise<void>;
}

type AgentPrincipal = Extract<Principal, { kind: 'agent' }>;

export interface ConnectionMeta {
  ip?: string;
  userAgent?: string;
}

export class AgentConnection implements RelayPeer, LocalRoute {
  readonly id = randomUUID();
  readonly log: Logger;
  state: 'handshake' | 'open' | 'closed' = 'handshake';
  lastReceivedAt = Date.now();
  hello: HelloMessage | undefined;
  /** Service names this connection routes; entries removed by unexpose, takeover and teardown. */
  readonly exposed = new Set<string>();
  /** Tunnel ids (reach sessions) opened on this connection; removed by unreach and teardown. */
  readonly tunnels = new Set<string>();
  /** What this (exposing) agent advertised for direct paths (op `advertise`); replaced by the next one. */
  advertised: Advertised | undefined;
  /**
   * Agents (of any workspace) given direct tickets to this agent's services, or whose direct streams it reported:
   * they are told of end_sessions naming them (relay/cuts.ts). Added by `direct`, `direct_report` and the cluster's
   * direct grants; kept for the connection's life (bounded by the agents that may reach it).
   */
  readonly directReachers = new Set<string>();
  /** Shares such tickets or streams came through: the share sweep tells this agent when one ends, then deletes it. */
  readonly directShares = new Set<string>();
  /** The paths this (reaching) agent's new streams take, by service name (op `path`); at most MAX_PATHS_PER_CONNECTION. */
  readonly paths = new Map<string, KnownPath>();
  /** Streams by id on this socket; entries removed by dropPair (close, reset, open failure) and teardown. */
  readonly streams = new Map<number, StreamEnd>();
  /**
   * Early frames of this agent's opens whose target is still being looked up (shares), by stream id. Added by
   * onOpen, deleted by openTo and refuseOpen (the lookup's end either way) and teardown.
   */
  private readonly early = new Map<number, EarlyFrames>();
  private nextHubStreamId = 2;
  private lastAgentStreamId = 0;
  private readonly handshakeTimer: NodeJS.Timeout;
  private controlChain: Promise<void> = Promise.resolve();
  private pendingControl = 0;
  /** The agent's connection window: its DATA that the hub holds, granted back with WINDOW s=0 once written out. */
  readonly credit = new ConnectionCredit((increment) => this.send(encodeWindow(0, increment)));
  /** Relayed DATA bytes handed to the socket towards the agent and not yet written out. */
  private unwritten = 0;
  /** When the socket towards the agent last wrote relayed DATA out (or began to hold some). */
  private lastWriteAt = 0;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly ctx: RelayContext,
    public principal: AgentPrincipal,
    readonly meta: ConnectionMeta,
  ) {
    this.log = ctx.log.child({ conn: this.id, agent: principal.agentId, workspace: principal.workspaceId });
    this.handshakeTimer = setTimeout(
      () => this.fail(new ProtocolError('HANDSHAKE_TIMEOUT', `no hello within ${ctx.handshakeTimeoutMs} ms of connecting`)),
      ctx.handshakeTimeoutMs,
    );
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.teardown());
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'agent socket error'));
  }

  get workspaceId(): string {
    return this.principal.workspaceId;
  }

  get agentId(): string {
    return this.principal.agentId;
  }

  get label(): string {
    return this.hello?.agent.label || this.principal.label;
  }

  /** The agent said in hello that it takes plaintext streams too (--no-e2e). */
  get acceptsPlaintext(): boolean {
    return this.hello?.plain === true;
  }

  /** Number of open streams on this socket. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Bytes queued in the socket towards the agent. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Sends an encoded frame to the agent; dropped once the connection is closing. `written` (relayed DATA) runs when
   * the socket wrote the frame out, or failed to: that is when its sender gets the connection credit back.
   */
  send(frame: Buffer, written?: () => void): void {
    if (this.state === 'closed' || this.ws.readyState !== this.ws.OPEN) return written?.();
    if (!written) return this.ws.send(frame, { binary: true });
    if (this.unwritten === 0) this.lastWriteAt = Date.now();
    this.unwritten += frame.length;
    this.ws.send(frame, { binary: true }, () => {
      this.unwritten -= frame.length;
      this.lastWriteAt = Date.now();
      written();
    });
  }

  /** This agent's DATA counts against its one connection window, whoever receives it (see streams.ts). */
  windowFor(): ConnectionCredit {
    return this.credit;
  }

  /**
   * Closes a connection whose socket wrote none of the relayed DATA it holds for WRITE_STALL_TIMEOUT_MS: an agent
   * that stopped reading. Its senders' connection credit comes back as its socket's pending writes fail.
   */
  private checkWriteStall(): void {
    if (this.unwritten === 0 || Date.now() - this.lastWriteAt <= WRITE_STALL_TIMEOUT_MS) return;
    this.log.warn({ unwritten: this.unwritten }, 'the agent has read nothing within the write stall timeout; closing');
    this.close('IDLE_TIMEOUT', `the agent took none of ${this.unwritten} bytes sent to it for ${WRITE_STALL_TIMEOUT_MS} ms`);
  }

  /**
   * The agent's token was rotated by a workspace admin: from now on this connection stands on the new token (so the
   * old one's grace period does not end it), and the agent gets the token to keep for its reconnects.
   */
  adoptToken(rotated: { token: string; tokenId: string; expiresAt: Date }): void {
    this.principal = { ...this.principal, tokenId: rotated.tokenId, expiresAt: rotated.expiresAt, validUntil: rotated.expiresAt };
    const expiresInMs = rotated.expiresAt.getTime() - this.ctx.clock.now().getTime();
    this.sendControl({ t: 'token', token: rotated.token, expiresAt: rotated.expiresAt.toISOString(), expiresInMs });
  }

  sendControl(message: unknown): void {
    this.send(encodeJsonFrame(FrameType.CONTROL, 0, message));
  }

  /** Closes this connection because of `err`; the error's code goes in the close frame. */
  fail(err: unknown): void {
    if (this.state === 'closed') return;
    const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL');
    if (!(err instanceof ConnectError)) this.log.error({ err }, 'unexpected error on agent connection');
    else if (err instanceof ProtocolError) {
      this.ctx.stats.protocolErrors++;
      this.log.warn({ code: error.code, reason: error.message }, 'closing agent connection');
    }
    this.close(error.code, error.message);
  }

  /** Closes the socket with a protocol close code; teardown runs when the socket reports close. */
  close(code: ErrorCode, message: string, closeCode?: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const wsCode = closeCode ?? new ConnectError(code).closeCode;
    this.ws.close(wsCode, closeReason(code, message));
    // A peer that never completes the close handshake is cut off.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** Cuts the socket at once (dead peer). */
  terminate(): void {
    this.state = 'closed';
    this.ws.terminate();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.lastReceivedAt = Date.now();
    try {
      if (!isBinary) throw new ProtocolError('PROTOCOL_ERROR', 'text messages are not part of the protocol; send binary frames');
      const frame = decodeFrame(data);
      if (this.state === 'handshake') return this.onHandshakeFrame(frame);
      this.onFrame(frame, data);
    } catch (err) {
      this.fail(err);
    }
  }

  private onHandshakeFrame(frame: Frame): void {
    if (frame.type !== FrameType.CONTROL) {
      throw new ProtocolError('PROTOCOL_ERROR', `the first frame must be CONTROL hello, got ${frameTypeName(frame.type)}`);
    }
    const msg = parseAgentMessage(frame.payload);
    if (msg.t !== 'hello') throw new ProtocolError('PROTOCOL_ERROR', 'the first control message must be hello');
    if (msg.v !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        'UNSUPPORTED_VERSION',
        `this hub speaks protocol ${PROTOCOL_VERSION}, the agent ${msg.v}; install the matching connect version`,
      );
    }
    checkStaticKey(msg);
    clearTimeout(this.handshakeTimer);
    this.hello = msg;
    this.state = 'open';
    this.stallTimer = setInterval(() => this.checkWriteStall(), WRITE_STALL_TIMEOUT_MS / 3);
    this.stallTimer.unref();
    this.ctx.connections.add(this);
    this.sendControl({
      t: 'welcome',
      v: PROTOCOL_VERSION,
      agentId: this.agentId,
      workspaceId: this.workspaceId,
      connectionId: this.id,
      label: this.label,
      // When this token stops working, by the hub's clock: the agent warns within TOKEN_EXPIRY_WARNING_MS.
      tokenExpiresAt: this.principal.validUntil.toISOString(),
      tokenExpiresInMs: this.principal.validUntil.getTime() - this.ctx.clock.now().getTime(),
      // The key of direct tickets (docs/direct.md): the exposing agent checks the tickets reaching agents show it.
      ticketKey: this.ctx.ticketKey.publicKey,
    });
    this.log.info({ version: msg.agent.version, label: this.label, hostname: msg.agent.hostname, ip: this.meta.ip }, 'agent connected');
    this.ctx.control.opened(this);
    this.ctx.cluster?.agentChanged(this.workspaceId, this.agentId);
  }

  private onFrame(frame: Frame, raw: Buffer): void {
    switch (frame.type) {
      // A frame of an open stream: the other end of the stream gets it.
      case FrameType.DATA:
      case FrameType.WINDOW:
      case FrameType.OPEN_OK:
      case FrameType.OPEN_ERROR:
      case FrameType.CLOSE:
      case FrameType.RESET:
        return this.onStreamFrame(frame, raw);
      case FrameType.OPEN:
        return this.onOpen(frame);
      case FrameType.CONTROL:
        return this.onControl(frame);
      case FrameType.PING:
        return this.send(encodeFrame(FrameType.PONG, 0, frame.payload));
      case FrameType.PONG:
        return;
      case FrameType.GOAWAY:
        return this.close('SHUTTING_DOWN', 'agent said goodbye', 1000);
    }
  }

  /** A frame of one of this connection's streams: relayed by streams.ts, or dropped when the stream ended. */
  private onStreamFrame(frame: Frame, raw: Buffer): void {
    if (frame.streamId === 0) {
      // decodeFrame lets only WINDOW through on stream 0: the connection credit, which the hub grants.
      throw new ProtocolError('PROTOCOL_ERROR', 'WINDOW on stream 0 (connection credit) is granted by the hub only');
    }
    const end = this.endFor(frame);
    if (end) return relayStreamFrame(end, frame, raw, this.ctx.stats);
    const early = this.early.get(frame.streamId);
    if (early && !early.cancelled) {
      if (frame.type === FrameType.DATA || frame.type === FrameType.CLOSE) return early.hold(frame.streamId, raw, { window: this.credit });
      if (frame.type === FrameType.RESET) {
        // The opener gave up before its open was looked up: it is not opened at all.
        early.drop();
        early.cancelled = true;
        return;
      }
    }
    if (frame.type === FrameType.DATA) {
      // A late frame of a stream that ended: dropped, its bytes count against the window and come back at once.
      this.credit.receive(frame.payload.length);
      this.credit.release(frame.payload.length);
    }
  }

  /** The end for a frame's stream id, or undefined for a stream that already ended (late frames are dropped). */
  private endFor(frame: Frame): StreamEnd | undefined {
    const end = this.streams.get(frame.streamId);
    if (end) return end;
    const id = frame.streamId;
    const known = id % 2 === 1 ? id <= this.lastAgentStreamId : id < this.nextHubStreamId;
    if (!known) {
      throw new ProtocolError('PROTOCOL_ERROR', `${frameTypeName(frame.type)} for stream ${id}, which was never opened`);
    }
    return undefined;
  }

  private onOpen(frame: Frame): void {
    const id = frame.streamId;
    if (id % 2 === 0 || id <= this.lastAgentStreamId) {
      throw new ProtocolError('PROTOCOL_ERROR', `OPEN with stream id ${id}: agent stream ids must be odd and increasing`);
    }
    this.lastAgentStreamId = id;
    if (frame.payload.length > MAX_SMALL_JSON) throw new ProtocolError('BAD_MESSAGE', 'OPEN payload is too large');
    // The end-to-end handshake (the offer, the plaintext consent) goes to the exposing agent as it came.
    const { service, ...handshake } = parseOpenRequest(frame.payload);
    if (this.streams.size >= MAX_STREAMS_PER_CONNECTION) {
      return this.refuseOpen(id, 'TOO_MANY_STREAMS', `this agent already has ${MAX_STREAMS_PER_CONNECTION} open streams`);
    }
    const failed = (err: unknown) => {
      this.log.error({ err }, 'service lookup failed');
      this.refuseOpen(id, 'INTERNAL', 'internal error while looking up the service');
    };
    if (service.includes('/')) {
      // `share/service`: a service of another workspace, through a share this workspace joined. Its early frames
      // wait for the share's checks.
      this.early.set(id, new EarlyFrames());
      this.ctx.shared.open(this, id, service, handshake).catch(failed);
      return;
    }
    const target = this.ctx.router.get(this.workspaceId, service);
    if (!target || target.state !== 'open') {
      this.ctx.lookupMissingService(this.workspaceId, service).then((err) => this.refuseOpen(id, err.code, err.message), failed);
      return;
    }
    this.openTo(id, target, { service, from: this.openerInfo(), ...handshake });
  }

  /** Who this agent is in the OPEN notices of its streams: its keys from hello, which the exposing agent checks. */
  openerInfo(ip?: string): OpenNotice['from'] {
    const { identityKey, staticKey } = this.hello ?? {};
    return {
      agentId: this.agentId,
      label: this.label,
      ...(ip ? { ip } : {}),
      ...(identityKey ? { identityKey } : {}),
      ...(staticKey ? { staticKey } : {}),
    };
  }

  /** Opens this connection's stream `id` to `target`, which exposes `notice.service`. */
  openTo(id: number, target: StreamTarget, notice: OpenNotice, tag?: StreamTag): void {
    const early = this.early.get(id);
    this.early.delete(id);
    if (this.state === 'closed' || early?.cancelled) return;
    const refused = target.acceptStream(this, id, notice, tag);
    if (refused) {
      early?.drop();
      return this.refuseOpen(id, refused.code, refused.message);
    }
    const end = this.streams.get(id);
    if (early && end) early.replay(end, this.ctx.stats);
  }

  /**
   * Opens a stream from `opener` (its id `openerId`: an agent connection, or the hub's LocalPeer) to this
   * connection, which exposes `notice.service`; returns the refusal when this connection cannot take it.
   */
  acceptStream(opener: RelayPeer, openerId: number, notice: OpenNotice, tag?: StreamTag): ConnectError | undefined {
    if (this.state !== 'open') return new ConnectError('SERVICE_OFFLINE', `the agent exposing "${notice.service}" is not connected right now`);
    if (!isAccepting(this.ctx.lifecycle)) return new ConnectError('SHUTTING_DOWN', 'the hub is shutting down; reconnect and try again');
    if (this.streams.size >= MAX_STREAMS_PER_CONNECTION) return new ConnectError('TOO_MANY_STREAMS', `the agent exposing "${notice.service}" has too many open streams`);
    const { stats } = this.ctx;
    openPair(opener, openerId, this, this.allocateStreamId(), notice, stats, tag, stats.services.counter(this.workspaceId, notice.service));
    return undefined;
  }

  refuseOpen(id: number, code: ErrorCode, message: string): void {
    this.early.get(id)?.drop();
    this.early.delete(id);
    refuseOpen({ conn: this, id }, code, message, this.ctx.stats);
  }

  private onControl(frame: Frame): void {
    const msg = parseAgentMessage(frame.payload);
    if (msg.t !== 'req') throw new ProtocolError('PROTOCOL_ERROR', 'hello was already received');
    if (this.pendingControl >= this.ctx.maxPendingControl) {
      throw new ProtocolError('PROTOCOL_ERROR', `more than ${this.ctx.maxPendingControl} control requests are waiting for replies`);
    }
    this.pendingControl++;
    // Requests of one connection run one after another, in the order sent.
    this.controlChain = this.controlChain.then(() => this.runControl(msg));
  }

  private async runControl(msg: RequestMessage): Promise<void> {
    try {
      const result = await this.ctx.control.request(this, msg);
      this.sendControl({ t: 'reply', id: msg.id, ok: true, result });
    } catch (err) {
      const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL');
      if (!(err instanceof ConnectError)) this.log.error({ err, op: msg.op }, 'control request failed');
      this.sendControl({ t: 'reply', id: msg.id, ok: false, error: error.toJSON() });
    } finally {
      this.pendingControl--;
    }
  }

  /** A new stream id for a stream the hub opens on this connection (even, increasing, never reused). */
  allocateStreamId(): number {
    const id = this.nextHubStreamId;
    if (id > MAX_STREAM_ID - 2) {
      // Stream ids are never reused: an exhausted connection is asked to reconnect.
      this.close('SHUTTING_DOWN', 'stream ids exhausted; reconnect');
    }
    this.nextHubStreamId += 2;
    return id;
  }

  /** Ends the connection's streams, routes and tunnels once the socket closed. */
  private teardown(): void {
    const wasOpen = this.state !== 'handshake' || this.hello !== undefined;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearInterval(this.stallTimer);
    this.ctx.connections.delete(this);
    for (const end of this.streams.values()) peerGone(end);
    this.streams.clear();
    this.early.clear();
    if (wasOpen && this.hello) {
      this.ctx.control.closed(this);
      this.ctx.cluster?.agentChanged(this.workspaceId, this.agentId);
    }
  }
}

/**
 * A hello's static key must come with the identity key and that identity's signature of it: an agent may not
 * register a static key that another identity holds. Refused BAD_MESSAGE, which closes the connection.
 */
function checkStaticKey(hello: HelloMessage): void {
  const { identityKey, staticKey, staticSig } = hello;
  if (staticKey === undefined && staticSig === undefined) return;
  if (!identityKey || !staticKey || !staticSig) {
    throw new ProtocolError('BAD_MESSAGE', 'hello.staticKey needs hello.identityKey and hello.staticSig, the identity\'s signature of it');
  }
  if (!verifyStaticKey(identityKey, staticKey, staticSig)) {
    throw new ProtocolError('BAD_MESSAGE', 'hello.staticSig is not hello.identityKey\'s signature of hello.staticKey');
  }
}
