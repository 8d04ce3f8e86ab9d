/**
 * Workloads of the peer benchmark that the relay bench does not have: an iperf3 single stream, and many streams
 * held open at once. (HTTP uses wrk from http-bench.ts, new connections/s the connectionRate of workloads.ts.)
 */

import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { freePort, startProcess, type Proc } from '@private-connect/e2e';
import { stopTree, waitListening } from './peer-procs.js';
import { machineSeconds } from './procstat.js';

const run = promisify(execFile);

export interface IperfServer {
  port: number;
  /** A fresh `iperf3 -s` on the same port (after a failed test, which can leave the server busy). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function iperfServerOn(port: number): Promise<Proc> {
  const proc = startProcess('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)], {}, 'iperf3 -s');
  try {
    await waitListening(port, proc, 'iperf3 -s');
  } catch (err) {
    await stopTree(proc);
    throw err;
  }
  return proc;
}

/** `iperf3 -s` on a free loopback port; it serves one test at a time, so the ways take turns. */
export async function startIperfServer(): Promise<IperfServer> {
  const port = await freePort();
  let proc = await iperfServerOn(port);
  return {
    port,
    async restart() {
      await stopTree(proc);
      proc = await iperfServerOn(port);
    },
    stop: () => stopTree(proc),
  };
}

export interface IperfResult {
  /** What the server received per second (the sender's figure includes bytes still in socket buffers). */
  bitsPerSecond: number;
  megabytesPerSec: number;
  seconds: number;
  /** CPU use iperf3 reports for its own two ends, percent of one core. */
  senderCpuPercent: number;
  receiverCpuPercent: number;
  /**
   * Cores the whole machine kept busy during the test (processes, interrupts and softirq: on loopback the kernel's
   * TCP work is much of a relay's cost), and so the machine's CPU seconds per GB moved. What each way costs per byte,
   * whichever part of the machine pays it; its inverse bounds throughput on a machine of that many cores.
   */
  machineCores?: number;
  cpuSecondsPerGB?: number;
  /** Cores each role of the way kept busy during the test (hub, expose agent, reach agent; sshd, ssh; socat). */
  cpuByRole?: Record<string, number>;
  error?: string;
}

/** Reads iperf3 -J output; a test that failed comes back with `error` set and no figure. */
export function parseIperf(json: string): IperfResult {
  type Report = {
    error?: string;
    end?: {
      sum_received?: { bits_per_second?: number; seconds?: number };
      cpu_utilization_percent?: { host_total?: number; remote_total?: number };
    };
  };
  let report: Report;
  try {
    report = JSON.parse(json) as Report;
  } catch {
    return { bitsPerSecond: NaN, megabytesPerSec: NaN, seconds: NaN, senderCpuPercent: NaN, receiverCpuPercent: NaN, error: `iperf3 output is not JSON: ${json.slice(0, 200)}` };
  }
  const bps = report.end?.sum_received?.bits_per_second ?? NaN;
  const cpu = report.end?.cpu_utilization_percent;
  return {
    bitsPerSecond: bps,
    megabytesPerSec: bps / 8 / 1e6,
    seconds: report.end?.sum_received?.seconds ?? NaN,
    senderCpuPercent: cpu?.host_total ?? NaN,
    receiverCpuPercent: cpu?.remote_total ?? NaN,
    ...(report.error ? { error: report.error } : Number.isFinite(bps) ? {} : { error: 'iperf3 reported no received bytes' }),
  };
}

/**
 * One iperf3 single-stream test, client → server, through `port` (its control and data connections both go
 * through the way); the first `omitSeconds` (TCP ramp-up) are left out of the figure.
 */
export async function iperfClient(port: number, seconds: number, omitSeconds: number): Promise<IperfResult> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-O', String(omitSeconds), '-J', '--connect-timeout', '10000'];
  try {
    const before = machineSeconds();
    const startedAt = performance.now();
    const { stdout } = await run('iperf3', args, { maxBuffer: 16 << 20, timeout: (seconds + omitSeconds + 30) * 1000 });
    const after = machineSeconds();
    const result = parseIperf(stdout);
    const machineCores = (after.busy + after.softirq - before.busy - before.softirq) / ((performance.now() - startedAt) / 1000);
    return { ...result, machineCores, cpuSecondsPerGB: machineCores / (result.megabytesPerSec / 1000) };
  } catch (err) {
    // iperf3 exits 1 after a failed test but still prints its JSON report with "error".
    const stdout = (err as { stdout?: string }).stdout;
    const result = stdout ? parseIperf(stdout) : undefined;
    return result?.error ? result : { ...(result ?? parseIperf('{}')), error: (err as Error).message.split('\n')[0] };
  }
}

export interface StreamsResult {
  requested: number;
  /** Streams whose first echo came back intact. */
  established: number;
  /** Seconds from the first connect to the last first echo (or the last failure). */
  secondsToEstablish: number;
  /** Streams that echoed a second time after every stream was open and memory was sampled. */
  aliveAtEnd: number;
  failed: number;
  firstError?: string;
}

/** One held stream: connect, echo a 32-byte payload, stay open. */
function openStream(port: number, index: number, timeoutMs: number): { socket: net.Socket; echoed: Promise<void>; echoAgain(): Promise<void> } {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  let received = Buffer.alloc(0);
  let waiting: { expect: Buffer; resolve: () => void; reject: (e: Error) => void } | undefined;
  const fail = (err: Error) => {
    const w = waiting;
    waiting = undefined;
    w?.reject(err);
  };
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (waiting && received.length >= waiting.expect.length) {
      const w = waiting;
      waiting = undefined;
      const got = received.subarray(0, w.expect.length);
      received = received.subarray(w.expect.length);
      if (got.equals(w.expect)) w.resolve();
      else w.reject(new Error('the echo differs from what was sent'));
    }
  });
  socket.on('error', (err) => fail(err));
  socket.on('close', () => fail(new Error('closed before the echo')));
  const echo = (round: number) =>
    new Promise<void>((resolve, reject) => {
      const expect = Buffer.from(`stream ${String(index).padStart(6, '0')} round ${round}`.padEnd(32, '.'));
      const timer = setTimeout(() => fail(new Error(`no echo within ${timeoutMs} ms`)), timeoutMs);
      waiting = {
        expect,
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      if (socket.destroyed) fail(new Error('closed before the echo'));
      else socket.write(expect);
    });
  const echoed = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => echo(1).then(resolve, reject));
  });
  // A connect error rejects the pending echo only once one is pending; before that, reject directly.
  const connectFailed = new Promise<void>((_, reject) => socket.once('error', reject));
  connectFailed.catch(() => undefined);
  return { socket, echoed: Promise.race([echoed, connectFailed]), echoAgain: () => echo(2) };
}

/**
 * Opens `count` streams to an echo server through `port` all at once; each echoes once. With all of them open,
 * `whileOpen` runs (the caller samples memory); then every stream echoes once more and all are closed.
 */
export async function holdStreams<T>(port: number, count: number, timeoutMs: number, whileOpen: () => Promise<T>): Promise<{ streams: StreamsResult; sample: T }> {
  const start = process.hrtime.bigint();
  const streams = Array.from({ length: count }, (_, i) => openStream(port, i, timeoutMs));
  let firstError: string | undefined;
  const first = await Promise.allSettled(streams.map((s) => s.echoed));
  const secondsToEstablish = Number(process.hrtime.bigint() - start) / 1e9;
  for (const r of first) if (r.status === 'rejected') firstError ??= (r.reason as Error).message;
  try {
    const sample = await whileOpen();
    const alive = streams.filter((_, i) => first[i]!.status === 'fulfilled');
    const again = await Promise.allSettled(alive.map((s) => s.echoAgain()));
    for (const r of again) if (r.status === 'rejected') firstError ??= `second echo: ${(r.reason as Error).message}`;
    const established = first.filter((r) => r.status === 'fulfilled').length;
    return {
      streams: {
        requested: count,
        established,
        secondsToEstablish,
        aliveAtEnd: again.filter((r) => r.status === 'fulfilled').length,
        failed: count - established,
        ...(firstError ? { firstError } : {}),
      },
      sample,
    };
  } finally {
    await Promise.all(
      streams.map(
        ({ socket }) =>
          new Promise<void>((resolve) => {
            if (socket.destroyed) return resolve();
            const timer = setTimeout(() => socket.destroy(), 5000);
            socket.once('close', () => (clearTimeout(timer), resolve()));
            socket.end();
          }),
      ),
    );
  }
}
