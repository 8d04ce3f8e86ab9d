/**
 * One direct TCP connection between two agents, once its hello was proven (direct-server.ts, direct-dialer.ts): the
 * frames of the hub connection, concatenated, for the streams of one ticket's service. Stream credit is end to end
 * as through the hub; there is no connection window (TCP's own holds the sender back). The reaching agent opens the
 * streams (odd ids) and pings; each end closes a connection that said nothing for DIRECT_IDLE_MS.
 */

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  ConnectError,
  DIRECT_IDLE_MS,
  DIRECT_PING_MS,
  DIRECT_SUSPECT_MS,
  FrameDecoder,
  FrameType,
  encodeFrame,
  parseErrorPayload,
  readWindowIncrement,
  type ErrorBody,
  type Frame,
} from '@private-connect/protocol';
import type { StreamTransport, TunnelStream } from '@private-connect/tunnel';

export interface DirectLinkEvents {
  /** An OPEN from the other end (the exposing side serves it). */
  open: [Frame];
  /** OPEN_OK or OPEN_ERROR (the opening side settles its open). */
  answer: [Frame];
  /** The link answers again after it went quiet (opening side). */
  healthy: [];
  /** Nothing came back for DIRECT_SUSPECT_MS (opening side): new streams should go elsewhere meanwhile. */
  suspect: [];
  /** The TCP connection is gone; every stream on it was aborted. */
  closed: [ConnectError];
  /** A stream on it was reset for a reason other than its local end closing. */
  streamFailed: [{ stream: TunnelStream; error: ErrorBody; by: 'local' | 'remote' }];
  /** A stream on it ended (counted and reported by the exposing side). */
  streamEnded: [TunnelStream];
}

export class DirectLink extends EventEmitter<DirectLinkEvents> implements StreamTransport {
  readonly streams = new Map<number, TunnelStream>();
  /** DATA payloads come as the pieces they arrived in: a record is decrypted from them without being joined first. */
  private readonly decoder = new FrameDecoder({ dataPieces: true });
  private lastHeard = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private quiet = false;
  private closedWith: ConnectError | undefined;
  private nextId = 1;

  /**
   * `socket`: the TCP connection after the hello (`rest`: bytes read past it). `pinging`: this end pings and watches
   * for silence (the opening side).
   */
  constructor(
    readonly socket: Socket,
    private readonly pinging: boolean,
    rest?: Buffer,
  ) {
    super();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', (err: Error & { code?: string }) => this.shut(new ConnectError('PEER_GONE', `the direct connection failed: ${err.code ?? err.message}`)));
    socket.on('close', () => this.shut(new ConnectError('PEER_GONE', 'the direct connection closed')));
    this.timer = setInterval(() => this.tick(), pinging ? DIRECT_PING_MS / 2 : DIRECT_IDLE_MS / 4);
    this.timer.unref();
    if (rest && rest.length > 0) queueMicrotask(() => this.onBytes(rest));
    socket.resume();
  }

  /** The other end, as host:port. */
  get remote(): string {
    const host = this.socket.remoteAddress ?? '?';
    return `${host.includes(':') ? `[${host}]` : host}:${this.socket.remotePort ?? 0}`;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Whether new streams may go here: open, and heard from within DIRECT_SUSPECT_MS. */
  get usable(): boolean {
    return !this.closed && !this.quiet;
  }

  /** The next stream id of the opening side. */
  allocateId(): number {
    const id = this.nextId;
    this.nextId += 2;
    return id;
  }

  /**
   * Frames sent in one turn of the event loop (the DATA and WINDOW frames of every stream that moved) leave in one
   * write: corked here, uncorked when the turn's callbacks are done.
   */
  send(frame: Buffer): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    this.socket.write(frame);
  }

  sendPieces(pieces: Buffer[]): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    for (const piece of pieces) this.socket.write(piece);
  }

  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  streamFailed(stream: TunnelStream, error: ErrorBody, by: 'local' | 'remote'): void {
    if (this.streams.get(stream.id) === stream) this.emit('streamFailed', { stream, error, by });
  }

  streamEnded(stream: TunnelStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.emit('streamEnded', stream);
  }

  /** Ends the connection and aborts its streams (their local ends get a reset). */
  close(error = new ConnectError('PEER_GONE', 'the direct connection was closed')): void {
    this.shut(error);
    this.socket.destroy();
  }

  private shut(error: ConnectError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    clearInterval(this.timer);
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const stream of streams) {
      stream.abort();
      this.emit('streamEnded', stream);
    }
    this.socket.destroy();
    this.emit('closed', error);
  }

  private tick(): void {
    if (this.closed) return;
    const silent = Date.now() - this.lastHeard;
    if (silent > DIRECT_IDLE_MS) return this.close(new ConnectError('PEER_GONE', `the direct connection said nothing for ${DIRECT_IDLE_MS / 1000} s`));
    if (!this.pinging) return;
    if (silent > DIRECT_SUSPECT_MS && !this.quiet) {
      this.quiet = true;
      this.emit('suspect');
    }
    const payload = Buffer.allocUnsafe(8);
    payload.writeDoubleBE(Date.now(), 0);
    this.send(encodeFrame(FrameType.PING, 0, payload));
  }

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    this.lastHeard = Date.now();
    if (this.quiet) {
      this.quiet = false;
      this.emit('healthy');
    }
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      return this.close(err instanceof ConnectError ? err : new ConnectError('PROTOCOL_ERROR', String(err)));
    }
    for (const frame of frames) {
      try {
        this.onFrame(frame);
      } catch (err) {
        return this.close(err instanceof ConnectError ? err : new ConnectError('PROTOCOL_ERROR', `a malformed frame: ${String(err)}`));
      }
      if (this.closed) return;
    }
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.OPEN:
        if (this.pinging) throw new ConnectError('PROTOCOL_ERROR', 'the exposing agent opened a stream on a direct connection');
        return void this.emit('open', frame);
      case FrameType.OPEN_OK:
      case FrameType.OPEN_ERROR:
        return void this.emit('answer', frame);
      case FrameType.PING:
        return this.send(encodeFrame(FrameType.PONG, 0, frame.payload));
      case FrameType.PONG:
        return;
      case FrameType.DATA:
      case FrameType.WINDOW:
      case FrameType.CLOSE:
      case FrameType.RESET:
        return this.onStreamFrame(frame);
      default:
        throw new ConnectError('PROTOCOL_ERROR', `frame type ${frame.type} has no place on a direct connection`);
    }
  }

  private onStreamFrame(frame: Frame): void {
    if (frame.streamId === 0) throw new ConnectError('PROTOCOL_ERROR', 'no connection window on a direct connection');
    const stream = this.streams.get(frame.streamId);
    if (!stream) return; // ended here a moment ago; the other end learns of it from our RESET/CLOSE
    const increment = frame.type === FrameType.WINDOW ? readWindowIncrement(frame) : 0;
    const error = frame.type === FrameType.RESET ? parseErrorPayload(frame.payload) : undefined;
    try {
      if (frame.type === FrameType.DATA) {
        const pieces = frame.pieces ?? [frame.payload];
        let length = 0;
        for (const piece of pieces) length += piece.length;
        stream.onRecord(pieces, length, frame.flags);
      }
      else if (frame.type === FrameType.WINDOW) stream.onWindow(increment);
      else if (frame.type === FrameType.CLOSE) stream.onClose();
      else stream.onReset(error!);
    } catch (err) {
      stream.reset('INTERNAL', `the agent failed on this stream: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
