/**
 * The agent's one WebSocket to the hub: hello and welcome, control requests and their replies, the stream table,
 * keepalive and GOAWAY. Streams of both directions share the socket. Where and when it reconnects is decided by
 * reconnect-policy.ts; each stream's end-to-end handshake is built and checked by stream-handshake.ts.
 */

import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import {
  ConnectError,
  FrameType,
  ERROR_CODES,
  IDLE_TIMEOUT_MS,
  OPEN_TIMEOUT_MS,
  PING_INTERVAL_MS,
  PROTOCOL_VERSION,
  SendWindow,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  errorFromBody,
  parseCloseReason,
  parseErrorPayload,
  parseGoAway,
  parseHubMessage,
  parseControlResult,
  parseOpenNotice,
  readWindowIncrement,
  type AgentInfo,
  type ControlOp,
  type ControlOps,
  type E2ESession,
  type Frame,
  type ErrorBody,
  type ErrorCode,
  type OpenNotice,
  type TokenMessage,
  type WelcomeMessage,
} from '@private-connect/protocol';
import type { BackoffOptions } from './backoff.js';
import { TunnelStream, type StreamTransport } from '@private-connect/tunnel';
import { hubCa, hubConnectError } from './hub-url.js';
import { createReconnectPolicy, type ReconnectPolicy } from './reconnect-policy.js';
import { streamHandshakes, type E2EOptions, type StreamHandshakes } from './stream-handshake.js';
import { serveOpen, type IncomingOpen, type OpenConnection } from './serve-open.js';
import type { OpenerPlan, ServiceKeys } from '../e2e/sessions.js';

export interface HubConnectionOptions {
  hubUrl: string;
  /**
   * More hubs of the same deployment (sharing its database), tried in turn after `hubUrl` when a connection is lost
   * or refused: the agent moves to the next one at once, and backs off only after every hub was tried.
   */
  hubUrls?: readonly string[];
  /**
   * The order in which several hubs are tried. 'random' (the default, as NATS clients shuffle their servers): each
   * agent shuffles the list once, so that a fleet spreads over the hubs, and so do the agents of a hub that dies
   * (each moves to the next hub of its own order). 'listed': `hubUrl` first, then `hubUrls` in turn.
   */
  hubOrder?: 'random' | 'listed';
  token: string;
  agent: AgentInfo;
  backoff?: BackoffOptions;
  pingIntervalMs?: number;
  idleTimeoutMs?: number;
  /** Allow http:// / ws:// to a hub that is not on loopback. */
  allowInsecure?: boolean;
  /** Extra CA certificates for a hub with a private certificate. */
  ca?: string | Buffer;
  /** End-to-end encryption of the streams this agent opens and serves (e2e.ts). */
  e2e?: E2EOptions;
}

/**
 * Events: 'connected' (WelcomeMessage), 'disconnected' ({error, retryInMs}), 'fatal' (ConnectError), 'event' (hub
 * event), 'goaway' (the hub is shutting down: open streams finish on this socket, then the agent reconnects).
 */
export interface HubConnectionEvents {
  connected: [WelcomeMessage];
  goaway: [{ message: string; openStreams: number }];
  disconnected: [{ error: ConnectError; retryInMs: number }];
  fatal: [ConnectError];
  event: [{ event: string; name: string }];
  /** The hub rotated this agent's token; later reconnects use the new one (already in effect here). */
  token: [TokenMessage];
  /** An open stream was reset for a reason other than a local close (see StreamTransport.streamFailed). */
  streamFailed: [{ stream: TunnelStream; error: ErrorBody; by: 'local' | 'remote' }];
  /**
   * A stream handed out before its open was confirmed (it sent its first bytes with the open) was refused after all:
   * its local connection was reset. The caller of openStream learns of it here, not from a rejection.
   */
  openRefused: [{ stream: TunnelStream; error: ConnectError }];
  /**
   * This (exposing) agent refused a stream offered to it because its end-to-end offer did not hold (an altered or
   * misdirected handshake, a replayed open, a session it does not hold, no encryption offered): the one trace of an
   * attempt a hub could make, so the agent logs it.
   */
  openRejected: [{ service: string; from: OpenNotice['from']; error: ConnectError }];
  /** The hub ended end-to-end sessions (an agent revoked or back with a new identity, a share revoked). */
  sessionsEnded: [{ agentId?: string; shareId?: string; reason: string; ended: number }];
}

export type { IncomingOpen } from './serve-open.js';

interface PendingRequest {
  resolve(value: unknown): void;
  reject(err: ConnectError): void;
}

interface Waiter {
  resolve(welcome: WelcomeMessage): void;
  reject(err: ConnectError): void;
  timer?: NodeJS.Timeout;
}

interface PendingOpen {
  stream: TunnelStream;
  /** The session plan of this open's offer; undefined when it offered none. */
  plan: OpenerPlan | undefined;
  /** The stream sends its first bytes before OPEN_OK (a stream of a session, this agent requiring encryption). */
  early: boolean;
  /** The caller already has the stream (it sent early, or this is the retry of such an open). */
  handedOut: boolean;
  /** This open is the one retry of a refused one. */
  retried: boolean;
  resolve(stream: TunnelStream): void;
  reject(err: ConnectError): void;
  timer: NodeJS.Timeout;
}

/** Refusals that a new handshake cures: the session is gone at the other end, or the agent's keys moved on. */
function retryable(code: ErrorCode, plan: OpenerPlan | undefined): boolean {
  return plan !== undefined && (code === 'E2E_SESSION_UNKNOWN' || (code === 'E2E_HANDSHAKE_FAILED' && plan.kind === 'handshake'));
}

export class HubConnection extends EventEmitter<HubConnectionEvents> implements StreamTransport {
  private ws: WebSocket | undefined;
  private welcome: WelcomeMessage | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastReceivedAt = 0;
  /** Set by GOAWAY until the socket that received it closed. */
  private goingAway = false;
  /** Why the hub sent GOAWAY (shutting down, or rebalancing its agents): what the socket's end reports. */
  private goAwayError = new ConnectError('SHUTTING_DOWN', 'the hub is shutting down');
  private nextStreamId = 1;
  private nextRequestId = 1;
  /** Streams of the current socket by id; removed by streamEnded() and when the socket goes away. */
  private readonly streams = new Map<number, TunnelStream>();
  /** Requests waiting for a reply on the current socket; rejected when it goes away. */
  private readonly requests = new Map<number, PendingRequest>();
  /** Callers of ready() waiting for a connection; removed when settled (welcome or fatal) or when their wait ends. */
  private readonly waiters = new Set<Waiter>();
  /** Opens waiting for OPEN_OK / OPEN_ERROR; rejected when the socket goes away. */
  private readonly opens = new Map<number, PendingOpen>();
  private openHandler: ((open: IncomingOpen) => void) | undefined;
  /** Which hub is tried next, and when. */
  private readonly reconnect: ReconnectPolicy;
  /** The end-to-end handshakes of the streams this agent opens and serves (its direct connections use them too). */
  readonly handshakes: StreamHandshakes;
  /** Round-trip time of the last ping, in ms. */
  rttMs: number | undefined;
  /** The connection window of the current socket, shared by all its streams (full again on each new socket). */
  readonly window = new SendWindow();

  /** The agent token: the one given, until the hub hands over a rotated one. */
  private token: string;

  constructor(private readonly options: HubConnectionOptions) {
    super();
    this.token = options.token;
    this.reconnect = createReconnectPolicy(options);
    this.handshakes = streamHandshakes(options.e2e, (service) => this.lookupKeys(service));
  }

  /** The hub this agent is connected to, or tries next. */
  get hubUrl(): string {
    return this.reconnect.hubUrl;
  }

  /** Starts connecting (and reconnecting until close()). */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  get connected(): boolean {
    return this.welcome !== undefined;
  }

  get identity(): WelcomeMessage | undefined {
    return this.welcome;
  }

  /** Handles stream requests from the hub (exposing agents). */
  onOpen(handler: (open: IncomingOpen) => void): void {
    this.openHandler = handler;
  }

  /**
   * Resolves once connected; rejects after `timeoutMs` or on a fatal error. Every caller waits in `waiters`, settled
   * by the one welcome or fatal error: no listener per caller, however many local connections wait for the hub.
   */
  ready(timeoutMs = Infinity): Promise<WelcomeMessage> {
    if (this.welcome) return Promise.resolve(this.welcome);
    if (this.stopped) return Promise.reject(new ConnectError('HUB_UNREACHABLE', 'the agent was stopped'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (welcome) => {
          clearTimeout(waiter.timer);
          resolve(welcome);
        },
        reject: (err) => {
          clearTimeout(waiter.timer);
          reject(err);
        },
      };
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new ConnectError('HUB_UNREACHABLE', `not connected to the hub within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  /** Settles every ready() waiting now: with the welcome, or with the fatal error. */
  private settleWaiters(outcome: { welcome: WelcomeMessage } | { error: ConnectError }): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiting) {
      if ('welcome' in outcome) waiter.resolve(outcome.welcome);
      else waiter.reject(outcome.error);
    }
  }

  /**
   * Sends a control request on the current connection and waits for its reply. The reply's result is checked
   * against the op's schema here (parseControlResult); a malformed one rejects with BAD_MESSAGE.
   */
  async request<Op extends ControlOp>(op: Op, args: ControlOps[Op]['args']): Promise<ControlOps[Op]['result']> {
    await this.ready();
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const settle = (result: unknown) => {
        try {
          resolve(parseControlResult(op, result));
        } catch (err) {
          reject(err);
        }
      };
      this.requests.set(id, { resolve: settle, reject });
      this.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id, op, args }));
    });
  }

  /**
   * Opens a stream to a service of the workspace; waits up to `waitMs` for a connection to the hub first. A stream
   * of an end-to-end session this agent holds is handed out at once, before OPEN_OK, so that the client's first
   * bytes leave with the open; if that open is refused, the stream's local connection is reset and 'openRefused'
   * tells why. `confirmed`: wait for OPEN_OK anyway (a check that the service answers).
   */
  async openStream(service: string, waitMs = 10_000, options: { confirmed?: boolean } = {}): Promise<TunnelStream> {
    return this.open(service, waitMs, options.confirmed === true, false);
  }

  private async open(service: string, waitMs: number, confirmed: boolean, retried: boolean): Promise<TunnelStream> {
    await this.ready(waitMs);
    const { payload, plan } = await this.handshakes.offer(service);
    await this.ready(waitMs);
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new TunnelStream(id, this, service);
    const early = !confirmed && plan?.kind === 'stream' && !this.handshakes.acceptsPlaintext;
    return new Promise((resolve, reject) => {
      this.register(id, { stream, plan, early, handedOut: early, retried, resolve, reject });
      if (early) this.sendEarly(stream, plan.session);
      this.send(encodeJsonFrame(FrameType.OPEN, id, payload));
      if (early) resolve(stream);
    });
  }

  /** Keeps an open waiting for its answer, with its timer. */
  private register(id: number, open: Omit<PendingOpen, 'timer'>): void {
    const timer = setTimeout(() => {
      if (this.opens.get(id)?.stream !== open.stream) return;
      this.opens.delete(id);
      this.refuseOpen({ ...open, timer }, new ConnectError('OPEN_TIMEOUT', `no answer from the hub for "${open.stream.service}" within ${OPEN_TIMEOUT_MS} ms`));
      this.closeIfDrained();
    }, OPEN_TIMEOUT_MS + 1000);
    this.opens.set(id, { ...open, timer });
  }

  /** A stream that sends before OPEN_OK: in the table at once (its bytes may be answered right after OPEN_OK). */
  private sendEarly(stream: TunnelStream, session: E2ESession): void {
    stream.session = session;
    stream.sendBeforeConfirmed();
    this.streams.set(stream.id, stream);
  }

  /** The exposing agent of `service` and its keys, as the hub describes it (resolve); undefined when it has none. */
  private async lookupKeys(service: string): Promise<ServiceKeys | undefined> {
    const { service: info } = await this.request('resolve', { name: service });
    if (!info.online || !info.keys) return undefined;
    return { agentId: info.agentId, label: info.agentLabel, keys: info.keys, plaintext: info.e2e === 'optional' };
  }

  /** Sends a frame on the current socket (dropped when disconnected: streams are reset then anyway). */
  send(frame: Buffer): void {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: true });
  }

  /** Only streams that opened (the table holds them): a failed open is the opener's rejection, reported once there. */
  streamFailed(stream: TunnelStream, error: ErrorBody, by: 'local' | 'remote'): void {
    if (this.streams.get(stream.id) === stream) this.emit('streamFailed', { stream, error, by });
  }

  streamEnded(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.closeIfDrained();
  }

  /** The hub is going away and the last stream (or open waiting for its answer) on its socket finished: move on now. */
  private closeIfDrained(): void {
    if (this.goingAway && this.streams.size === 0 && this.opens.size === 0) this.ws?.close(1000, 'goaway');
  }

  /** Number of open streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Stops for good: closes the socket, ends streams, no reconnect. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.settleWaiters({ error: new ConnectError('HUB_UNREACHABLE', 'the agent was stopped') });
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) {
      this.dropSocketState(new ConnectError('HUB_UNREACHABLE', 'the agent was stopped'));
      return;
    }
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000, 'agent stopping');
      setTimeout(() => ws.terminate(), 1000).unref();
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.reconnect.endpoint, {
      headers: { authorization: `Bearer ${this.token}`, 'user-agent': `connect/${this.options.agent.version} (${process.platform})` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      maxPayload: 2 * 1024 * 1024,
      skipUTF8Validation: true,
      // The all-zero mask: RFC 6455 masking protects proxies from script in browsers, and an agent is not one. It
      // saves a copy of every frame here and its unmasking in the hub.
      generateMask: zeroMask,
      ...tlsOptions(this.options.ca),
    });
    this.ws = ws;
    let closeError: ConnectError | undefined;
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.length < 16 && chunks.push(chunk));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')).error;
        } catch {
          body = undefined;
        }
        closeError = body ? errorFromBody(body) : new ConnectError('HUB_UNREACHABLE', `the hub answered HTTP ${res.statusCode} instead of upgrading`);
        ws.terminate();
      });
    });
    ws.on('open', () => {
      this.lastReceivedAt = Date.now();
      this.window.reset();
      const { hello: keys, acceptsPlaintext } = this.handshakes;
      const hubs = this.reconnect.hubCount;
      const hello = { t: 'hello', v: PROTOCOL_VERSION, agent: this.options.agent, ...keys, ...(acceptsPlaintext ? { plain: true } : {}), hubs };
      this.send(encodeJsonFrame(FrameType.CONTROL, 0, hello));
    });
    ws.on('message', (data: Buffer) => {
      this.lastReceivedAt = Date.now();
      try {
        this.onFrame(decodeFrame(data));
      } catch (err) {
        // A malformed frame (ProtocolError) ends the connection; so does a bug in the agent, reported as such.
        closeError =
          err instanceof ConnectError ? err : new ConnectError('INTERNAL', `the agent failed while handling a frame: ${err instanceof Error ? err.message : String(err)}`);
        ws.terminate();
      }
    });
    ws.on('error', (err: Error & { code?: string }) => {
      closeError ??= hubConnectError(this.hubUrl, err.code, err.message);
    });
    ws.on('close', (code, reason) => {
      const parsed = parseCloseReason(reason.toString('utf8'));
      const error = closeError ?? (parsed ? errorFromBody(parsed) : new ConnectError('HUB_UNREACHABLE', `the connection to the hub closed (${code})`));
      this.onSocketClosed(ws, error);
    });
  }

  private onSocketClosed(ws: WebSocket, closedWith: ConnectError): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    const error = this.goingAway ? this.goAwayError : closedWith;
    this.goingAway = false;
    this.dropSocketState(error);
    if (this.stopped) return;
    if (this.reconnect.isFatal(error)) {
      this.stopped = true;
      this.emit('fatal', error);
      this.settleWaiters({ error });
      return;
    }
    const retryInMs = this.reconnect.next(error);
    this.emit('disconnected', { error, retryInMs });
    this.retryTimer = setTimeout(() => this.connect(), retryInMs);
  }

  private dropSocketState(error: ConnectError): void {
    clearInterval(this.pingTimer);
    this.welcome = undefined;
    const gone = new ConnectError(error.code === 'SHUTTING_DOWN' ? 'SHUTTING_DOWN' : 'HUB_UNREACHABLE', `lost the connection to the hub: ${error.message}`);
    for (const stream of this.streams.values()) stream.abort();
    this.streams.clear();
    for (const request of this.requests.values()) request.reject(gone);
    this.requests.clear();
    for (const open of this.opens.values()) {
      clearTimeout(open.timer);
      open.reject(gone);
    }
    this.opens.clear();
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.CONTROL:
        return this.onControl(frame);
      case FrameType.DATA:
        return this.onStreamFrame(frame);
      case FrameType.WINDOW:
        // Stream 0: the hub wrote some of our DATA out and grants the connection credit back.
        if (frame.streamId === 0) return this.window.grant(readWindowIncrement(frame));
        return this.onStreamFrame(frame);
      case FrameType.CLOSE:
      case FrameType.RESET:
        return this.onStreamFrame(frame);
      case FrameType.OPEN:
        return this.onIncomingOpen(frame);
      case FrameType.OPEN_OK:
      case FrameType.OPEN_ERROR:
        return this.onOpenAnswer(frame);
      case FrameType.PING:
        return this.send(encodeFrame(FrameType.PONG, 0, frame.payload));
      case FrameType.PONG:
        this.rttMs = Date.now() - frame.payload.readDoubleBE(0);
        return;
      case FrameType.GOAWAY:
        return this.onGoAway(frame);
    }
  }

  /** DATA, WINDOW, CLOSE, RESET: a malformed frame throws (connection error); a failing stream is reset alone. */
  private onStreamFrame(frame: Frame): void {
    const stream = this.streams.get(frame.streamId);
    if (!stream) return; // a stream that just ended locally; the hub learns of it from our RESET/CLOSE
    const increment = frame.type === FrameType.WINDOW ? readWindowIncrement(frame) : 0;
    const error = frame.type === FrameType.RESET ? parseErrorPayload(frame.payload) : undefined;
    try {
      if (frame.type === FrameType.DATA) stream.onData(frame.payload, frame.flags);
      else if (frame.type === FrameType.WINDOW) stream.onWindow(increment);
      else if (frame.type === FrameType.CLOSE) stream.onClose();
      else stream.onReset(error!);
    } catch (err) {
      stream.reset('INTERNAL', `the agent failed on this stream: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private onControl(frame: Frame): void {
    const msg = parseHubMessage(frame.payload);
    if (msg.t === 'welcome') {
      this.welcome = msg;
      this.reconnect.connected();
      this.nextStreamId = 1;
      this.startKeepalive();
      this.emit('connected', msg);
      this.settleWaiters({ welcome: msg });
    } else if (msg.t === 'reply') {
      const pending = this.requests.get(msg.id);
      if (!pending) return;
      this.requests.delete(msg.id);
      if (msg.ok) pending.resolve(msg.result);
      else pending.reject(errorFromBody(msg.error));
    } else if (msg.t === 'token') {
      this.token = msg.token;
      this.emit('token', msg);
    } else if (msg.t === 'end_sessions') {
      const ended = this.handshakes.endSessions(msg);
      this.emit('sessionsEnded', { ...(msg.agentId ? { agentId: msg.agentId } : {}), ...(msg.shareId ? { shareId: msg.shareId } : {}), reason: msg.reason, ended });
    } else {
      this.emit('event', { event: msg.event, name: msg.name });
    }
  }

  /**
   * The hub is shutting down (protocol.md, GOAWAY): new streams and requests wait for the next connection, the
   * open ones finish here; the socket closes when the last one ended (or the hub closes it after its grace period).
   */
  private onGoAway(frame: Frame): void {
    const goaway = parseGoAway(frame.payload);
    this.goingAway = true;
    this.goAwayError = new ConnectError(goaway.code, goaway.message || ERROR_CODES[goaway.code].summary);
    this.reconnect.goAway(goaway.reconnectMs);
    this.welcome = undefined;
    this.emit('goaway', { message: goaway.message, openStreams: this.streams.size });
    this.closeIfDrained();
  }

  private onIncomingOpen(frame: Frame): void {
    const notice = parseOpenNotice(frame.payload);
    const stream = new TunnelStream(frame.streamId, this, notice.service);
    const socketAtOpen = this.ws;
    const conn: OpenConnection = {
      handshakes: this.handshakes,
      streams: this.streams,
      send: (f) => this.send(f),
      alive: () => this.ws === socketAtOpen,
      rejected: (n, error) => this.emit('openRejected', { service: n.service, from: n.from, error }),
    };
    serveOpen(conn, stream, notice, 'hub', this.openHandler);
  }

  private onOpenAnswer(frame: Frame): void {
    const open = this.opens.get(frame.streamId);
    if (!open) return;
    this.opens.delete(frame.streamId);
    clearTimeout(open.timer);
    try {
      this.settleOpen(open, frame);
    } finally {
      this.closeIfDrained();
    }
  }

  private settleOpen(open: PendingOpen, frame: Frame): void {
    const stream = open.stream;
    if (frame.type === FrameType.OPEN_ERROR) {
      const error = errorFromBody(parseErrorPayload(frame.payload));
      this.handshakes.failed(stream.service, open.plan, error.code);
      if (!open.retried && retryable(error.code, open.plan)) return this.retry(open);
      return this.refuseOpen(open, error);
    }
    let session: E2ESession | undefined;
    try {
      session = this.handshakes.finish(stream.service, open.plan, frame.payload);
    } catch (err) {
      const error = err instanceof ConnectError ? err : new ConnectError('E2E_HANDSHAKE_FAILED', err instanceof Error ? err.message : String(err));
      // The stream is open at the other end: it gets a RESET. The local side learns of it as a refusal.
      this.send(encodeJsonFrame(FrameType.RESET, stream.id, { code: error.code, message: error.message }));
      return this.refuseOpen(open, error);
    }
    if (open.early) return stream.confirmOpen();
    this.streams.set(stream.id, stream);
    if (open.handedOut) return stream.release(session);
    stream.session = session;
    open.resolve(stream);
  }

  /** An open that failed: its caller's promise rejects, or (handed out already) its local connection is reset. */
  private refuseOpen(open: PendingOpen, error: ConnectError): void {
    open.plan?.kind === 'handshake' && open.plan.fail();
    if (!open.handedOut) return open.reject(error);
    const stream = open.stream;
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    stream.failOpen({ code: error.code, message: error.message });
    this.emit('openRefused', { stream, error });
  }

  /**
   * Tries a refused open once more with a new handshake (the other agent lost the session, or its keys changed). A
   * stream not handed out yet is simply opened again; one that sent early moves to a new id and sends its bytes
   * again under the new keys once the new open is answered.
   */
  private retry(open: PendingOpen): void {
    const stream = open.stream;
    if (!open.handedOut) {
      this.open(stream.service, OPEN_TIMEOUT_MS, true, true).then(open.resolve, open.reject);
      return;
    }
    // The stream keeps its refused id in the table while the new offer is made (a lost hub connection aborts it
    // there); it takes its new id only when the OPEN leaves, because the hub wants an agent's ids increasing.
    const refusedId = stream.id;
    const again = { ...open, retried: true, early: false };
    this.handshakes.offer(stream.service).then(
      ({ payload, plan }) => {
        if (this.streams.get(refusedId) !== stream) return; // aborted meanwhile (the hub connection went away)
        this.streams.delete(refusedId);
        const id = this.nextStreamId;
        this.nextStreamId += 2;
        stream.retryAs(id);
        this.streams.set(id, stream);
        const early = plan?.kind === 'stream' && !this.handshakes.acceptsPlaintext;
        this.register(id, { ...again, plan, early });
        if (early) stream.sendBeforeConfirmed();
        this.send(encodeJsonFrame(FrameType.OPEN, id, payload));
        if (early) stream.release(plan.session);
      },
      (err: unknown) => {
        const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL', String(err));
        this.refuseOpen({ ...again, plan: undefined }, error);
      },
    );
  }

  private startKeepalive(): void {
    clearInterval(this.pingTimer);
    const interval = this.options.pingIntervalMs ?? PING_INTERVAL_MS;
    const idle = this.options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastReceivedAt > idle) {
        this.ws?.terminate();
        return;
      }
      const payload = Buffer.allocUnsafe(8);
      payload.writeDoubleBE(Date.now(), 0);
      this.send(encodeFrame(FrameType.PING, 0, payload));
    }, interval);
    this.pingTimer.unref();
  }
}

/** The TLS options of the agent socket: extra CAs (--ca, trustHubCa) on top of Node's roots, when there are any. */
function tlsOptions(explicit: string | Buffer | undefined): { ca?: string[] } {
  const ca = hubCa(explicit);
  return ca ? { ca } : {};
}

const zeroMask = (mask: Buffer): void => void mask.fill(0);
