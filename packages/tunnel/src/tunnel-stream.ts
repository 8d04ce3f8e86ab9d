/**
 * One multiplexed stream on the agent side, bridged to a local TCP socket, with credit-based flow control:
 * we send at most `sendCredit` bytes before the peer grants more, and grant credit back only for bytes the
 * local socket has accepted, so a slow local reader stops the remote sender instead of filling memory. Besides, all
 * streams of a connection share its connection window (the transport's SendWindow, granted by the hub as it writes
 * our bytes out): a stream sends only what both allow.
 *
 * An end-to-end encrypted stream (`session` set) seals every DATA payload (e2e.ts): credit counts the bytes on the
 * wire (the hub can only see those), so each record costs its plaintext plus E2E_TAG_BYTES. Before CLOSE it sends
 * an empty record; a CLOSE that does not follow one is a stream cut short on the way (E2E_TRUNCATED).
 */

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
  shiftBytes,
  writeHeader,
  type E2ESession,
  type SendWindow,
  type ErrorBody,
  type ErrorCode,
} from '@private-connect/protocol';

/**
 * The local end a stream is attached to: a TCP socket, one side of duplexPair, or anything else that behaves as a
 * socket does for these calls (the hub's public links read HTTP off the stream without a Duplex in between).
 */
export interface StreamSocket {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  write(chunk: Buffer, callback: () => void): unknown;
  end(): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
}

/** What a stream needs from its connection. */
export interface StreamTransport {
  send(frame: Buffer): void;
  /**
   * Sends one frame given as pieces (its header, then its payload's parts), on a byte-stream transport that writes
   * them as they are (a direct connection): a record's sealed parts go out without being joined into one buffer.
   * Without it, DATA frames are built whole and go through send().
   */
  sendPieces?(pieces: Buffer[]): void;
  /** Called once when the stream is over; the connection forgets it. */
  streamEnded(stream: TunnelStream): void;
  /** The connection window this stream's DATA counts against; none: only the stream's own credit limits it. */
  readonly window?: SendWindow | undefined;
  /**
   * The stream was reset for a reason other than its local connection closing (STREAM_CLOSED): a record that failed
   * its check, a cut stream, a revoked share. `by`: 'local' when this end found the fault and sent the RESET,
   * 'remote' when the RESET came from the other end (the peer agent, or the hub). Called before streamEnded(); the
   * RESET frame is the only other trace of it, so this is where the agent logs it.
   */
  streamFailed?(stream: TunnelStream, error: ErrorBody, by: 'local' | 'remote'): void;
}

/**
 * Largest DATA payload an agent sends: reads gathered in one turn of the event loop are cut into records of this size.
 * An eighth of the window, so that a stream at full speed always has records in flight while credit comes back.
 */
export const RECORD_BYTES = Math.min(MAX_FRAME_PAYLOAD, INITIAL_STREAM_WINDOW / 8);

/** How long an aborted stream waits, once its writes have left, before it resets its local socket (see dropSocket). */
const RESET_DELAY_MS = 200;
/** Longest an aborted stream waits for its writes to leave (a client that stopped reading) before it resets anyway. */
const RESET_FLUSH_LIMIT_MS = 5_000;

export class TunnelStream {
  private sendCredit = INITIAL_STREAM_WINDOW;
  /** Bytes received but not yet accepted by the local socket. */
  private unconsumed = 0;
  /** Bytes accepted locally but not yet granted back with WINDOW. */
  private ungranted = 0;
  /**
   * Local bytes not yet sent: the reads of one turn of the event loop, gathered into one record (flushed by
   * setImmediate, or at once past RECORD_BYTES), or bytes waiting for credit (the socket is paused meanwhile).
   */
  private queue: Buffer[] = [];
  private queued = 0;
  private flushScheduled = false;
  private socket: StreamSocket | undefined;
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
  /** Registered with the connection window while this stream waits for connection credit. */
  private readonly wake = () => this.flush();
  /**
   * An opener that sends before OPEN_OK (first bytes with the open): what it sent, until the open is confirmed, so
   * that an open refused for a reason a retry cures (E2E_SESSION_UNKNOWN) can send it again under new keys.
   */
  private unconfirmed: Buffer[] | undefined;
  /** Sends nothing until release(): a retried open waits for its new handshake. */
  private held = false;

  constructor(
    /** The stream's id on its connection; a retried open moves the stream to a new id (retryAs). */
    public id: number,
    private readonly transport: StreamTransport,
    readonly service: string,
  ) {}

  /** Connects the stream to a local socket (or one side of duplexPair, or any StreamSocket); it is resumed. */
  attach(socket: StreamSocket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onLocalData(chunk));
    socket.on('end', () => {
      this.localEnded = true;
      this.flush();
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

  /** Sends before the open is confirmed (its keys are ready): keeps what it sends until confirmOpen(). */
  sendBeforeConfirmed(): void {
    this.unconfirmed = [];
  }

  /** OPEN_OK arrived: what was sent early arrived with it. */
  confirmOpen(): void {
    this.unconfirmed = undefined;
  }

  /**
   * The open was refused before anything came back, and is tried again as stream `id`: what was sent before goes
   * again, first, once release() gives the new keys. The peer never saw any of it (the refused stream ended at the
   * exposing agent before it took a byte).
   */
  retryAs(id: number): void {
    const again = this.unconfirmed ?? [];
    this.unconfirmed = undefined;
    let bytes = 0;
    for (const part of again) bytes += part.length;
    this.id = id;
    this.held = true;
    this.session = undefined;
    this.queue = [...again, ...this.queue];
    this.queued += bytes;
    this.bytesOut -= bytes;
    this.sendCredit = INITIAL_STREAM_WINDOW;
    this.sentClose = false;
  }

  /** The retried open was answered: send under `session` (undefined: plaintext). */
  release(session: E2ESession | undefined): void {
    this.session = session;
    this.held = false;
    this.flush();
  }

  /** The open of a stream that sent early was refused: its local socket gets a reset, nothing is sent. */
  failOpen(error: ErrorBody): void {
    if (this.ended) return;
    this.end();
    this.dropSocket(error.code);
  }

  /** A DATA payload from the peer, with the frame's flags. */
  onData(payload: Buffer, flags = 0): void {
    this.onRecord([payload], payload.length, flags);
  }

  /** A DATA payload from the peer as the pieces it arrived in (`length` bytes in all), with the frame's flags. */
  onRecord(pieces: readonly Buffer[], length: number, flags = 0): void {
    if (this.ended) return;
    const wire = length;
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
    let plain = pieces;
    if (this.session) {
      if (this.gotEndMarker) return this.reset('PROTOCOL_ERROR', 'DATA after the end marker');
      try {
        plain = this.session.openPieces(pieces, length);
      } catch (err) {
        return this.reset('E2E_DECRYPT_FAILED', err instanceof ConnectError ? err.message : 'an encrypted record did not authenticate');
      }
      if (plain.length === 0) {
        this.gotEndMarker = true;
        this.consumed(wire);
        return;
      }
    }
    const parts = plain.filter((p) => p.length > 0);
    if (parts.length === 0) return this.consumed(wire);
    // The record's credit comes back once its last piece was taken by the local socket; its pieces leave in one
    // write (writev) where the socket can be corked.
    const socket = this.socket as (StreamSocket & { cork?(): void; uncork?(): void }) | undefined;
    const cork = parts.length > 1 && socket?.cork !== undefined;
    if (cork) socket!.cork!();
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const last = i === parts.length - 1;
      this.bytesIn += part.length;
      if (!this.socket) this.early.push([part, last ? wire : 0]);
      else if (last) this.socket.write(part, () => this.consumed(wire));
      else this.socket.write(part, noop);
    }
    if (cork) socket!.uncork!();
  }

  /** A WINDOW increment from the peer. */
  onWindow(increment: number): void {
    this.sendCredit += increment;
    this.flush();
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
    if (error.code !== 'STREAM_CLOSED') this.transport.streamFailed?.(this, error, 'remote');
    this.end();
    this.dropSocket(error.code);
  }

  /** Aborts the stream: tells the peer, destroys the local socket. */
  reset(code: ErrorCode, message: string): void {
    if (this.ended) return;
    this.transport.send(encodeJsonFrame(FrameType.RESET, this.id, { code, message }));
    if (code !== 'STREAM_CLOSED') this.transport.streamFailed?.(this, { code, message }, 'local');
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
   * gets a TCP reset, never a clean end it could take for a complete answer.
   *
   * The reset waits until what we wrote has left this process, then RESET_DELAY_MS more: on Linux, a reset that
   * arrives while the application still has unread bytes reaches it as a plain end of stream (and some of those
   * bytes are dropped), the very confusion the reset is there to prevent. An application that lags further behind
   * than that still sees an end; no TCP-level signal can tell us when it has read.
   */
  private dropSocket(code: ErrorCode): void {
    const socket = this.socket;
    if (!socket) return;
    if (code === 'STREAM_CLOSED' || !('resetAndDestroy' in socket) || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.pause();
    const giveUpAt = Date.now() + RESET_FLUSH_LIMIT_MS;
    const check = () => {
      if (socket.destroyed) return;
      if (socket.writableLength > 0 && Date.now() < giveUpAt) return void setTimeout(check, 10).unref();
      setTimeout(() => {
        if (!socket.destroyed) (socket as StreamSocket & { resetAndDestroy(): void }).resetAndDestroy();
      }, RESET_DELAY_MS).unref();
    };
    check();
  }

  /**
   * A read from the local socket. Reads that arrive in the same turn of the event loop (libuv reads up to 64 KiB at a
   * time, and a busy socket gives several in a row) leave as one record: fewer frames, fewer seals, fewer writes
   * on the way. A lone read is sent when the turn ends, so interactive traffic is not held back.
   */
  private onLocalData(chunk: Buffer): void {
    if (this.ended) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued >= RECORD_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /**
   * Sends what is queued, as far as the stream's and the connection's credit go: records of at most RECORD_BYTES;
   * pauses the socket at no credit (a WINDOW for the stream, or a grant of the connection window, flushes again).
   */
  private flush(): void {
    if (this.ended) return;
    if (this.held) {
      this.socket?.pause();
      return;
    }
    const overhead = this.session ? E2E_TAG_BYTES : 0;
    while (this.queued > 0) {
      const n = Math.min(this.queued, this.sendCredit - overhead, RECORD_BYTES, this.connectionCredit() - overhead);
      if (n <= 0) {
        this.socket?.pause();
        this.waitForConnectionCredit(overhead);
        return;
      }
      this.sendData(n);
      this.bytesOut += n;
    }
    if (this.socket?.isPaused()) this.socket.resume();
    this.maybeSendClose();
  }

  /** Sends the first `n` queued bytes as one DATA frame, sealed on an encrypted stream; it uses the credit of its wire size. */
  private sendData(n: number): void {
    const session = this.session;
    const length = n + (session ? E2E_TAG_BYTES : 0);
    if (this.transport.sendPieces) {
      const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      writeHeader(header, FrameType.DATA, session ? FrameFlag.ENCRYPTED : 0, this.id, length);
      const parts = this.take(n);
      this.unconfirmed?.push(...parts);
      this.transport.sendPieces([header, ...(session ? session.seal(parts) : parts)]);
      this.sendCredit -= length;
      this.transport.window?.consume(length);
      return;
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
    writeHeader(frame, FrameType.DATA, session ? FrameFlag.ENCRYPTED : 0, this.id, length);
    const parts = this.take(n);
    this.unconfirmed?.push(...parts);
    if (session) session.sealInto(parts, frame, FRAME_HEADER_SIZE);
    else {
      let at = FRAME_HEADER_SIZE;
      for (const part of parts) at += part.copy(frame, at);
    }
    const window = this.transport.window;
    this.transport.send(frame);
    this.sendCredit -= length;
    window?.consume(length);
  }

  /** What the connection window lets this stream send now. */
  private connectionCredit(): number {
    return this.transport.window?.available ?? Infinity;
  }

  /** When the connection window is what holds this stream back, it flushes again on the window's next grant. */
  private waitForConnectionCredit(needed: number): void {
    const window = this.transport.window;
    if (window && window.available <= needed) window.wait(this.wake);
  }

  /** Removes the first `n` bytes from the queue, as the pieces they are in. */
  private take(n: number): Buffer[] {
    this.queued -= n;
    return shiftBytes(this.queue, n);
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
    if (!this.localEnded || this.queued > 0 || this.sentClose || this.ended || this.held) return;
    if (this.session) {
      // The end marker is an empty record, sent like any other: it waits for credit.
      if (this.sendCredit < E2E_TAG_BYTES) return;
      if (this.connectionCredit() < E2E_TAG_BYTES) return this.waitForConnectionCredit(E2E_TAG_BYTES);
      this.sendData(0);
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

const noop = (): void => undefined;
