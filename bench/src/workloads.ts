/** The three relay workloads, each run the same way against a direct port and a tunnel port. */

import { randomBytes } from 'node:crypto';
import net from 'node:net';

const MiB = 1024 * 1024;

function connectTo(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

const now = (): bigint => process.hrtime.bigint();
const micros = (ns: bigint): number => Number(ns) / 1000;

export interface BulkResult {
  bytes: number;
  seconds: number;
  mibPerSec: number;
}

/** One shared 256 KiB random block, written again and again (no generation cost inside the timing). */
const BLOCK = randomBytes(256 * 1024);

/** Sends `bytes` to a sinkServer (directly or through a tunnel) and waits for its one-byte receipt. */
export async function bulkSend(port: number, bytes: number, chunkSize = 64 * 1024): Promise<BulkResult> {
  const socket = await connectTo(port);
  socket.on('error', () => undefined);
  const receipt = new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('close', () => reject(new Error(`connection closed before the receipt for ${bytes} bytes`)));
  });
  const start = now();
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  socket.write(header);
  let sent = 0;
  let offset = 0;
  while (sent < bytes) {
    const n = Math.min(chunkSize, bytes - sent, BLOCK.length - offset);
    const ok = socket.write(BLOCK.subarray(offset, offset + n));
    sent += n;
    offset = (offset + n) % BLOCK.length;
    if (!ok) await new Promise<void>((resolve) => socket.once('drain', resolve));
  }
  await receipt;
  const seconds = micros(now() - start) / 1e6;
  socket.destroy();
  return { bytes, seconds, mibPerSec: bytes / MiB / seconds };
}

export interface LatencyResult {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Percentiles (nearest rank) of microsecond samples. */
export function summarize(samples: number[]): LatencyResult {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return { count: sorted.length, p50: at(50), p90: at(90), p99: at(99), mean, min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN };
}

/** `warmup` + `count` 1-byte round trips on one connection to an echo server; the samples after warm-up, in µs. */
export async function pingPong(port: number, count: number, warmup: number): Promise<number[]> {
  const socket = await connectTo(port);
  socket.on('error', () => undefined);
  const byte = Buffer.from([0x2a]);
  let waiting: (() => void) | undefined;
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= 1 && waiting) {
      received -= 1;
      const w = waiting;
      waiting = undefined;
      w();
    }
  });
  const closed = new Promise<never>((_, reject) => socket.once('close', () => reject(new Error('echo connection closed'))));
  closed.catch(() => undefined);
  const samples: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const start = now();
    await Promise.race([new Promise<void>((resolve) => ((waiting = resolve), socket.write(byte))), closed]);
    if (i >= warmup) samples.push(micros(now() - start));
  }
  socket.destroy();
  return samples;
}

export interface ConnRateRun {
  seconds: number;
  completed: number;
  errors: number;
  /** Time of each whole connection (connect → echo → both sides closed), µs. */
  samples: number[];
  firstError?: string;
}

/** One short connection: connect, send a byte, wait for its echo, half-close, wait for the close. */
function oneConnection(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let echoed = false;
    socket.once('connect', () => socket.write('x'));
    socket.once('data', () => {
      echoed = true;
      socket.end();
    });
    socket.on('data', () => undefined);
    socket.once('error', (err) => reject(err));
    socket.once('close', () => (echoed ? resolve() : reject(new Error('closed before the echo'))));
    // Where a stuck connection stopped tells which side of the tunnel held it: no connect, no echo, or no close.
    socket.setTimeout(10_000, () => {
      const stage = echoed ? 'no close within 10 s of the echo' : socket.bytesWritten > 0 ? 'no echo within 10 s' : 'no connect within 10 s';
      socket.destroy(new Error(stage));
    });
  });
}

/** `concurrency` loops opening short connections for `seconds`; nothing is recorded during the first `warmupSeconds`. */
export async function connectionRate(port: number, seconds: number, concurrency: number, warmupSeconds = 0): Promise<ConnRateRun> {
  const run = async (durationS: number, record: boolean): Promise<ConnRateRun> => {
    const deadline = now() + BigInt(Math.round(durationS * 1e9));
    const samples: number[] = [];
    let completed = 0;
    let errors = 0;
    let firstError: string | undefined;
    const start = now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (now() < deadline) {
          const t = now();
          try {
            await oneConnection(port);
            completed++;
            if (record) samples.push(micros(now() - t));
          } catch (err) {
            errors++;
            firstError ??= (err as Error).message;
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      }),
    );
    return { seconds: micros(now() - start) / 1e6, completed, errors, samples, ...(firstError ? { firstError } : {}) };
  };
  if (warmupSeconds > 0) await run(warmupSeconds, false);
  return run(seconds, true);
}
