/** Sizes of one bench run: full by default, small with BENCH_QUICK=1 (CI smoke); single values overridable. */

export const MiB = 1024 * 1024;

export interface BenchConfig {
  quick: boolean;
  /** Which parts run: BENCH_ONLY=relay, memory, http, peers or cluster (comma-separated); all by default. */
  relay: boolean;
  memory: boolean;
  http: boolean;
  peers: boolean;
  cluster: boolean;
  /** wrk settings of the HTTP part: connections, seconds per run, rounds over its ways (http-bench.ts). */
  httpConnections: number;
  httpSeconds: number;
  httpRounds: number;
  bulkBytes: number;
  bulkWarmupBytes: number;
  bulkRuns: number;
  roundTrips: number;
  roundTripWarmup: number;
  connSeconds: number;
  connWarmupSeconds: number;
  connConcurrency: number;
  agents: number;
  /** The peer comparison (peers-bench.ts): rounds over the ways, iperf3 and wrk seconds, streams held at once. */
  peerRounds: number;
  peerIperfSeconds: number;
  peerIperfOmitSeconds: number;
  peerWrkSeconds: number;
  peerConnSeconds: number;
  peerStreams: number;
  /**
   * Real clients in the peer comparison (peer-clients.ts): pgbench -S seconds per run and clients (against the
   * PostgreSQL of clusterPostgresUrl, which must be on loopback), redis-benchmark requests per command, plain and
   * with -P 16, and clients (against Redis at 127.0.0.1:BENCH_REDIS_PORT).
   */
  peerPgbenchSeconds: number;
  peerPgbenchClients: number;
  peerRedisPort: number;
  peerRedisRequests: number;
  peerRedisPipelinedRequests: number;
  peerRedisClients: number;
  /**
   * The cluster part (cluster-bench.ts): PostgreSQL server to create its database on (BENCH_POSTGRES_URL, else
   * TEST_POSTGRES_URL), NATS server (BENCH_NATS_URL, else TEST_NATS_URL), bytes per throughput run. Round trips,
   * connection-rate seconds and runs are the relay part's.
   */
  clusterPostgresUrl: string;
  clusterNatsUrl: string;
  clusterBulkBytes: number;
  /** BENCH_WRITE_DOCS=1: the peer and HTTP results also replace their generated parts of docs/BENCHMARKS.md. */
  writeDocs: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const flag = (v: string | undefined) => !!v && v !== '0' && v !== 'false';
  const quick = flag(env.BENCH_QUICK);
  const num = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${v}"`);
    return n;
  };
  const only = (env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const part of only) {
    if (!['relay', 'memory', 'http', 'peers', 'cluster'].includes(part)) throw new Error(`BENCH_ONLY parts are relay, memory, http, peers and cluster, got "${part}"`);
  }
  const runs = (part: string) => only.length === 0 || only.includes(part);
  return {
    quick,
    relay: runs('relay'),
    memory: runs('memory'),
    http: runs('http'),
    peers: runs('peers'),
    cluster: runs('cluster'),
    httpConnections: Math.round(num('BENCH_HTTP_CONNECTIONS', 32)),
    httpSeconds: Math.round(num('BENCH_HTTP_SECONDS', quick ? 2 : 8)),
    httpRounds: Math.round(num('BENCH_HTTP_ROUNDS', quick ? 1 : 3)),
    bulkBytes: Math.round(num('BENCH_BULK_MIB', quick ? 64 : 512) * MiB),
    bulkWarmupBytes: (quick ? 16 : 64) * MiB,
    bulkRuns: Math.round(num('BENCH_BULK_RUNS', quick ? 1 : 3)),
    roundTrips: Math.round(num('BENCH_ROUND_TRIPS', quick ? 2000 : 20_000)),
    roundTripWarmup: quick ? 300 : 2000,
    connSeconds: num('BENCH_CONN_SECONDS', quick ? 1.5 : 5),
    connWarmupSeconds: quick ? 0.5 : 1,
    connConcurrency: Math.round(num('BENCH_CONN_CONCURRENCY', 32)),
    agents: Math.round(num('BENCH_AGENTS', quick ? 200 : 1000)),
    peerRounds: Math.round(num('BENCH_PEER_ROUNDS', quick ? 1 : 3)),
    // iperf3 takes whole seconds.
    peerIperfSeconds: Math.max(1, Math.round(num('BENCH_PEER_IPERF_SECONDS', quick ? 1 : 4))),
    peerIperfOmitSeconds: 1,
    peerWrkSeconds: Math.max(1, Math.round(num('BENCH_PEER_WRK_SECONDS', quick ? 1 : 5))),
    peerConnSeconds: num('BENCH_PEER_CONN_SECONDS', quick ? 0.5 : 2),
    peerStreams: Math.round(num('BENCH_PEER_STREAMS', quick ? 100 : 1000)),
    // pgbench takes whole seconds.
    peerPgbenchSeconds: Math.max(1, Math.round(num('BENCH_PGBENCH_SECONDS', quick ? 1 : 5))),
    peerPgbenchClients: Math.round(num('BENCH_PGBENCH_CLIENTS', 8)),
    peerRedisPort: Math.round(num('BENCH_REDIS_PORT', 6379)),
    peerRedisRequests: Math.round(num('BENCH_REDIS_REQUESTS', quick ? 2000 : 30_000)),
    peerRedisPipelinedRequests: Math.round(num('BENCH_REDIS_PIPELINED_REQUESTS', quick ? 20_000 : 200_000)),
    peerRedisClients: Math.round(num('BENCH_REDIS_CLIENTS', 32)),
    clusterPostgresUrl: env.BENCH_POSTGRES_URL || env.TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    clusterNatsUrl: env.BENCH_NATS_URL || env.TEST_NATS_URL || 'nats://127.0.0.1:4222',
    clusterBulkBytes: Math.round(num('BENCH_CLUSTER_BULK_MIB', quick ? 32 : 256) * MiB),
    writeDocs: flag(env.BENCH_WRITE_DOCS),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The order of `list` in round `r`: rotated, so no item always runs first or last (ways taking turns in rounds). */
export const rotate = <T>(list: readonly T[], r: number): T[] => list.map((_, i) => list[(i + r) % list.length]!);

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export const progress = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);
