/**
 * Two connected in-memory Duplex streams: what one side writes, the other reads. Backpressure crosses over: a
 * write is acknowledged only when the other side's reader has room, so a stream bridged to a tunnel stream still
 * grants credit only for bytes that were consumed. Ending one side ends the other's readable; destroying one
 * destroys both. Each side has the no-op socket methods (setNoDelay, setTimeout, ...) that Node's HTTP client
 * and server call, so a side can stand in for a socket there.
 */

import { Duplex } from 'node:stream';

class PairSide extends Duplex {
  other!: PairSide;
  /** The other side's write callback, held until this side's reader asks for more. */
  private held: ((error?: Error | null) => void) | undefined;
  remoteAddress: string | undefined;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.other.destroyed) return callback(new Error('the other side of the pair is closed'));
    if (this.other.push(chunk)) callback();
    else this.other.held = callback;
  }

  override _read(): void {
    const held = this.held;
    this.held = undefined;
    held?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.other.destroyed) this.other.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const held = this.held;
    this.held = undefined;
    held?.(error ?? new Error('the pair is closed'));
    if (!this.other.destroyed) this.other.destroy();
    callback(error);
  }

  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

export type PairedDuplex = Duplex & { remoteAddress: string | undefined; setNoDelay(): unknown; setKeepAlive(): unknown };

/** Returns two Duplex streams joined back to back. */
export function duplexPair(): [PairedDuplex, PairedDuplex] {
  const a = new PairSide();
  const b = new PairSide();
  a.other = b;
  b.other = a;
  return [a, b];
}
