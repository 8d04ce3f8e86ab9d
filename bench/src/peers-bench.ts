/**
 * This project beside what users would pick instead, on one machine in one run with the same workloads: direct
 * loopback, a socat relay, an OpenSSH `ssh -R` reverse forward, and hub + agents through the hub's relay with and
 * without end-to-end encryption and on their direct path (peer-ways.ts). Workloads: iperf3 single stream (with the
 * CPU of each process role of the way), wrk HTTP, new connections per second, pgbench -S against the machine's
 * PostgreSQL (with and without -C) and redis-benchmark against its Redis (plain and -P 16) (peer-clients.ts), many
 * streams held open at once with the memory of every process of the way. The ways take turns in rounds (rotating
 * who goes first) so that load from elsewhere on the machine hits each alike.
 */

import type { Server } from 'node:http';
import { MiB, median, progress, rotate, sleep, type BenchConfig } from './config.js';
import { haveWrk, healthyWrk, helloServer, wrk, type WrkResult } from './http-bench.js';
import { haveCommand } from './peer-procs.js';
import { PEER_WAYS, peerWays, type PeerWay, type Relay, type Turns, type WayProcess, type WaySpec } from './peer-ways.js';
import { pgbenchRounds, redisRounds, type PgbenchFigures, type RedisFigures } from './peer-client-rounds.js';
import {
  preparePgbench,
  redisCleanup,
  redisProblem,
  PGBENCH_SCALE,
  REDIS_PIPELINE,
  type PgbenchSettings,
  type PgbenchTarget,
  type RedisSettings,
} from './peer-clients.js';
import { holdStreams, iperfClient, startIperfServer, type IperfResult, type IperfServer, type StreamsResult } from './peer-workloads.js';
import { treeMemory, withRoleCpu, type TreeMemory } from './procstat.js';
import { poolConnRuns, type ConnRateSummary } from './relay-bench.js';
import { echoServer, type BenchServer } from './servers.js';
import { connectionRate, type ConnRateRun } from './workloads.js';

export interface PeerWayResult {
  way: PeerWay;
  label: string;
  /** Why the way did not run (a tool is missing, or this build lacks the flag). */
  skipped?: string;
  /** Set when the way failed to start or a workload threw; its figures are then missing. */
  errors: string[];
  /** cpuByRole: cores each role of the way kept busy during iperf3 (medians of the healthy runs; the hub's is issue 25's "near zero"). */
  iperf: { runs: IperfResult[]; megabytesPerSec: number; cpuSecondsPerGB: number; cpuByRole: Record<string, number> };
  http: { runs: WrkResult[]; requestsPerSec: number; p50Us: number; p99Us: number };
  connRate?: ConnRateSummary;
  /** pgbench -S TPS (medians), without and with -C; absent when pgbench did not run (PeersResults.clientsNotRun says why). */
  pgbench?: PgbenchFigures;
  /** redis-benchmark req/s by command (medians), plain and with -P 16; absent when it did not run. */
  redis?: RedisFigures;
  streams?: StreamsResult;
  /** Every process of the way (and their children) before the streams opened and with all of them open. */
  memory?: { idle: WayMemory; loaded: WayMemory };
}

/** Memory of all processes of a way, and split by role (hub, expose agent, reach agent; sshd, ssh; socat). */
export interface WayMemory extends TreeMemory {
  byRole: Record<string, TreeMemory>;
}

function wayMemory(processes: WayProcess[]): WayMemory {
  const roles = [...new Set(processes.map((p) => p.role))];
  const byRole = Object.fromEntries(roles.map((role) => [role, treeMemory(processes.filter((p) => p.role === role).map((p) => p.pid))]));
  return { ...treeMemory(processes.map((p) => p.pid)), byRole };
}

/**
 * Memory of a way once it is steady: after a full GC in its Node processes, samples every 250 ms until the last
 * four lie within 1 MiB (at most 8 s; V8 and malloc hand pages back over a few hundred ms), the last one.
 */
async function settledMemory(relay: Relay, processes: WayProcess[]): Promise<WayMemory> {
  await relay.collectGarbage?.();
  const samples: WayMemory[] = [];
  const deadline = Date.now() + 8000;
  for (;;) {
    samples.push(wayMemory(processes));
    const last = samples.slice(-4).map((m) => m.rss);
    if ((last.length === 4 && Math.max(...last) - Math.min(...last) <= MiB) || Date.now() > deadline) return samples.at(-1)!;
    await sleep(250);
  }
}

export interface PeersResults {
  /** Whether this build of `connect` has end-to-end encryption (its --no-e2e flag exists). */
  e2eInBuild: boolean;
  rounds: number;
  iperfSeconds: number;
  iperfOmitSeconds: number;
  wrk: { threads: number; connections: number; seconds: number; bodyBytes: number };
  connConcurrency: number;
  connSeconds: number;
  /** Settings of the real clients, when they ran. */
  pgbench?: PgbenchSettings & { scale: number };
  redis?: RedisSettings & { pipeline: number };
  /** Why pgbench or redis-benchmark did not run (a program missing, a server not answering): said, not a failure. */
  clientsNotRun: string[];
  streams: number;
  ways: PeerWayResult[];
}

const message = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

function emptyResult(spec: WaySpec): PeerWayResult {
  return {
    way: spec.way,
    label: spec.label,
    ...(spec.skip ? { skipped: spec.skip } : {}),
    errors: [],
    iperf: { runs: [], megabytesPerSec: NaN, cpuSecondsPerGB: NaN, cpuByRole: {} },
    http: { runs: [], requestsPerSec: NaN, p50Us: NaN, p99Us: NaN },
  };
}

interface Targets {
  /** Undefined when iperf3 is not installed. */
  iperf?: IperfServer;
  wrk: boolean;
  http: { server: Server; port: number };
  echo: BenchServer;
  /** The pgbench database, when pgbench can run. */
  pg?: PgbenchTarget;
  /** Redis's port, when redis-benchmark can run. */
  redisPort?: number;
}

/** iperf3's answer while its server still winds up the previous test; retried IPERF_BUSY_RETRIES times, waiting longer each time. */
const IPERF_BUSY = /server is busy/;
const IPERF_BUSY_RETRIES = 5;
const IPERF_BUSY_WAIT_MS = 300;

async function iperfRounds(config: BenchConfig, iperf: IperfServer, t: Turns, results: Map<PeerWay, PeerWayResult>): Promise<void> {
  const { peerRounds: rounds, peerIperfSeconds: secs, peerIperfOmitSeconds: omit } = config;
  progress(`peers: iperf3 single stream, -t ${secs}${omit ? ` -O ${omit}` : ''}, ${rounds} round(s) over ${t.open.length} ways`);
  await t.each(rounds, 'iperf3', async (way) => {
    const processes = t.processes(way);
    const test = async (): Promise<IperfResult> => {
      const { result, cores } = await withRoleCpu(processes, () => iperfClient(t.port(way, 0), secs, omit));
      return processes.length > 0 ? { ...result, cpuByRole: cores } : result;
    };
    let result = await test();
    // iperf3 -s serves one test at a time and answers "busy" until it has wound up the previous one, which through a
    // relay ends a little after that way's client returned: no test ran, so wait and ask again.
    for (let attempt = 1; result.error && IPERF_BUSY.test(result.error) && attempt <= IPERF_BUSY_RETRIES; attempt++) {
      await sleep(IPERF_BUSY_WAIT_MS * attempt);
      result = await test();
    }
    results.get(way)!.iperf.runs.push(result);
    if (result.error) {
      await iperf.restart();
      throw new Error(result.error);
    }
  });
}

async function wrkRounds(config: BenchConfig, t: Turns, results: Map<PeerWay, PeerWayResult>): Promise<void> {
  const threads = 2;
  progress(`peers: wrk -t${threads} -c${config.httpConnections} -d${config.peerWrkSeconds}s, ${config.peerRounds} round(s)`);
  await t.each(config.peerRounds, 'wrk', async (way) => {
    results.get(way)!.http.runs.push(await wrk(`http://127.0.0.1:${t.port(way, 1)}/`, threads, config.httpConnections, config.peerWrkSeconds));
  });
}

async function connRounds(config: BenchConfig, t: Turns): Promise<Map<PeerWay, ConnRateRun[]>> {
  progress(`peers: new connections, ${config.connConcurrency} in flight, ${config.peerConnSeconds} s per round, ${config.peerRounds} round(s)`);
  const runs = new Map<PeerWay, ConnRateRun[]>(t.open.map((w) => [w, []]));
  await t.each(config.peerRounds, 'connection rate', async (way, r) => {
    runs.get(way)!.push(await connectionRate(t.port(way, 2), config.peerConnSeconds, config.connConcurrency, r === 0 ? 0.3 : 0));
  });
  return runs;
}

/** Medians of the healthy runs of each way. */
function summarizeSpeed(res: PeerWayResult, connRuns: ConnRateRun[], concurrency: number): void {
  res.iperf.megabytesPerSec = median(res.iperf.runs.filter((x) => !x.error).map((x) => x.megabytesPerSec));
  res.iperf.cpuSecondsPerGB = median(res.iperf.runs.filter((x) => !x.error).map((x) => x.cpuSecondsPerGB ?? NaN));
  const cpuRuns = res.iperf.runs.filter((x) => !x.error && x.cpuByRole);
  const roles = [...new Set(cpuRuns.flatMap((x) => Object.keys(x.cpuByRole!)))];
  res.iperf.cpuByRole = Object.fromEntries(roles.map((role) => [role, median(cpuRuns.map((x) => x.cpuByRole![role] ?? NaN))]));
  const http = res.http.runs.filter(healthyWrk);
  res.http.requestsPerSec = median(http.map((x) => x.requestsPerSec));
  res.http.p50Us = median(http.map((x) => x.p50Us));
  res.http.p99Us = median(http.map((x) => x.p99Us));
  if (connRuns.length > 0) res.connRate = poolConnRuns(connRuns, concurrency);
}

/** Throughput, HTTP and connection rate: every way open at once for the three targets, taking turns. */
async function speedWorkloads(config: BenchConfig, specs: WaySpec[], results: Map<PeerWay, PeerWayResult>, targets: Targets): Promise<void> {
  const relays = new Map<PeerWay, Relay>();
  const targetPorts = [targets.iperf?.port ?? targets.echo.port, targets.http.port, targets.echo.port];
  const pgTarget = targets.pg ? targetPorts.push(targets.pg.port) - 1 : -1;
  const redisTarget = targets.redisPort !== undefined ? targetPorts.push(targets.redisPort) - 1 : -1;
  try {
    for (const spec of specs) {
      progress(`peers: opening ${spec.label}`);
      try {
        relays.set(spec.way, await spec.open(targetPorts));
      } catch (err) {
        results.get(spec.way)!.errors.push(`opening: ${message(err)}`);
        progress(`peers: ${spec.label} failed to open: ${message(err)}`);
      }
    }
    const open = [...relays.keys()];
    const t: Turns = {
      open,
      port: (way, target) => relays.get(way)!.ports[target]!,
      processes: (way) => relays.get(way)!.processes(),
      async each(rounds, what, work) {
        for (let r = 0; r < rounds; r++) {
          for (const way of rotate(open, r)) {
            try {
              await work(way, r);
            } catch (err) {
              results.get(way)!.errors.push(`${what}: ${message(err)}`);
            }
          }
        }
      },
    };
    // Warm-up: JIT, connection pools, TCP buffers of every way.
    await t.each(1, 'warm-up', async (way) => {
      if (targets.wrk) await wrk(`http://127.0.0.1:${t.port(way, 1)}/`, 1, 4, 1);
      await connectionRate(t.port(way, 2), 0.2, 4);
    });
    for (const [tool, there] of [['iperf3', !!targets.iperf], ['wrk', targets.wrk]] as const) {
      if (!there) for (const way of open) results.get(way)!.errors.push(`${tool} is not installed (apt-get install ${tool}): no ${tool} figure`);
    }
    if (targets.iperf) await iperfRounds(config, targets.iperf, t, results);
    if (targets.wrk) await wrkRounds(config, t, results);
    const connRuns = await connRounds(config, t);
    for (const way of open) summarizeSpeed(results.get(way)!, connRuns.get(way)!, config.connConcurrency);
    if (targets.pg) for (const [way, f] of await pgbenchRounds(config, targets.pg, pgTarget, t)) results.get(way)!.pgbench = f;
    if (targets.redisPort !== undefined) for (const [way, f] of await redisRounds(config, redisTarget, t)) results.get(way)!.redis = f;
  } finally {
    for (const [way, relay] of relays) {
      results.get(way)!.errors.push(...(relay.problems?.() ?? []).map((p) => `path: ${p}`));
      await relay.stop();
    }
  }
}

/** Many streams at once, one way at a time, each way freshly opened for the echo server alone. */
async function streamWorkload(config: BenchConfig, spec: WaySpec, result: PeerWayResult, echoPort: number): Promise<void> {
  let relay: Relay | undefined;
  try {
    relay = await spec.open([echoPort]);
    const port = relay.ports[0]!;
    const processes = relay.processes();
    // One stream through first (paths, keys and pools are set up on first use), then sample without garbage.
    await holdStreams(port, 1, 10_000, async () => undefined);
    const idle = await settledMemory(relay, processes);
    const { streams, sample } = await holdStreams(port, config.peerStreams, 30_000, () => settledMemory(relay!, processes));
    result.streams = streams;
    if (processes.length > 0) result.memory = { idle, loaded: sample };
    result.errors.push(...(relay.problems?.() ?? []).map((p) => `concurrent streams: path: ${p}`));
  } catch (err) {
    result.errors.push(`concurrent streams: ${message(err)}`);
  } finally {
    await relay?.stop();
  }
}

export async function peersBench(config: BenchConfig): Promise<PeersResults> {
  const specs = peerWays();
  const results = new Map<PeerWay, PeerWayResult>(specs.map((s) => [s.way, emptyResult(s)]));
  for (const s of specs) if (s.skip) progress(`peers: ${s.label} is skipped: ${s.skip}`);
  const runnable = specs.filter((s) => !s.skip);

  const bodyBytes = 64;
  const iperf = haveCommand('iperf3') ? await startIperfServer() : undefined;
  const wrkThere = await haveWrk();
  const http = await helloServer(Buffer.alloc(bodyBytes, 'x'));
  const echo = await echoServer();
  const clientsNotRun: string[] = [];
  const pg = await preparePgbench(config.clusterPostgresUrl).catch((err: unknown) => ({ why: `preparing pgbench failed: ${message(err)}: no pgbench figures` }));
  if ('why' in pg) clientsNotRun.push(pg.why);
  const redisWhy = await redisProblem(config.peerRedisPort);
  if (redisWhy) clientsNotRun.push(redisWhy);
  for (const why of clientsNotRun) progress(`peers: ${why}`);
  const clients = { ...('why' in pg ? {} : { pg }), ...(redisWhy ? {} : { redisPort: config.peerRedisPort }) };
  try {
    await speedWorkloads(config, runnable, results, { ...(iperf ? { iperf } : {}), wrk: wrkThere, http, echo, ...clients });
    progress(`peers: ${config.peerStreams} streams held open at once, each way opened afresh for an echo server`);
    for (const spec of runnable) {
      progress(`peers: ${config.peerStreams} streams through ${spec.label}`);
      await streamWorkload(config, spec, results.get(spec.way)!, echo.port);
    }
  } finally {
    await iperf?.stop();
    if (!('why' in pg)) await pg.database.drop().catch((err: unknown) => progress(`peers: could not drop ${pg.database.name}: ${message(err)}`));
    if (!redisWhy) await redisCleanup(config.peerRedisPort);
    http.server.closeAllConnections();
    http.server.close();
    await echo.close();
  }
  return {
    e2eInBuild: !specs.find((s) => s.way === 'connectPlain')!.skip,
    rounds: config.peerRounds,
    iperfSeconds: config.peerIperfSeconds,
    iperfOmitSeconds: config.peerIperfOmitSeconds,
    wrk: { threads: 2, connections: config.httpConnections, seconds: config.peerWrkSeconds, bodyBytes },
    connConcurrency: config.connConcurrency,
    connSeconds: config.peerConnSeconds * config.peerRounds,
    ...('why' in pg ? {} : { pgbench: { seconds: config.peerPgbenchSeconds, clients: config.peerPgbenchClients, threads: 2, scale: PGBENCH_SCALE } }),
    ...(redisWhy
      ? {}
      : { redis: { clients: config.peerRedisClients, requests: config.peerRedisRequests, pipelinedRequests: config.peerRedisPipelinedRequests, pipeline: REDIS_PIPELINE } }),
    clientsNotRun,
    streams: config.peerStreams,
    ways: PEER_WAYS.map((w) => results.get(w)!),
  };
}
