/**
 * Throughput, latency and connection rate, each measured directly on loopback and through a real hub process with
 * real `connect expose` / `connect reach` processes. Direct and tunnel measurements alternate in blocks, so that
 * a burst of load from elsewhere on the machine hits both sides alike instead of one.
 */

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { enrolAgent, removeDirs, startHubProcess, type Proc } from '@private-connect/e2e';
import { MiB, median, progress, type BenchConfig } from './config.js';
import { cpuSeconds, rssBytes, withCpu } from './procstat.js';
import { echoServer, sinkServer } from './servers.js';
import { bulkSend, connectionRate, pingPong, summarize, type BulkResult, type ConnRateRun, type LatencyResult } from './workloads.js';

type Cpu = Record<string, number>;

export interface ConnRateSummary {
  concurrency: number;
  seconds: number;
  completed: number;
  errors: number;
  perSec: number;
  each: LatencyResult;
  firstError?: string;
}

export interface RelayResults {
  bulk: { direct: BulkResult[]; tunnel: BulkResult[]; directMiBps: number; tunnelMiBps: number; cpu: Cpu };
  latency: { direct: LatencyResult; tunnel: LatencyResult; cpu: Cpu };
  connRate: { direct: ConnRateSummary; tunnel: ConnRateSummary; cpu: Cpu };
  processes: { hubRss: number; exposeAgentRss: number; reachAgentRss: number; hubCpuSeconds: number };
  hubCounters: Record<string, number>;
}

/** Mean of several CPU samples, key by key. */
export function meanCpu(list: Cpu[]): Cpu {
  const out: Cpu = {};
  for (const key of Object.keys(list[0] ?? {})) out[key] = list.reduce((a, c) => a + (c[key] ?? NaN), 0) / list.length;
  return out;
}

/** Connection-rate runs of one side pooled into one figure. */
export function poolConnRuns(runs: ConnRateRun[], concurrency: number): ConnRateSummary {
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  const completed = runs.reduce((a, r) => a + r.completed, 0);
  const firstError = runs.find((r) => r.firstError)?.firstError;
  return {
    concurrency,
    seconds,
    completed,
    errors: runs.reduce((a, r) => a + r.errors, 0),
    perSec: completed / seconds,
    each: summarize(runs.flatMap((r) => r.samples)),
    ...(firstError ? { firstError } : {}),
  };
}

/** With BENCH_CPU_PROF=<dir>: the environment that loads profile-hook.js into the hub and agent processes. */
function profilingEnv(): NodeJS.ProcessEnv {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return {};
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const hook = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'profile-hook.js')).href;
  progress(`CPU profiles of the hub and agents go to ${out} (1 = throughput, 2 = round trips, 3 = connection rate)`);
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim(), BENCH_CPU_PROF_DIR: out };
}

export async function relayBench(config: BenchConfig): Promise<RelayResults> {
  const sink = await sinkServer();
  const echo = await echoServer();
  progress('starting a hub process, `connect expose` for a sink and an echo server, `connect reach` for both');
  const profEnv = profilingEnv();
  const profiling = Object.keys(profEnv).length > 0;
  const hub = await startHubProcess({ env: profEnv });
  const exposing = await enrolAgent(hub, { label: 'bench-expose', env: profEnv });
  const reaching = await enrolAgent(hub, { label: 'bench-reach', env: profEnv });
  const procs: Proc[] = [];
  /** Runs one phase; with profiling, the hub and agents profile exactly this phase. */
  const phase = async <T>(work: () => Promise<T>): Promise<T> => {
    // Signals sent close together may merge into one; the pauses keep every toggle apart.
    const toggle = async () => {
      for (const p of [hub.proc, ...procs]) p.child.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 300));
    };
    if (!profiling) return work();
    await toggle();
    try {
      return await work();
    } finally {
      await toggle();
    }
  };
  try {
    const exposeSink = await exposing.expose(`127.0.0.1:${sink.port}`, 'bench-sink');
    procs.push(exposeSink);
    const exposeEcho = await exposing.expose(`127.0.0.1:${echo.port}`, 'bench-echo');
    procs.push(exposeEcho);
    const reachSink = await reaching.reach('bench-sink', ['--port', '0']);
    procs.push(reachSink.proc);
    const reachEcho = await reaching.reach('bench-echo', ['--port', '0']);
    procs.push(reachEcho.proc);

    const pid = (p: Proc) => p.child.pid ?? -1;
    const bulkPids = { hub: pid(hub.proc), expose: pid(exposeSink), reach: pid(reachSink.proc) };
    const echoPids = { hub: pid(hub.proc), expose: pid(exposeEcho), reach: pid(reachEcho.proc) };

    // Throughput: direct and tunnel runs alternate; the median of each side is reported.
    progress(`throughput: warm-up ${config.bulkWarmupBytes / MiB} MiB each, then ${config.bulkRuns} x ${config.bulkBytes / MiB} MiB each, alternating`);
    await bulkSend(sink.port, config.bulkWarmupBytes);
    await bulkSend(reachSink.port, config.bulkWarmupBytes);
    const bulkDirect: BulkResult[] = [];
    const bulkTunnel: BulkResult[] = [];
    const bulkCpu: Cpu[] = [];
    await phase(async () => {
      for (let i = 0; i < config.bulkRuns; i++) {
        bulkDirect.push(await bulkSend(sink.port, config.bulkBytes));
        const { result, cpu } = await withCpu(bulkPids, () => bulkSend(reachSink.port, config.bulkBytes));
        bulkTunnel.push(result);
        bulkCpu.push(cpu);
      }
    });

    // Latency: 4 alternating blocks per side on one connection each, samples pooled.
    progress(`latency: ${config.roundTrips} 1-byte round trips each after ${config.roundTripWarmup} warm-up, in 4 alternating blocks`);
    const blocks = 4;
    const perBlock = Math.ceil(config.roundTrips / blocks);
    const latDirect: number[] = [];
    const latTunnel: number[] = [];
    const latCpu: Cpu[] = [];
    await phase(async () => {
      for (let i = 0; i < blocks; i++) {
        const warm = i === 0 ? config.roundTripWarmup : 100;
        latDirect.push(...(await pingPong(echo.port, perBlock, warm)));
        const { result, cpu } = await withCpu(echoPids, () => pingPong(reachEcho.port, perBlock, warm));
        latTunnel.push(...result);
        latCpu.push(cpu);
      }
    });

    // Connection rate: 2 alternating blocks per side.
    progress(`connection rate: ${config.connConcurrency} in flight, ${config.connSeconds} s each after ${config.connWarmupSeconds} s warm-up, in 2 alternating blocks`);
    const connDirect: ConnRateRun[] = [];
    const connTunnel: ConnRateRun[] = [];
    const connCpu: Cpu[] = [];
    await phase(async () => {
      for (let i = 0; i < 2; i++) {
        const warm = i === 0 ? config.connWarmupSeconds : 0.2;
        connDirect.push(await connectionRate(echo.port, config.connSeconds / 2, config.connConcurrency, warm));
        const { result, cpu } = await withCpu(echoPids, () => connectionRate(reachEcho.port, config.connSeconds / 2, config.connConcurrency, warm));
        connTunnel.push(result);
        connCpu.push(cpu);
      }
    });

    const metrics = await hub.metrics();
    const counter = (name: string) => metrics.get(name) ?? NaN;
    return {
      bulk: {
        direct: bulkDirect,
        tunnel: bulkTunnel,
        directMiBps: median(bulkDirect.map((r) => r.mibPerSec)),
        tunnelMiBps: median(bulkTunnel.map((r) => r.mibPerSec)),
        cpu: meanCpu(bulkCpu),
      },
      latency: { direct: summarize(latDirect), tunnel: summarize(latTunnel), cpu: meanCpu(latCpu) },
      connRate: {
        direct: poolConnRuns(connDirect, config.connConcurrency),
        tunnel: poolConnRuns(connTunnel, config.connConcurrency),
        cpu: meanCpu(connCpu),
      },
      processes: {
        hubRss: rssBytes(pid(hub.proc)) ?? NaN,
        exposeAgentRss: rssBytes(pid(exposeSink)) ?? NaN,
        reachAgentRss: rssBytes(pid(reachSink.proc)) ?? NaN,
        hubCpuSeconds: cpuSeconds(pid(hub.proc)) ?? NaN,
      },
      hubCounters: {
        bytesRelayed: counter('connect_relay_bytes_total'),
        streamOpens: counter('connect_stream_opens_total'),
        streamOpenFailures: counter('connect_stream_open_failures_total'),
        streamsOpenAtEnd: counter('connect_streams_open'),
        protocolErrors: counter('connect_protocol_errors_total'),
      },
    };
  } finally {
    if (profiling) await new Promise((r) => setTimeout(r, 1000)); // let the last profiles be written
    await Promise.all(procs.map((p) => p.stop()));
    await hub.stop();
    await Promise.all([sink.close(), echo.close()]);
    await removeDirs(hub.dataDir, exposing.home, reaching.home);
  }
}
