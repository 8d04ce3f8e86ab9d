/**
 * The connection window (frame.ts, "Flow control"): the hub's ledger of one sender's DATA that it has not yet
 * written out (ConnectionCredit), and the sender's side of the same window (SendWindow).
 */

import { ProtocolError } from './errors.js';
import { MAX_WINDOW } from './frame.js';
import { CONNECTION_WINDOW, CONNECTION_WINDOW_UPDATE_THRESHOLD } from './limits.js';

/**
 * What the hub holds of one sender's DATA. `receive` counts a DATA payload as it arrives and refuses one beyond the
 * window (FLOW_CONTROL); `release` counts bytes written out to their receiver (or dropped) and grants them back
 * through `grant` in steps of at least `threshold`.
 */
export class ConnectionCredit {
  /** Bytes received and not yet written out. */
  private unwritten = 0;
  /** Bytes written out and not yet granted back. */
  private ungranted = 0;

  constructor(
    private readonly grant: (increment: number) => void,
    readonly window = CONNECTION_WINDOW,
    private readonly threshold = CONNECTION_WINDOW_UPDATE_THRESHOLD,
  ) {}

  /** DATA bytes of this sender that the hub holds now. */
  get held(): number {
    return this.unwritten;
  }

  /** A DATA payload of `length` bytes arrived; throws FLOW_CONTROL when the sender had not that much credit. */
  receive(length: number): void {
    const credit = this.window - this.unwritten - this.ungranted;
    if (length > credit) {
      throw new ProtocolError('FLOW_CONTROL', `sent ${length} bytes of DATA with ${credit} bytes of connection credit left`);
    }
    this.unwritten += length;
  }

  /** `length` bytes counted by `receive` were written out to their receiver, or dropped: they go back to the sender. */
  release(length: number): void {
    this.unwritten -= length;
    this.ungranted += length;
    if (this.ungranted >= this.threshold) {
      const increment = this.ungranted;
      this.ungranted = 0;
      this.grant(increment);
    }
  }
}

/**
 * A sender's connection credit: what it may still send, all its streams together, and the streams waiting for
 * more. A stream that finds too little calls `wait`; every grant wakes the waiting streams in the order they came.
 */
export class SendWindow {
  private credit: number;
  /** Callbacks of the streams waiting for credit; emptied by each grant (a stream still short waits again). */
  private readonly waiting = new Set<() => void>();

  constructor(readonly window = CONNECTION_WINDOW) {
    this.credit = window;
  }

  /** Bytes that may be sent now. */
  get available(): number {
    return this.credit;
  }

  /** `length` bytes of DATA were sent. */
  consume(length: number): void {
    this.credit -= length;
  }

  /** `wake` runs on the next grant (once, however often it was registered before). */
  wait(wake: () => void): void {
    this.waiting.add(wake);
  }

  /** The receiver granted `increment` more bytes (WINDOW on stream 0); throws FLOW_CONTROL past MAX_WINDOW. */
  grant(increment: number): void {
    if (this.credit + increment > MAX_WINDOW) {
      throw new ProtocolError('FLOW_CONTROL', `WINDOW on stream 0 grows the connection window beyond ${MAX_WINDOW}`);
    }
    this.credit += increment;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (let i = 0; i < waiting.length; i++) {
      if (this.credit <= 0) {
        // Used up: the streams not woken keep their turn, ahead of those that were woken and wait again.
        const again = [...this.waiting];
        this.waiting.clear();
        for (const wake of [...waiting.slice(i), ...again]) this.waiting.add(wake);
        return;
      }
      waiting[i]!();
    }
  }

  /** A new connection: the whole window again, nobody waiting (the streams of the old one are gone). */
  reset(): void {
    this.credit = this.window;
    this.waiting.clear();
  }
}
