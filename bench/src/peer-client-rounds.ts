/**
 * The real clients' turns in the peer benchmark: pgbench -S with and without -C, and redis-benchmark plain and with
 * -P 16, each way in rotating rounds (the Turns of peer-ways.ts), with the medians of the healthy runs per way.
 */

import { median, progress, type BenchConfig } from './config.js';
import { pgbench, redisBenchmark, REDIS_PIPELINE, type PgbenchRun, type PgbenchSettings, type PgbenchTarget, type RedisRun, type RedisSettings } from './peer-clients.js';
import type { PeerWay, Turns } from './peer-ways.js';

/** pgbench -S TPS of one way (medians of its healthy runs), without and with -C. */
export interface PgbenchFigures {
  runs: PgbenchRun[];
  reconnectRuns: PgbenchRun[];
  tps: number;
  reconnectTps: number;
}

/** redis-benchmark req/s of one way by command (medians of its healthy runs), plain and with -P 16. */
export interface RedisFigures {
  runs: RedisRun[];
  pipelinedRuns: RedisRun[];
  rps: Record<string, number>;
  pipelinedRps: Record<string, number>;
}

const settledMedian = (xs: number[]): number => median(xs.filter(Number.isFinite));

/** pgbench -S and pgbench -C -S in turns; `target` is the index of PostgreSQL's port. */
export async function pgbenchRounds(config: BenchConfig, pg: PgbenchTarget, target: number, t: Turns): Promise<Map<PeerWay, PgbenchFigures>> {
  const s: PgbenchSettings = { seconds: config.peerPgbenchSeconds, clients: config.peerPgbenchClients, threads: 2 };
  const results = new Map<PeerWay, PgbenchFigures>(t.open.map((way) => [way, { runs: [], reconnectRuns: [], tps: NaN, reconnectTps: NaN }]));
  for (const reconnect of [false, true]) {
    progress(`peers: pgbench ${reconnect ? '-C ' : ''}-S -c ${s.clients} -j ${s.threads} -T ${s.seconds}, ${config.peerRounds} round(s)`);
    await t.each(config.peerRounds, `pgbench ${reconnect ? '-C ' : ''}-S`, async (way) => {
      const r = await pgbench(pg, t.port(way, target), s, reconnect);
      const figures = results.get(way)!;
      (reconnect ? figures.reconnectRuns : figures.runs).push(r);
      if (r.error) throw new Error(r.error);
    });
  }
  for (const f of results.values()) {
    f.tps = settledMedian(f.runs.filter((r) => !r.error).map((r) => r.tps));
    f.reconnectTps = settledMedian(f.reconnectRuns.filter((r) => !r.error).map((r) => r.tps));
  }
  return results;
}

/** redis-benchmark GET/SET, plain and -P 16, in turns; `target` is the index of Redis's port. */
export async function redisRounds(config: BenchConfig, target: number, t: Turns): Promise<Map<PeerWay, RedisFigures>> {
  const s: RedisSettings = { clients: config.peerRedisClients, requests: config.peerRedisRequests, pipelinedRequests: config.peerRedisPipelinedRequests };
  const results = new Map<PeerWay, RedisFigures>(t.open.map((way) => [way, { runs: [], pipelinedRuns: [], rps: {}, pipelinedRps: {} }]));
  for (const pipelined of [false, true]) {
    const n = pipelined ? s.pipelinedRequests : s.requests;
    progress(`peers: redis-benchmark -t get,set -c ${s.clients} -n ${n}${pipelined ? ` -P ${REDIS_PIPELINE}` : ''}, ${config.peerRounds} round(s)`);
    await t.each(config.peerRounds, `redis-benchmark${pipelined ? ` -P ${REDIS_PIPELINE}` : ''}`, async (way) => {
      const r = await redisBenchmark(t.port(way, target), s, pipelined);
      const figures = results.get(way)!;
      (pipelined ? figures.pipelinedRuns : figures.runs).push(r);
      if (r.error) throw new Error(r.error);
    });
  }
  const byCommand = (runs: RedisRun[]) => {
    const ok = runs.filter((r) => !r.error);
    const commands = [...new Set(ok.flatMap((r) => Object.keys(r.rps)))];
    return Object.fromEntries(commands.map((c) => [c, settledMedian(ok.map((r) => r.rps[c] ?? NaN))]));
  };
  for (const f of results.values()) {
    f.rps = byCommand(f.runs);
    f.pipelinedRps = byCommand(f.pipelinedRuns);
  }
  return results;
}
