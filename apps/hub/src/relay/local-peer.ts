/**
 * The hub as the opening side of streams: public links and hub TCP ports open streams to an exposing agent from
 * inside the hub. Each stream is a TunnelStream (the SDK's agent-side stream, with the same credit flow control)
 * whose frames go straight into the relay functions instead of over a WebSocket, and frames for it come back
 * through `send`. The opener attaches the stream to its local end: a TCP socket (hub ports), or a public link's
 * HTTP connection to the app (sharing/link-upstream.ts).
 *
 * As a sender the hub keeps a connection window per receiving peer (not one for all its streams, see streams.ts):
 * an agent that stops reading holds back the public links and hub ports that feed it, and no others.
 */

import {
  ConnectError,
  ConnectionCredit,
  FrameType,
  SendWindow,
  MAX_STREAM_ID,
  decodeFrame,
  parseErrorPayload,
  readWindowIncrement,
  type OpenNotice,
} from '@private-connect/protocol';
import { TunnelStream, type StreamTransport } from '@private-connect/tunnel';
import type { Logger } from '../logger.js';
import type { StreamTarget } from './router.js';
import type { RelayStats } from './relay-stats.js';
import { abortPair, relayStreamFrame, type RelayPeer, type StreamEnd, type StreamTag } from './streams.js';

interface PendingOpen {
  stream: TunnelStream;
  resolve(stream: TunnelStream): void;
  reject(err: ConnectError): void;
}

export class LocalPeer implements RelayPeer {
  readonly streams = new Map<number, StreamEnd>();
  private readonly locals = new Map<number, TunnelStream>();
  private readonly opening = new Map<number, PendingOpen>();
  private nextId = 1;
  /**
   * The connection window of the hub's streams towards each receiving peer: the relay's ledger and the streams'
   * side of it. Weak: an entry goes with its peer (an agent connection, a hub link) once nothing else holds it.
   */
  private readonly windows = new WeakMap<RelayPeer, { credit: ConnectionCredit; send: SendWindow }>();

  constructor(
    private readonly stats: RelayStats,
    private readonly log: Logger,
  ) {}

  /** Number of streams the hub itself has open. */
  get streamCount(): number {
    return this.locals.size + this.opening.size;
  }

  /** Opens a stream to `target`'s service; resolves once the exposing agent accepted it. */
  open(target: StreamTarget, notice: OpenNotice, tag?: StreamTag): Promise<TunnelStream> {
    const id = this.nextId;
    this.nextId = this.nextId >= MAX_STREAM_ID - 2 ? 1 : this.nextId + 2;
    const stream = new TunnelStream(id, this.transportOf(id), notice.service);
    return new Promise((resolve, reject) => {
      this.opening.set(id, { stream, resolve, reject });
      const fail = (code: ConnectError['code'], message: string) => {
        this.opening.delete(id);
        reject(new ConnectError(code, message));
      };
      // Through the same open path as an agent's OPEN: checks, timer, notice, pair bookkeeping.
      const refused = target.acceptStream(this, id, notice, tag);
      if (refused) fail(refused.code, refused.message);
    });
  }

  /** Cuts every hub-opened stream whose tag matches (a revoked link, a released port). */
  abortWhere(match: (tag: StreamTag) => boolean, code: ConnectError['code'], message: string): number {
    let n = 0;
    for (const end of [...this.streams.values()]) {
      if (end.tag && match(end.tag)) {
        abortPair(end, code, message);
        n++;
      }
    }
    return n;
  }

  /** The hub's DATA towards `receiver` counts against the window of the hub's streams to that peer. */
  windowFor(receiver: RelayPeer): ConnectionCredit {
    let window = this.windows.get(receiver);
    if (!window) {
      const send = new SendWindow();
      window = { credit: new ConnectionCredit((increment) => send.grant(increment)), send };
      this.windows.set(receiver, window);
    }
    return window.credit;
  }

  /** How our TunnelStream `id` sends: into the relay, as if the frame had come from an agent, within the window of its receiver. */
  private transportOf(id: number): StreamTransport {
    const windows = this.windows;
    const streams = this.streams;
    return {
      send: (raw) => this.fromStream(raw),
      streamEnded: (stream) => {
        if (this.locals.get(stream.id) === stream) this.locals.delete(stream.id);
      },
      get window() {
        const end = streams.get(id);
        return end && windows.get(end.peer.conn)?.send;
      },
    };
  }

  /**
   * A frame for one of our streams, forwarded by the relay from the exposing agent. The hub is the end of these
   * streams: relayed DATA is taken at once (`written`), and bounded by the stream's credit, which the TunnelStream
   * grants back only as its local socket takes the bytes.
   */
  send(raw: Buffer, written?: () => void): void {
    written?.();
    const frame = decodeFrame(raw);
    const id = frame.streamId;
    switch (frame.type) {
      case FrameType.OPEN_OK: {
        const pending = this.opening.get(id);
        if (!pending) return;
        this.opening.delete(id);
        this.locals.set(id, pending.stream);
        return pending.resolve(pending.stream);
      }
      case FrameType.OPEN_ERROR: {
        const pending = this.opening.get(id);
        if (!pending) return;
        this.opening.delete(id);
        const body = parseErrorPayload(frame.payload);
        return pending.reject(new ConnectError(body.code, body.message));
      }
      case FrameType.DATA:
        return this.locals.get(id)?.onData(frame.payload);
      case FrameType.WINDOW:
        return this.locals.get(id)?.onWindow(readWindowIncrement(frame));
      case FrameType.CLOSE:
        return this.locals.get(id)?.onClose();
      case FrameType.RESET: {
        const pending = this.opening.get(id);
        if (pending) {
          this.opening.delete(id);
          const body = parseErrorPayload(frame.payload);
          return pending.reject(new ConnectError(body.code, body.message));
        }
        return this.locals.get(id)?.onReset(parseErrorPayload(frame.payload));
      }
    }
  }

  /** A frame one of our TunnelStreams sends towards the exposing agent. */
  private fromStream(raw: Buffer): void {
    const frame = decodeFrame(raw);
    const end = this.streams.get(frame.streamId);
    if (!end) return; // the pair is already gone (reset by the other side)
    try {
      relayStreamFrame(end, frame, raw, this.stats);
    } catch (err) {
      this.log.error({ err }, 'hub-opened stream broke the protocol');
      abortPair(end, 'INTERNAL', 'the hub-side stream failed');
    }
  }

}
