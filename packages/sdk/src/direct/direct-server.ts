/**
 * The exposing agent's direct port (docs/direct.md): agents the hub gave a ticket to connect here and open streams
 * to the ticket's service without the hub in the way. Nothing is sent to a connection before it proved itself
 * (direct.ts): a stranger, an agent of another workspace, a replayed or expired ticket, or one for another agent,
 * is cut off having received no byte. The hub's revocations reach this agent as end_sessions and cut the matching
 * connections at once (cut()); the streams that went over them are reported to the hub when they end.
 */

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { KeyObject } from 'node:crypto';
import {
  ConnectError,
  DIRECT_CLOCK_SKEW_MS,
  DIRECT_HELLO_SKEW_MS,
  DIRECT_HELLO_TIMEOUT_MS,
  DIRECT_TICKET_TTL_MS,
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_DIRECT_HELLO,
  ed25519Key,
  encodeJsonFrame,
  makeDirectWelcome,
  parseDirectHello,
  parseOpenRequest,
  parseReachName,
  verifyDirectHello,
  verifyDirectTicket,
  type DirectStreamReport,
  type DirectTicketClaims,
  type Frame,
  type Identity,
  type OpenNotice,
} from '@private-connect/protocol';
import { TunnelStream } from '@private-connect/tunnel';
import { DirectLink } from './direct-link.js';
import { serveOpen, type IncomingOpen, type OpenConnection } from '../agent/serve-open.js';
import type { StreamHandshakes } from '../agent/stream-handshake.js';

export interface DirectServerOptions {
  identity: Identity;
  handshakes: StreamHandshakes;
  /** Who this agent is and the hub's ticket key, from the last welcome; undefined before the first one. */
  self(): { agentId: string; workspaceId: string; connectionId: string; ticketKey?: string } | undefined;
  /** Serves an open as one from the hub would be (the agent's own handler). */
  onOpen(open: IncomingOpen): void;
  /** A direct stream ended (for the hub's audit log and traffic). */
  report(stream: DirectStreamReport): void;
  /** A connection was refused, and why (the agent logs it; the other end is told nothing). */
  refused?(remote: string, reason: string): void;
  /** An accepted connection's open was refused because its end-to-end offer did not hold. */
  rejected?(notice: OpenNotice, error: ConnectError): void;
}

/** At most this many connections may be waiting for their hello (each for DIRECT_HELLO_TIMEOUT_MS at most). */
const MAX_PENDING_HELLOS = 256;

interface Accepted {
  link: DirectLink;
  claims: DirectTicketClaims;
}

export class DirectServer {
  private server: Server | undefined;
  private readonly links = new Set<Accepted>();
  /** Hello nonces seen, until they could no longer pass the clock check. */
  private readonly nonces = new Map<string, number>();
  /** Agents and shares the hub revoked, until every ticket naming them has expired. */
  private readonly revokedAgents = new Map<string, number>();
  private readonly revokedShares = new Map<string, number>();
  private hubKey: { text: string; key: KeyObject } | undefined;
  private readonly pending = new Set<Socket>();

  constructor(private readonly options: DirectServerOptions) {}

  /** Listens on `port` (0: any free port) of `host`; resolves with the port. */
  async listen(port: number, host: string): Promise<number> {
    const server = createServer({ allowHalfOpen: false, noDelay: true }, (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: Error & { code?: string }) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new ConnectError('PORT_IN_USE', `the direct port ${port} on ${host} is taken; pick another with --direct-port, or turn direct connections off with --no-direct`)
            : err,
        ),
      );
      server.listen({ port, host, exclusive: true }, () => resolve());
    });
    server.on('error', () => undefined);
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : undefined;
  }

  /** Direct connections accepted and open now. */
  get connections(): number {
    return this.links.size;
  }

  /**
   * The hub revoked an agent or a share (end_sessions): its direct connections end now, with their streams, and its
   * tickets are refused until they could no longer be valid.
   */
  cut(end: { agentId?: string; shareId?: string }, reason: string): number {
    const until = Date.now() + DIRECT_TICKET_TTL_MS + DIRECT_CLOCK_SKEW_MS;
    if (end.agentId !== undefined) this.revokedAgents.set(end.agentId, until);
    if (end.shareId !== undefined) this.revokedShares.set(end.shareId, until);
    let cut = 0;
    for (const accepted of [...this.links]) {
      const { claims } = accepted;
      if ((end.agentId !== undefined && claims.from === end.agentId) || (end.shareId !== undefined && claims.share?.id === end.shareId)) {
        accepted.link.close(new ConnectError(end.shareId !== undefined ? 'SHARE_REVOKED' : 'UNAUTHORIZED', reason || 'revoked by the hub'));
        cut++;
      }
    }
    return cut;
  }

  /** Ends the connections of every ticket for `service` (it is no longer exposed here). */
  cutService(service: string): void {
    for (const accepted of [...this.links]) if (accepted.claims.svc === service) accepted.link.close(new ConnectError('SERVICE_NOT_FOUND', `"${service}" is no longer exposed`));
  }

  async close(): Promise<void> {
    for (const socket of this.pending) socket.destroy();
    for (const accepted of [...this.links]) accepted.link.close(new ConnectError('PEER_GONE', 'the exposing agent stopped'));
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    if (this.pending.size >= MAX_PENDING_HELLOS) {
      // A flood of connections that say nothing: the newest wait their turn by being dropped.
      socket.destroy();
      return void this.options.refused?.(remote, `more than ${MAX_PENDING_HELLOS} connections are waiting for their hello`);
    }
    this.pending.add(socket);
    let chunks: Buffer[] = [];
    let size = 0;
    const refuse = (reason: string) => {
      finish();
      // Nothing goes back: whoever this is learns that a port is open, and no more.
      socket.destroy();
      this.options.refused?.(remote, reason);
    };
    const finish = () => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      this.pending.delete(socket);
    };
    const timer = setTimeout(() => refuse('no hello in time'), DIRECT_HELLO_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < FRAME_HEADER_SIZE) return;
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      chunks = [bytes];
      const type = bytes[0];
      const streamId = bytes.readUInt32BE(2);
      const length = bytes.readUInt32BE(6);
      if (type !== FrameType.CONTROL || bytes[1] !== 0 || streamId !== 0 || length > MAX_DIRECT_HELLO) return refuse('not a direct hello');
      if (size < FRAME_HEADER_SIZE + length) return;
      finish();
      socket.pause();
      const payload = bytes.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length);
      const rest = bytes.subarray(FRAME_HEADER_SIZE + length);
      let claims: DirectTicketClaims;
      let hello;
      try {
        hello = parseDirectHello(JSON.parse(payload.toString('utf8')));
        if (!hello) throw new ConnectError('DIRECT_REFUSED', 'not a direct hello');
        claims = this.check(hello);
      } catch (err) {
        socket.destroy();
        this.options.refused?.(remote, err instanceof Error ? err.message : String(err));
        return;
      }
      socket.write(encodeJsonFrame(FrameType.CONTROL, 0, makeDirectWelcome(this.options.identity, hello)));
      this.accept(socket, claims, rest);
      socket.resume();
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
    socket.on('close', () => finish());
  }

  /** The claims of a hello's ticket once everything holds; throws DIRECT_REFUSED saying why (for the log only). */
  private check(hello: NonNullable<ReturnType<typeof parseDirectHello>>): DirectTicketClaims {
    const refused = (why: string) => new ConnectError('DIRECT_REFUSED', `direct connection refused: ${why}`);
    const self = this.options.self();
    if (!self?.ticketKey) throw refused('not connected to the hub yet (no ticket key)');
    if (this.hubKey?.text !== self.ticketKey) {
      const key = ed25519Key(self.ticketKey);
      if (!key) throw refused('the hub gave no usable ticket key');
      this.hubKey = { text: self.ticketKey, key };
    }
    const now = Date.now();
    const claims = verifyDirectTicket(hello.ticket, this.hubKey.key, now);
    if (claims.to !== self.agentId) throw refused('the ticket is for another agent');
    if (claims.ws !== self.workspaceId) throw refused('the ticket is for another workspace');
    if (claims.conn !== undefined && claims.conn !== self.connectionId) throw refused("the ticket is for another process of this agent (another hub connection's direct port)");
    if (Math.abs(hello.ts - now) > DIRECT_HELLO_SKEW_MS) throw refused('the hello is too old or from the future');
    this.sweep(now);
    if (this.nonces.has(hello.nonce)) throw refused('a replayed hello');
    if (!verifyDirectHello(hello, claims)) throw refused("the hello is not signed by the ticket's identity key");
    this.nonces.set(hello.nonce, now + 2 * DIRECT_HELLO_SKEW_MS);
    this.checkRevoked(claims, now);
    return claims;
  }

  private checkRevoked(claims: DirectTicketClaims, now: number): void {
    const agentUntil = this.revokedAgents.get(claims.from);
    const shareUntil = claims.share ? this.revokedShares.get(claims.share.id) : undefined;
    if ((agentUntil !== undefined && agentUntil > now) || (shareUntil !== undefined && shareUntil > now)) {
      throw new ConnectError('DIRECT_REFUSED', 'direct connection refused: the ticket was revoked');
    }
  }

  private sweep(now: number): void {
    for (const map of [this.nonces, this.revokedAgents, this.revokedShares]) {
      for (const [key, until] of map) if (until <= now) map.delete(key);
    }
  }

  private accept(socket: Socket, claims: DirectTicketClaims, rest: Buffer): void {
    const link = new DirectLink(socket, false, rest);
    const accepted: Accepted = { link, claims };
    this.links.add(accepted);
    const opened = new WeakMap<TunnelStream, number>();
    const conn: OpenConnection = {
      handshakes: this.options.handshakes,
      streams: link.streams,
      send: (frame) => link.send(frame),
      alive: () => !link.closed,
      rejected: (notice, error) => this.options.rejected?.(notice, error),
    };
    link.on('closed', () => this.links.delete(accepted));
    link.on('streamEnded', (stream) => {
      const at = opened.get(stream);
      if (at === undefined) return;
      this.options.report({
        from: claims.from,
        service: claims.svc,
        ...(claims.share ? { shareId: claims.share.id } : {}),
        openedAt: at,
        ms: Date.now() - at,
        bytesIn: stream.bytesIn,
        bytesOut: stream.bytesOut,
      });
    });
    link.on('open', (frame) => this.onOpen(link, conn, claims, frame, opened));
  }

  private onOpen(link: DirectLink, conn: OpenConnection, claims: DirectTicketClaims, frame: Frame, opened: WeakMap<TunnelStream, number>): void {
    const request = parseOpenRequest(frame.payload);
    const refuse = (message: string) => link.send(encodeJsonFrame(FrameType.OPEN_ERROR, frame.streamId, { code: 'DIRECT_REFUSED', message }));
    if (frame.streamId === 0 || frame.streamId % 2 === 0 || link.streams.has(frame.streamId)) {
      return link.close(new ConnectError('PROTOCOL_ERROR', `stream id ${frame.streamId} is not a new odd id`));
    }
    // The reaching agent names the service as it reaches it (alias/service through a share); the ticket names the
    // service as this agent exposes it, and so does the end-to-end handshake.
    let wanted: string | undefined;
    try {
      wanted = parseReachName(request.service).service;
    } catch {
      wanted = undefined;
    }
    if (wanted !== claims.svc || (claims.share === undefined && request.service !== claims.svc)) return refuse('this ticket does not open that service');
    const now = Date.now();
    if (now > claims.exp + DIRECT_CLOCK_SKEW_MS) return refuse('the ticket expired; ask the hub for a new one');
    try {
      this.checkRevoked(claims, now);
    } catch (err) {
      return refuse((err as Error).message);
    }
    const notice: OpenNotice = {
      service: claims.svc,
      from: {
        agentId: claims.from,
        label: claims.label,
        ...(link.socket.remoteAddress ? { ip: link.socket.remoteAddress } : {}),
        identityKey: claims.idk,
        staticKey: claims.sk,
      },
      ...(claims.share ? { share: claims.share } : {}),
      ...(request.e2e ? { e2e: request.e2e } : {}),
      ...(request.plain && claims.plain ? { plain: true } : {}),
    };
    const stream = new TunnelStream(frame.streamId, link, claims.svc);
    serveOpen(conn, stream, notice, 'direct', (open) =>
      this.options.onOpen({
        ...open,
        accept: () => {
          opened.set(stream, Date.now());
          open.accept();
        },
      }),
    );
  }
}

/**
 * Batches direct stream reports to the hub: sent once a second, at most `max` kept while the hub cannot be told
 * (the oldest are dropped then, and counted).
 */
export function createDirectReporter(send: (streams: DirectStreamReport[]) => Promise<unknown>, max = 4096) {
  let queue: DirectStreamReport[] = [];
  let timer: NodeJS.Timeout | undefined;
  let dropped = 0;
  const flush = () => {
    timer = undefined;
    const batch = queue.splice(0, 256);
    if (batch.length === 0) return;
    send(batch).then(
      () => queue.length > 0 && schedule(),
      () => {
        queue = [...batch, ...queue];
        if (queue.length > max) {
          dropped += queue.length - max;
          queue = queue.slice(queue.length - max);
        }
        schedule();
      },
    );
  };
  const schedule = () => {
    timer ??= setTimeout(flush, 1000);
    timer.unref();
  };
  return {
    report(stream: DirectStreamReport): void {
      queue.push(stream);
      if (queue.length > max) {
        queue.shift();
        dropped++;
      }
      schedule();
    },
    get dropped(): number {
      return dropped;
    },
    stop(): void {
      clearTimeout(timer);
    },
  };
}
