/**
 * Issue 25's goals for the direct path between agents (end-to-end encryption on), judged against `ssh -R` in the same
 * run: single stream at least 1.2x; requests/s and TPS at least 1.0x on wrk, pgbench -S (with and without -C) and
 * redis-benchmark (plain and -P 16); HTTP p50 at most ssh -R's; and the hub near idle while the direct path carries
 * iperf3. Also the direct path's figures beside ssh -R and the relay (E2E), as lines.
 */

import type { PeersResults, PeerWayResult } from './peers-bench.js';
import { REDIS_COMMANDS } from './peer-clients.js';
import type { PeerWay } from './peer-ways.js';
import { fixed, int, ratio } from './report.js';

/** One goal of the peer comparison, met or not in this run. */
export interface TargetCheck {
  way: PeerWay;
  what: string;
  met: boolean;
  detail: string;
}

/** The direct path's single stream must reach this multiple of ssh -R's. */
export const DIRECT_SINGLE_STREAM_VS_SSH = 1.2;
/** Its requests/s and TPS must reach this multiple of ssh -R's. */
export const DIRECT_RATE_VS_SSH = 1.0;
/** "Near zero": the most of one core the hub may use while the direct path carries iperf3's single stream. */
export const DIRECT_HUB_CPU_MAX_CORES = 0.05;

interface Figure {
  what: string;
  unit: string;
  value: (w: PeerWayResult) => number;
  show: (n: number) => string;
  /** Lower is better (latency); the goal is then at most ssh -R's, and none when `goal` is absent. */
  lower?: boolean;
  /** The multiple of ssh -R's figure this one must reach (at most, when lower); absent: no goal, shown only. */
  goal?: number;
}

/** The figures the direct path is judged and shown by, those that ran in this results' run. */
function directFigures(p: PeersResults): Figure[] {
  const out: Figure[] = [
    { what: 'iperf3 single stream', unit: 'MB/s', value: (w) => w.iperf.megabytesPerSec, show: int, goal: DIRECT_SINGLE_STREAM_VS_SSH },
    { what: 'HTTP requests/s', unit: 'req/s', value: (w) => w.http.requestsPerSec, show: int, goal: DIRECT_RATE_VS_SSH },
    { what: 'HTTP latency p50', unit: 'µs', value: (w) => w.http.p50Us, show: int, lower: true, goal: 1 },
    { what: 'HTTP latency p99', unit: 'µs', value: (w) => w.http.p99Us, show: int, lower: true },
    { what: 'new connections/s', unit: 'conn/s', value: (w) => w.connRate?.perSec ?? NaN, show: int },
  ];
  if (p.pgbench) {
    out.push(
      { what: 'pgbench -S TPS', unit: 'TPS', value: (w) => w.pgbench?.tps ?? NaN, show: int, goal: DIRECT_RATE_VS_SSH },
      { what: 'pgbench -C -S TPS', unit: 'TPS', value: (w) => w.pgbench?.reconnectTps ?? NaN, show: int, goal: DIRECT_RATE_VS_SSH },
    );
  }
  if (p.redis) {
    const pipeline = p.redis.pipeline;
    for (const c of REDIS_COMMANDS) out.push({ what: `redis-benchmark ${c} req/s`, unit: 'req/s', value: (w) => w.redis?.rps[c] ?? NaN, show: int, goal: DIRECT_RATE_VS_SSH });
    for (const c of REDIS_COMMANDS) {
      out.push({ what: `redis-benchmark -P ${pipeline} ${c} req/s`, unit: 'req/s', value: (w) => w.redis?.pipelinedRps[c] ?? NaN, show: int, goal: DIRECT_RATE_VS_SSH });
    }
  }
  return out;
}

const ran = (p: PeersResults, way: PeerWay): PeerWayResult | undefined => p.ways.find((w) => w.way === way && !w.skipped);

/** The hub's share of one core during the way's iperf3 single stream (NaN when not measured). */
export const hubCpu = (w: PeerWayResult | undefined): number => w?.iperf.cpuByRole.hub ?? NaN;

/** One figure of the direct path against ssh -R's, by the figure's goal. */
function judge(f: Figure, direct: PeerWayResult, ssh: PeerWayResult): TargetCheck {
  const a = f.value(direct);
  const b = f.value(ssh);
  const goal = f.goal ?? 1;
  const met = f.lower ? a <= b * goal : a >= b * goal;
  const want = f.lower ? (goal === 1 ? "at most ssh -R's" : `at most ${goal}x ssh -R`) : `at least ${goal.toFixed(1)}x ssh -R`;
  return { way: 'connectDirect', what: `${f.what} ${want}`, met, detail: `${f.show(a)} vs ssh -R ${f.show(b)} ${f.unit} (${ratio(a, b)}${f.lower ? '; lower is better' : ''})` };
}

/** Issue 25's goals for the direct path in this run, and notes on what could not be judged. */
export function directGoals(p: PeersResults): { checks: TargetCheck[]; notes: string[] } {
  const direct = p.ways.find((w) => w.way === 'connectDirect');
  if (!direct || direct.skipped) return { checks: [], notes: [`the direct path did not run${direct?.skipped ? ` (${direct.skipped})` : ''}: its goals are not judged`] };
  const checks: TargetCheck[] = [];
  const notes: string[] = [];
  if (!p.e2eInBuild) notes.push('this build has no end-to-end encryption: the direct path goals are meant with it on');
  const ssh = ran(p, 'ssh');
  if (!ssh) notes.push('ssh -R did not run, so the direct path cannot be judged against it');
  if (ssh) checks.push(...directFigures(p).filter((f) => f.goal !== undefined).map((f) => judge(f, direct, ssh)));
  const hub = hubCpu(direct);
  const relayHub = hubCpu(ran(p, 'connect'));
  checks.push({
    way: 'connectDirect',
    what: `hub CPU during the direct iperf3 near zero (at most ${DIRECT_HUB_CPU_MAX_CORES} of a core)`,
    met: hub <= DIRECT_HUB_CPU_MAX_CORES,
    detail: `${fixed(hub, 3)} of a core while it moved ${int(direct.iperf.megabytesPerSec)} MB/s${Number.isFinite(relayHub) ? `; through the relay ${fixed(relayHub, 2)}` : ''}`,
  });
  return { checks, notes };
}

/** The direct path's figures beside ssh -R's and the relay's (E2E, the 'connect' way), one line per workload. */
export function directRatioLines(p: PeersResults): string[] {
  const direct = ran(p, 'connectDirect');
  if (!direct) return [];
  const ssh = ran(p, 'ssh');
  const relay = ran(p, 'connect');
  const lines = directFigures(p).map((f) => {
    const a = f.value(direct);
    const parts = [`${f.show(a)} ${f.unit}`];
    if (ssh) parts.push(`${ratio(a, f.value(ssh))} of ssh -R (${f.show(f.value(ssh))})`);
    if (relay) parts.push(`${ratio(a, f.value(relay))} of the relay (${f.show(f.value(relay))})`);
    return `${f.what}${f.lower ? ' (lower is better)' : ''}: ${parts.join(', ')}`;
  });
  lines.push(`hub CPU during iperf3 (1.00 = one core): ${fixed(hubCpu(direct), 3)} on the direct path${relay ? `, ${fixed(hubCpu(relay), 2)} through the relay` : ''}`);
  return lines;
}
