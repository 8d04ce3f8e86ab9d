/**
 * The client side of the soak: a seeded random generator (so a run can be replayed with SOAK_SEED) and one echo
 * transfer through a reach port, classified as completed, deliberately aborted, interrupted, stalled or corrupt.
 * Every byte that comes back is compared with what was sent as it arrives, so a wrong byte is caught (with its
 * offset) even in a transfer that is cut short; a completed transfer is also checked by SHA-256 of both sides.
 */

import { createHash } from 'node:crypto';
import type net from 'node:net';
import { chunks, connect, drained } from './tcp.js';

/** A small seeded generator (mulberry32): the same seed gives the same choices. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return { next, int, pick: (items) => items[int(0, items.length - 1)]!, chance: (p) => next() < p };
}

export interface TransferPlan {
  port: number;
  /** Bytes to send (at least 1: an empty exchange cannot tell an echo from a refused stream). */
  size: number;
  /** Seed of the content (tcp.ts `chunks`), so the receiving side can regenerate it. */
  contentSeed: number;
  /** Destroy the socket on purpose once this many bytes were sent or received. */
  abort?: { side: 'send' | 'receive'; afterBytes: number };
  /** No close by then: the transfer is destroyed and counted as stalled. */
  timeoutMs: number;
}

export type TransferOutcome =
  | { kind: 'completed'; size: number }
  | { kind: 'aborted'; sent: number; received: number }
  | { kind: 'interrupted'; reason: string; sent: number; received: number }
  | { kind: 'stalled'; sent: number; received: number }
  | { kind: 'corrupt'; reason: string; sent: number; received: number };

/** Compares received bytes with the content that was sent, in order; remembers the first wrong offset. */
class PrefixChecker {
  received = 0;
  mismatchAt: number | undefined;
  private readonly expected: Generator<Buffer>;
  private current: Buffer = Buffer.alloc(0);
  private pos = 0;

  constructor(size: number, seed: number) {
    this.expected = chunks(size, seed);
  }

  feed(chunk: Buffer): void {
    for (let off = 0; off < chunk.length && this.mismatchAt === undefined; ) {
      if (this.pos === this.current.length) {
        const next = this.expected.next();
        if (next.done) {
          this.mismatchAt = this.received + off; // more bytes than were sent
          break;
        }
        this.current = next.value;
        this.pos = 0;
      }
      const n = Math.min(chunk.length - off, this.current.length - this.pos);
      if (chunk.compare(this.current, this.pos, this.pos + n, off, off + n) !== 0) {
        let i = 0;
        while (chunk[off + i] === this.current[this.pos + i]) i++;
        this.mismatchAt = this.received + off + i;
      }
      off += n;
      this.pos += n;
    }
    this.received += chunk.length;
  }
}

/** Connects to `plan.port`, sends `plan.size` bytes, half-closes, reads the echo; never rejects. */
export async function runTransfer(plan: TransferPlan): Promise<TransferOutcome> {
  let socket: net.Socket;
  try {
    socket = await connect(plan.port);
  } catch (err) {
    return { kind: 'interrupted', reason: `connect: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, sent: 0, received: 0 };
  }
  return new Promise((resolve) => {
    const checker = new PrefixChecker(plan.size, plan.contentSeed);
    const receivedHash = createHash('sha256');
    const state = { sent: 0, sentDigest: undefined as string | undefined, error: undefined as string | undefined, ended: false, aborted: false, stalled: false };
    const abortNow = () => {
      state.aborted = true;
      socket.destroy();
    };
    const timer = setTimeout(() => {
      state.stalled = true;
      socket.destroy();
    }, plan.timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      checker.feed(chunk);
      receivedHash.update(chunk);
      if (plan.abort?.side === 'receive' && checker.received >= plan.abort.afterBytes) abortNow();
    });
    socket.on('end', () => (state.ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (state.error ??= err.code ?? err.message));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(classify(plan, checker, receivedHash.digest('hex'), state));
    });
    void send(socket, plan, state, abortNow).catch(() => undefined); // a closed socket ends it; 'close' resolves
  });
}

async function send(socket: net.Socket, plan: TransferPlan, state: { sent: number; sentDigest?: string }, abortNow: () => void): Promise<void> {
  const hash = createHash('sha256');
  for (const chunk of chunks(plan.size, plan.contentSeed)) {
    if (socket.destroyed) return;
    const room = plan.abort?.side === 'send' ? plan.abort.afterBytes - state.sent : Infinity;
    const part = room < chunk.length ? chunk.subarray(0, Math.max(0, room)) : chunk;
    const ok = part.length === 0 || socket.write(part);
    hash.update(part);
    state.sent += part.length;
    if (part !== chunk) return abortNow();
    if (!ok) await drained(socket, () => `${state.sent} of ${plan.size} bytes`);
  }
  state.sentDigest = hash.digest('hex');
  socket.end();
}

function classify(
  plan: TransferPlan,
  checker: PrefixChecker,
  receivedDigest: string,
  state: { sent: number; sentDigest?: string; error?: string; ended: boolean; aborted: boolean; stalled: boolean },
): TransferOutcome {
  const { sent } = state;
  const received = checker.received;
  if (checker.mismatchAt !== undefined) {
    const reason = checker.mismatchAt >= plan.size ? `${received} bytes came back for ${plan.size} sent` : `wrong byte at offset ${checker.mismatchAt} of ${plan.size}`;
    return { kind: 'corrupt', reason, sent, received };
  }
  if (state.aborted) return { kind: 'aborted', sent, received };
  if (state.stalled) return { kind: 'stalled', sent, received };
  if (state.ended && state.error === undefined && received === plan.size && state.sentDigest !== undefined) {
    if (receivedDigest !== state.sentDigest) return { kind: 'corrupt', reason: `SHA-256 differs (sent ${state.sentDigest}, got ${receivedDigest})`, sent, received };
    return { kind: 'completed', size: plan.size };
  }
  const reason = state.error ?? (state.ended ? `clean end after ${received} of ${plan.size} bytes` : `closed after ${received} of ${plan.size} bytes`);
  return { kind: 'interrupted', reason, sent, received };
}
