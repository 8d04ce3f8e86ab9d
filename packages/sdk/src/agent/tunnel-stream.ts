/**
 * One multiplexed stream on the agent side, bridged to a local TCP socket, with credit-based flow control:
 * we send at most `sendCredit` bytes before the peer grants more, and grant credit back only for bytes the
 * local socket has accepted, so a slow local reader stops the remote sender instead of filling memory.
 *
 * An end-to-end encrypted stream (`session` set) seals every DATA payload (e2e.ts): credit counts the bytes on the
 * wire (the hub can only see those), so each record costs its plaintext plus E2E_TAG_BYTES. Before CLOSE it sends
 * an empty record; a CLOSE that does not follow one is a stream cut short on the way (E2E_TRUNCATED).
 */

import type { Duplex } from 'node:stream';
import {
  E2E_TAG_BYTES,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  ConnectError,
  INITIAL_STREAM_WINDOW,
  MAX_FRAME_PAYLOAD,
  WINDOW_UPDATE_THRESHOLD,
  encodeFrame,
  encodeJsonFrame,
  encodeWindow,
  writeHeader,
  type E2ESession,
  type ErrorBody,
  type ErrorCode,
} from '@private-connect/protocol';

/** What a stream needs from its connection. */
export interface StreamTransport {
  send(frame: Buffer): void;
  /** Called once when the stream is over; the connection forgets it. */
  streamEnded(stream: TunnelStream): void;
}

/** How long an aborted stream waits before it resets its local socket (see dropSocket). */
const RESET_DELAY_MS = 25;

export class TunnelStream {
  private sendCredit = INITIAL_STREAM_WINDOW;
  /** Bytes received but not yet accepted by the local socket. */
  private unconsumed = 0;
  /** Bytes accepted locally but not yet granted back with WINDOW. */
  private ungranted = 0;
  /** Local bytes waiting for credit (the socket is paused meanwhile). */
  private pending: Buffer | undefined;
  private socket: Duplex | undefined;
  /** DATA received before attach() (plaintext, and its size on the wire); written to the socket by attach(). */
  private early: Array<[Buffer, number]> = [];
  /** The record layer of an end-to-end encrypted stream; undefined for plaintext (--no-e2e on both sides, public links). */
  session: E2ESession | undefined;
  /** The peer's authenticated end marker arrived (encrypted streams). */
  private gotEndMarker = false;
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
      // Both halves ended cleanly: only our last bytes (waiting for credit) and CLOSE are left to send, not a reset.
      if (!this.ended && !(this.localEnded && this.gotClose)) this.reset('STREAM_CLOSED', 'the local connection closed');
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
    for (const [plain, wire] of early) socket.write(plain, () => this.consumed(wire));
    if (this.gotClose) socket.end();
    socket.resume();
  }

  /** A DATA payload from the peer, with the frame's flags. */
  onData(payload: Buffer, flags = 0): void {
    if (this.ended) return;
    const wire = payload.length;
    this.unconsumed += wire;
    if (this.unconsumed > INITIAL_STREAM_WINDOW) {
      return this.reset('FLOW_CONTROL', 'the peer sent more than the window allows');
    }
    const sealed = (flags & FrameFlag.ENCRYPTED) !== 0;
    if (sealed !== (this.session !== undefined)) {
      return this.reset(
        sealed ? 'PROTOCOL_ERROR' : 'E2E_REQUIRED',
        sealed ? 'an encrypted record on a plaintext stream' : 'a plaintext DATA frame on an end-to-end encrypted stream',
      );
    }
    let plain = payload;
    if (this.session) {
      if (this.gotEndMarker) return this.reset('PROTOCOL_ERROR', 'DATA after the end marker');
      try {
        plain = this.session.open(payload);
      } catch (err) {
        return this.reset('E2E_DECRYPT_FAILED', err instanceof ConnectError ? err.message : 'an encrypted record did not authenticate');
      }
      if (plain.length === 0) {
        this.gotEndMarker = true;
        this.consumed(wire);
        return;
      }
    }
    this.bytesIn += plain.length;
    if (!this.socket) {
      this.early.push([plain, wire]);
      return;
    }
    this.socket.write(plain, () => this.consumed(wire));
  }

  /** A WINDOW increment from the peer. */
  onWindow(increment: number): void {
    this.sendCredit += increment;
    if (this.pending) {
      const rest = this.pending;
      this.pending = undefined;
      this.onLocalData(rest);
    } else {
      this.maybeSendClose();
    }
  }

  /** The peer half-closed: end our local writable side once queued writes are flushed. */
  onClose(): void {
    if (this.gotClose || this.ended) return;
    if (this.session && !this.gotEndMarker) return this.reset('E2E_TRUNCATED', 'CLOSE without the authenticated end marker: the stream was cut short on the way');
    this.gotClose = true;
    this.socket?.end();
    this.finishIfDone();
  }

  /** The peer (or the hub) aborted the stream. */
  onReset(error: ErrorBody): void {
    if (this.ended) return;
    this.end();
    this.dropSocket(error.code);
  }

  /** Aborts the stream: tells the peer, destroys the local socket. */
  reset(code: ErrorCode, message: string): void {
    if (this.ended) return;
    this.transport.send(encodeJsonFrame(FrameType.RESET, this.id, { code, message }));
    this.end();
    this.dropSocket(code);
  }

  /** The connection to the hub is gone: drop everything without sending. */
  abort(): void {
    if (this.ended) return;
    this.end();
    this.dropSocket('PEER_GONE');
  }

  /**
   * Ends the local socket of an aborted stream. Unless the other side's local connection merely closed
   * (STREAM_CLOSED), the stream was cut: a failed record, a dead peer or hub, a revoked share. The local client then
   * gets a TCP reset, never a clean end it could take for a complete answer. The reset waits RESET_DELAY_MS: a reset
   * sent while the application has not yet read our last write reaches it as a plain end of stream (seen on Linux
   * loopback), the very confusion the reset is there to prevent.
   */
  private dropSocket(code: ErrorCode): void {
    const socket = this.socket;
    if (!socket) return;
    if (code === 'STREAM_CLOSED' || !('resetAndDestroy' in socket) || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.pause();
    setTimeout(() => {
      if (!socket.destroyed) (socket as Duplex & { resetAndDestroy(): void }).resetAndDestroy();
    }, RESET_DELAY_MS).unref();
  }

  private onLocalData(chunk: Buffer): void {
    const overhead = this.session ? E2E_TAG_BYTES : 0;
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, this.sendCredit - overhead, MAX_FRAME_PAYLOAD - overhead);
      if (n <= 0) {
        this.pending = chunk.subarray(offset);
        this.socket!.pause();
        return;
      }
      this.sendData(chunk, offset, offset + n);
      this.bytesOut += n;
      offset += n;
    }
    if (this.socket!.isPaused()) this.socket!.resume();
    this.maybeSendClose();
  }

  /** Sends chunk[start, end) as one DATA frame, sealed on an encrypted stream; it uses the credit of its wire size. */
  private sendData(chunk: Buffer, start: number, end: number): void {
    const session = this.session;
    const length = end - start + (session ? E2E_TAG_BYTES : 0);
    const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
    writeHeader(frame, FrameType.DATA, session ? FrameFlag.ENCRYPTED : 0, this.id, length);
    if (session) session.sealInto(chunk, start, end, frame, FRAME_HEADER_SIZE);
    else chunk.copy(frame, FRAME_HEADER_SIZE, start, end);
    this.transport.send(frame);
    this.sendCredit -= length;
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
    if (this.session) {
      // The end marker is an empty record, sent like any other: it waits for credit.
      if (this.sendCredit < E2E_TAG_BYTES) return;
      this.sendData(EMPTY, 0, 0);
    }
    this.sentClose = true;
    this.transport.send(encodeFrame(FrameType.CLOSE, this.id));
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

const EMPTY = Buffer.alloc(0);
