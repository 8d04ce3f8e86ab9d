/**
 * One multiplexed stream on the agent side, bridged to a local TCP socket, with credit-based flow control:
 * we send at most `sendCredit` bytes before the peer grants more, and grant credit back only for bytes the
 * local socket has accepted, so a slow local reader stops the remote sender instead of filling memory.
 */

import type { Duplex } from 'node:stream';
import {
  FRAME_HEADER_SIZE,
  FrameType,
  INITIAL_STREAM_WINDOW,
  MAX_FRAME_PAYLOAD,
  WINDOW_UPDATE_THRESHOLD,
  encodeJsonFrame,
  encodeWindow,
  writeHeader,
  type ErrorBody,
  type ErrorCode,
} from '@private-connect/protocol';

/** What a stream needs from its connection. */
export interface StreamTransport {
  send(frame: Buffer): void;
  /** Called once when the stream is over; the connection forgets it. */
  streamEnded(stream: TunnelStream): void;
}

export class TunnelStream {
  private sendCredit = INITIAL_STREAM_WINDOW;
  /** Bytes received but not yet accepted by the local socket. */
  private unconsumed = 0;
  /** Bytes accepted locally but not yet granted back with WINDOW. */
  private ungranted = 0;
  /** Local bytes waiting for credit (the socket is paused meanwhile). */
  private pending: Buffer | undefined;
  private socket: Duplex | undefined;
  /** DATA received before attach(); written to the socket by attach(). Bounded by the window like `unconsumed`. */
  private early: Buffer[] = [];
  private sentClose = false;
  private gotClose = false;
  private localEnded = false;
  private ended = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    readonly id: number,
    private readonly transport: StreamTransport,
    readonly service: string,
  ) {}

  /** Connects the stream to a local socket (or any Duplex, e.g. one side of duplexPair); it is resumed. */
  attach(socket: Duplex): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onLocalData(chunk));
    socket.on('end', () => {
      this.localEnded = true;
      this.maybeSendClose();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!this.ended) this.reset('STREAM_CLOSED', 'the local connection closed');
    });
    if (this.ended) {
      // Reset (or the hub connection lost) between OPEN_OK and attach.
      this.early = [];
      socket.destroy();
      return;
    }
    // What the peer sent between OPEN_OK and attach (a server that speaks first: its bytes can arrive in the
    // same read as OPEN_OK, before the opener's promise callback runs).
    const early = this.early;
    this.early = [];
    for (const payload of early) socket.write(payload, () => this.consumed(payload.length));
    if (this.gotClose) socket.end();
    socket.resume();
  }

  /** A DATA payload from the peer. */
  onData(payload: Buffer): void {
    if (this.ended) return;
    this.unconsumed += payload.length;
    if (this.unconsumed > INITIAL_STREAM_WINDOW) {
      return this.reset('FLOW_CONTROL', 'the peer sent more than the window allows');
    }
    this.bytesIn += payload.length;
    if (!this.socket) {
      this.early.push(payload);
      return;
    }
    const length = payload.length;
    this.socket.write(payload, () => this.consumed(length));
  }

  /** A WINDOW increment from the peer. */
  onWindow(increment: number): void {
    this.sendCredit += increment;
    if (this.pending) {
      const rest = this.pending;
      this.pending = undefined;
      this.onLocalData(rest);
    }
  }

  /** The peer half-closed: end our local writable side once queued writes are flushed. */
  onClose(): void {
    if (this.gotClose || this.ended) return;
    this.gotClose = true;
    this.socket?.end();
    this.finishIfDone();
  }

  /** The peer (or the hub) aborted the stream. */
  onReset(error: ErrorBody): void {
    if (this.ended) return;
    this.end();
    this.socket?.destroy(error.code === 'STREAM_CLOSED' ? undefined : undefined);
  }

  /** Aborts the stream: tells the peer, destroys the local socket. */
  reset(code: ErrorCode, message: string): void {
    if (this.ended) return;
    this.transport.send(encodeJsonFrame(FrameType.RESET, this.id, { code, message }));
    this.end();
    this.socket?.destroy();
  }

  /** The connection to the hub is gone: drop everything without sending. */
  abort(): void {
    if (this.ended) return;
    this.end();
    this.socket?.destroy();
  }

  private onLocalData(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, this.sendCredit, MAX_FRAME_PAYLOAD);
      if (n === 0) {
        this.pending = chunk.subarray(offset);
        this.socket!.pause();
        return;
      }
      const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + n);
      writeHeader(frame, FrameType.DATA, 0, this.id, n);
      chunk.copy(frame, FRAME_HEADER_SIZE, offset, offset + n);
      this.transport.send(frame);
      this.sendCredit -= n;
      this.bytesOut += n;
      offset += n;
    }
    if (this.socket!.isPaused()) this.socket!.resume();
    this.maybeSendClose();
  }

  private consumed(length: number): void {
    if (this.ended) return;
    this.unconsumed -= length;
    this.ungranted += length;
    if (this.ungranted >= WINDOW_UPDATE_THRESHOLD) {
      this.transport.send(encodeWindow(this.id, this.ungranted));
      this.ungranted = 0;
    }
  }

  private maybeSendClose(): void {
    if (!this.localEnded || this.pending || this.sentClose || this.ended) return;
    this.sentClose = true;
    this.transport.send(Buffer.from([FrameType.CLOSE, 0, ...u32(this.id), 0, 0, 0, 0]));
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (this.sentClose && this.gotClose) this.end();
  }

  private end(): void {
    this.ended = true;
    this.transport.streamEnded(this);
  }
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
