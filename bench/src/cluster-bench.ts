/**
 * Several hubs over NATS: the same sink and echo servers reached directly, through one hub (both agents on hub A),
 * and across two hubs (exposing agent on hub A, reaching agent on hub B, frames between the hubs over NATS), all
 * agents with end-to-end encryption (the default). Single-stream throughput, 1-byte round trips and new
 * connections per second; the three ways take turns in rotating order, so that load from elsewhere on the
 * machine hits each alike. Without a reachable PostgreSQL and NATS the part is skipped, saying why.
 */

import { MiB, median, progress, type BenchConfig } from './config.js';
import { createDatabase, CLUSTER_WAYS, message, natsProblem, natsUrlOf, pidNamed, postgresProblem, safeUrl, startClusterWorld, type ClusterWay, type ClusterWorld } from './cluster-setup.js';
import { withCpu } from './procstat.js';
import { meanCpu, poolConnRuns, type ConnRateSummary } from './relay-bench.js';
import { bulkSend, connectionRate, pingPong, summarize, type BulkResult, type LatencyResult } from './workloads.js';

type Cpu = Record<string, number>;
type PerWay<T> = Record<ClusterWay, T>;

export interface ClusterResults {
  /** Why the part did not run (PostgreSQL or NATS not reachable, or no database could be created); nothing else is set then. */
  skipped?: string;
  /** Failures once the set-up started; the figures measured before one are kept. */
  errors: string[];
  /** NATS URL, password masked. */
  natsUrl: string;
  bulkBytes: number;
  bulkRuns: number;
  bulk?: { runs: PerWay<BulkResult[]>; mibPerSec: PerWay<number>; cpu: PerWay<Cpu> };
  latency?: { byWay: PerWay<LatencyResult>; cpu: PerWay<Cpu> };
  connRate?: { byWay: PerWay<ConnRateSummary>; cpu: PerWay<Cpu> };
  /** Each hub's counters at the end of the part. */
  hubs?: Record<'hub A' | 'hub B', HubCounters>;
}

/** From a hub's /metrics: what it relayed and opened since it started (the relay counts on both hubs of a cross-hub stream). */
export interface HubCounters {
  bytesRelayed: number;
  streamOpens: number;
  streamOpensEncrypted: number;
  streamOpenFailures: number;
  agentConnections: number;
}

/** A value for each way. */
const mapWays = <T>(make: (way: ClusterWay) => T): PerWay<T> => ({ direct: make('direct'), same: make('same'), cross: make('cross') });

/**
 * Runs `work` for each way in each of `rounds` rounds, the order rotated per round (no way always first), with the
 * CPU of the processes the way crosses sampled around it; the results and CPU samples by way.
 */
async function turns<T>(
  rounds: number,
  pids: (way: ClusterWay) => Record<string, number>,
  work: (way: ClusterWay, round: number) => Promise<T>,
): Promise<{ results: PerWay<T[]>; cpu: PerWay<Cpu> }> {
  const results = mapWays<T[]>(() => []);
  const samples = mapWays<Cpu[]>(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < CLUSTER_WAYS.length; i++) {
      const way = CLUSTER_WAYS[(i + r) % CLUSTER_WAYS.length]!;
      const { result, cpu } = await withCpu(pids(way), () => work(way, r));
      results[way].push(result);
      samples[way].push(cpu);
    }
  }
  return { results, cpu: mapWays((way) => meanCpu(samples[way])) };
}

/** Role → pid of what a way crosses for one server, plus a NATS server on this machine when there is one. */
function pidsFor(world: ClusterWorld, server: 'sink' | 'echo', natsPid: number | undefined): (way: ClusterWay) => Record<string, number> {
  return (way) => {
    const pids = server === 'sink' ? world.ways[way].sinkPids : world.ways[way].echoPids;
    return way === 'direct' || natsPid === undefined ? pids : { ...pids, 'NATS server': natsPid };
  };
}

async function throughput(config: BenchConfig, world: ClusterWorld, natsPid: number | undefined): Promise<NonNullable<ClusterResults['bulk']>> {
  const { ways } = world;
  progress(`cluster: throughput, warm-up ${config.bulkWarmupBytes / MiB} MiB each way, then ${config.bulkRuns} x ${config.clusterBulkBytes / MiB} MiB each, in turns`);
  for (const way of CLUSTER_WAYS) await bulkSend(ways[way].sink, config.bulkWarmupBytes);
  const { results, cpu } = await turns(config.bulkRuns, pidsFor(world, 'sink', natsPid), (way) => bulkSend(ways[way].sink, config.clusterBulkBytes));
  return { runs: results, mibPerSec: mapWays((way) => median(results[way].map((r) => r.mibPerSec))), cpu };
}

/** Round trips: 4 blocks per way on one connection each, samples pooled. */
async function latency(config: BenchConfig, world: ClusterWorld, natsPid: number | undefined): Promise<NonNullable<ClusterResults['latency']>> {
  const blocks = 4;
  const perBlock = Math.ceil(config.roundTrips / blocks);
  progress(`cluster: latency, ${perBlock * blocks} 1-byte round trips each way after ${config.roundTripWarmup} warm-up, in ${blocks} rotating blocks`);
  const { results, cpu } = await turns(blocks, pidsFor(world, 'echo', natsPid), (way, r) => pingPong(world.ways[way].echo, perBlock, r === 0 ? config.roundTripWarmup : 100));
  return { byWay: mapWays((way) => summarize(results[way].flat())), cpu };
}

/** Connection rate: 2 blocks per way. */
async function connRate(config: BenchConfig, world: ClusterWorld, natsPid: number | undefined): Promise<NonNullable<ClusterResults['connRate']>> {
  const { connSeconds, connConcurrency, connWarmupSeconds } = config;
  progress(`cluster: connection rate, ${connConcurrency} in flight, ${connSeconds} s each way after ${connWarmupSeconds} s warm-up, in 2 rotating blocks`);
  const { results, cpu } = await turns(2, pidsFor(world, 'echo', natsPid), (way, r) =>
    connectionRate(world.ways[way].echo, connSeconds / 2, connConcurrency, r === 0 ? connWarmupSeconds : 0.2),
  );
  return { byWay: mapWays((way) => poolConnRuns(results[way], connConcurrency)), cpu };
}

async function hubCounters(hub: ClusterWorld['hubA']): Promise<HubCounters> {
  const m = await hub.metrics();
  const get = (name: string) => m.get(name) ?? NaN;
  return {
    bytesRelayed: get('connect_relay_bytes_total'),
    streamOpens: get('connect_stream_opens_total'),
    streamOpensEncrypted: get('connect_stream_opens_encrypted_total'),
    streamOpenFailures: get('connect_stream_open_failures_total'),
    agentConnections: get('connect_agents_connected'),
  };
}

/** The measurements, written into `out` as each finishes (so a later failure keeps the earlier figures). */
async function measure(config: BenchConfig, world: ClusterWorld, natsPid: number | undefined, out: ClusterResults): Promise<void> {
  out.bulk = await throughput(config, world, natsPid);
  out.latency = await latency(config, world, natsPid);
  out.connRate = await connRate(config, world, natsPid);
  out.hubs = { 'hub A': await hubCounters(world.hubA), 'hub B': await hubCounters(world.hubB) };
}

/** Is the host of a URL this machine? Only then can a NATS server's CPU be sampled from /proc. */
function isLoopback(url: string): boolean {
  try {
    const host = natsUrlOf(url).hostname;
    return host === 'localhost' || host.startsWith('127.') || host === '[::1]';
  } catch {
    return false;
  }
}

export async function clusterBench(config: BenchConfig): Promise<ClusterResults> {
  const { clusterPostgresUrl: adminUrl, clusterNatsUrl: natsUrl } = config;
  const out: ClusterResults = { errors: [], natsUrl: safeUrl(natsUrl), bulkBytes: config.clusterBulkBytes, bulkRuns: config.bulkRuns };
  const skip = (why: string): ClusterResults => {
    progress(`cluster: skipped: ${why}`);
    return { ...out, skipped: why };
  };
  const noPostgres = await postgresProblem(adminUrl);
  if (noPostgres) return skip(`${noPostgres} (BENCH_POSTGRES_URL picks another server)`);
  const noNats = await natsProblem(natsUrl);
  if (noNats) return skip(`${noNats} (BENCH_NATS_URL picks another server)`);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  try {
    db = await createDatabase(adminUrl);
  } catch (err) {
    return skip(`cannot create a database on ${safeUrl(adminUrl)}: ${message(err)}`);
  }
  let world: ClusterWorld | undefined;
  const started = performance.now();
  try {
    progress(`cluster: database ${db.name}; starting hub A and hub B on NATS ${safeUrl(natsUrl)}, \`connect expose\` on hub A, \`connect reach\` on hub A and on hub B`);
    world = await startClusterWorld(db.url, db.name, natsUrl);
    const natsPid = isLoopback(natsUrl) ? pidNamed('nats-server') : undefined;
    await measure(config, world, natsPid, out);
  } catch (err) {
    out.errors.push(message(err));
    progress(`cluster: failed: ${err instanceof Error ? (err.stack ?? err.message).split('\n').slice(0, 30).join('\n') : String(err)}`);
  } finally {
    await world?.stop();
    try {
      await db.drop();
      progress(`cluster: database ${db.name} dropped`);
    } catch (err) {
      out.errors.push(`dropping database ${db.name}: ${message(err)}`);
    }
  }
  progress(`cluster: ${out.errors.length > 0 ? 'failed' : 'done'} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return out;
}
