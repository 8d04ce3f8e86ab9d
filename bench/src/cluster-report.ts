/** How `npm run bench` prints the cluster part (cluster-bench.ts): its table, notes, JSON summary and what fails the run. */

import { MiB } from './config.js';
import type { ClusterResults } from './cluster-bench.js';
import type { ClusterWay } from './cluster-setup.js';
import { added, fixed, int, pct, ratio, table } from './report.js';

const WAY_LABEL: Record<ClusterWay, string> = { direct: 'direct', same: 'same hub', cross: 'cross hub' };

/** The table, under a line saying what was compared; or the one line saying why the part was skipped. */
export function clusterBlock(r: ClusterResults): string {
  if (r.skipped) return `cluster (several hubs over NATS): SKIPPED: ${r.skipped}`;
  const { bulk, latency, connRate } = r;
  const get = <T>(by: Record<ClusterWay, T> | undefined, f: (x: T) => number) => (way: ClusterWay) => (by ? f(by[way]) : NaN);
  const mib = get(bulk?.mibPerSec, (x) => x);
  const p50 = get(latency?.byWay, (x) => x.p50);
  const p99 = get(latency?.byWay, (x) => x.p99);
  const perSec = get(connRate?.byWay, (x) => x.perSec);
  const each = get(connRate?.byWay, (x) => x.each.p50);
  const rates = (f: (w: ClusterWay) => number, show: (n: number) => string) => [show(f('direct')), show(f('same')), show(f('cross')), ratio(f('same'), f('direct')), ratio(f('cross'), f('same'))];
  const times = (f: (w: ClusterWay) => number) => [int(f('direct')), int(f('same')), int(f('cross')), added(f('same'), f('direct')), added(f('cross'), f('same'))];
  const concurrency = connRate?.byWay.direct.concurrency ?? NaN;
  return [
    'cluster: 2 hub processes on one PostgreSQL database, relaying over NATS. same hub = reach agent and expose agent both on hub A;',
    'cross hub = reach agent on hub B, expose agent on hub A (bench client -> reach -> hub B -> NATS -> hub A -> expose -> server). E2E on.',
    table(
      ['several hubs over NATS', 'direct', 'same hub', 'cross hub', 'same vs direct', 'cross vs same'],
      [
        [`throughput, ${r.bulkBytes / MiB} MiB one way (MiB/s, median of ${r.bulkRuns})`, ...rates(mib, (n) => fixed(n))],
        ['1-byte round trip p50 (µs)', ...times(p50)],
        ['1-byte round trip p99 (µs)', ...times(p99)],
        [`new connections/s (${concurrency} in flight)`, ...rates(perSec, int)],
        ['one connection, open to close, p50 (µs)', ...times(each)],
      ],
    ),
  ].join('\n');
}

/** "hub A 95%, hub B 3%, ..." : every sampled process, then the machine's softirq, other processes and steal. */
function cpuShares(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .map(([role, share]) => `${role === 'bench' ? 'bench client+server' : role === 'other' ? 'other processes' : role} ${pct(share)}`)
    .join(', ');
}

export function clusterNotes(r: ClusterResults): string[] {
  if (r.skipped) return [];
  const notes: string[] = [];
  for (const e of r.errors) notes.push(`  cluster: FAILED: ${e}`);
  const tunnels = ['same', 'cross'] as const;
  if (r.bulk) {
    const { bulk } = r;
    for (const way of tunnels) notes.push(`  CPU during ${WAY_LABEL[way]} throughput (100% = one core): ${cpuShares(bulk.cpu[way])}`);
    notes.push(`  cluster throughput runs (MiB/s): ${(['direct', 'same', 'cross'] as const).map((w) => `${WAY_LABEL[w]} ${bulk.runs[w].map((x) => fixed(x.mibPerSec)).join(', ')}`).join('; ')}`);
  }
  if (r.latency) {
    const { byWay, cpu } = r.latency;
    notes.push(
      `  CPU during cross hub round trips: ${cpuShares(cpu.cross)}`,
      `  cluster round trips: ${int(byWay.cross.count)} per way; p90 direct / same / cross ${int(byWay.direct.p90)} / ${int(byWay.same.p90)} / ${int(byWay.cross.p90)} µs; ` +
        `max ${int(byWay.direct.max)} / ${int(byWay.same.max)} / ${int(byWay.cross.max)} µs`,
    );
  }
  if (r.connRate) {
    const { byWay } = r.connRate;
    const firstError = byWay.cross.firstError ?? byWay.same.firstError;
    notes.push(
      `  cluster connections: ${int(byWay.direct.completed)} direct, ${int(byWay.same.completed)} same hub, ${int(byWay.cross.completed)} cross hub (${fixed(byWay.cross.seconds)} s each); ` +
        `failed ${byWay.direct.errors} / ${byWay.same.errors} / ${byWay.cross.errors}${firstError ? ` (first: ${firstError})` : ''}; open-to-close p99 ${int(byWay.same.each.p99)} / ${int(byWay.cross.each.p99)} µs same / cross`,
    );
  }
  if (r.hubs) {
    const line = (name: 'hub A' | 'hub B') => {
      const h = r.hubs![name];
      return `${name} relayed ${fixed(h.bytesRelayed / MiB, 0)} MiB, opened ${int(h.streamOpens)} streams (${int(h.streamOpensEncrypted)} end-to-end encrypted, ${int(h.streamOpenFailures)} failed)`;
    };
    notes.push(`  cluster hubs: ${line('hub A')}; ${line('hub B')}; NATS ${r.natsUrl}`);
  }
  return notes;
}

/** For artifacts/bench-latest.json: the headline figures, or why the part was skipped. */
export function clusterSummary(r: ClusterResults): Record<string, unknown> {
  if (r.skipped) return { skipped: r.skipped };
  const b = r.bulk?.mibPerSec;
  const l = r.latency?.byWay;
  const c = r.connRate?.byWay;
  return {
    ...(b ? { throughputMiBps: { ...b, crossVsSame: b.cross / b.same } } : {}),
    ...(l
      ? {
          roundTripP50Us: { direct: l.direct.p50, same: l.same.p50, cross: l.cross.p50, crossAddedUs: l.cross.p50 - l.same.p50 },
          roundTripP99Us: { direct: l.direct.p99, same: l.same.p99, cross: l.cross.p99, crossAddedUs: l.cross.p99 - l.same.p99 },
        }
      : {}),
    ...(c ? { connectionsPerSec: { direct: c.direct.perSec, same: c.same.perSec, cross: c.cross.perSec, crossVsSame: c.cross.perSec / c.same.perSec } } : {}),
    ...(r.errors.length > 0 ? { errors: r.errors } : {}),
  };
}

/** What fails the run: a failure, a missing figure, failed connections, or a cross-hub way that did not cross. A skip is none of these. */
export function clusterProblems(r: ClusterResults): string[] {
  if (r.skipped) return [];
  const problems = r.errors.map((e) => `cluster: ${e}`);
  if (problems.length > 0) return problems;
  const ways = ['direct', 'same', 'cross'] as const;
  for (const way of ways) {
    if (!(r.bulk!.mibPerSec[way] > 0)) problems.push(`cluster: no ${WAY_LABEL[way]} throughput figure`);
    if (!(r.latency!.byWay[way].count > 0)) problems.push(`cluster: no ${WAY_LABEL[way]} latency figure`);
    const conn = r.connRate!.byWay[way];
    if (!(conn.completed > 0)) problems.push(`cluster: no ${WAY_LABEL[way]} connection-rate figure`);
    if (conn.errors > Math.max(1, conn.completed * 0.01)) problems.push(`cluster: ${conn.errors} failed connections ${WAY_LABEL[way]} (first: ${conn.firstError})`);
  }
  // Hub B relays only the cross-hub way: less than its bulk bytes means the streams did not go through it.
  const crossBytes = r.bulk!.runs.cross.reduce((a, x) => a + x.bytes, 0);
  if (!(r.hubs!['hub B'].bytesRelayed >= crossBytes)) problems.push(`cluster: hub B relayed ${fixed(r.hubs!['hub B'].bytesRelayed / MiB)} MiB, less than the ${fixed(crossBytes / MiB)} MiB sent cross hub`);
  if (!(r.hubs!['hub A'].streamOpensEncrypted > 0)) problems.push('cluster: no stream was end-to-end encrypted');
  return problems;
}
