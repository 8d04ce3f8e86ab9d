/**
 * The peer comparison as text: one table (workloads as rows, ways as columns, ratios vs direct and vs ssh -R
 * beneath each figure) for the terminal and for docs/BENCHMARKS.md, the verdict on the issue's targets, and the
 * problems that make the bench exit non-zero (missing figures, failed connections; never a missed target).
 */

import { MiB } from './config.js';
import { directGoals, directRatioLines, hubCpu, type TargetCheck } from './direct-goals.js';
import { runHeading } from './docs-block.js';
import type { PeersResults, PeerWayResult } from './peers-bench.js';
import type { PeerWay } from './peer-ways.js';
import { REDIS_COMMANDS } from './peer-clients.js';
import { fixed, int, markdownTable, table } from './report.js';

/** Single stream with E2E must reach this (MB = 10^6 bytes), from the issue. */
export const E2E_SINGLE_STREAM_TARGET_MBPS = 500;

const x = (n: number, d: number): string => (Number.isFinite(n) && Number.isFinite(d) && d > 0 ? `${(n / d).toFixed(2)}x` : '—');

type Row = string[];

/** The rows of the comparison: a column per way that was not skipped, ratio rows under each figure. */
function rows(p: PeersResults): { header: string[]; body: Row[] } {
  const ways = p.ways.filter((w) => !w.skipped);
  const by = (way: PeerWay) => p.ways.find((w) => w.way === way);
  const direct = by('direct');
  const ssh = by('ssh');
  const line = (label: string, value: (w: PeerWayResult) => number, show: (n: number) => string): Row[] => {
    const out: Row[] = [[label, ...ways.map((w) => show(value(w)))]];
    if (direct && !direct.skipped && Number.isFinite(value(direct))) out.push(['  vs direct', ...ways.map((w) => x(value(w), value(direct)))]);
    if (ssh && !ssh.skipped) out.push(['  vs ssh -R', ...ways.map((w) => x(value(w), value(ssh)))]);
    return out;
  };
  const plain = (label: string, value: (w: PeerWayResult) => number, show: (n: number) => string): Row => [label, ...ways.map((w) => show(value(w)))];
  const mem = (w: PeerWayResult, which: 'idle' | 'loaded', kind: 'rss' | 'pss') => (w.memory ? w.memory[which][kind] / MiB : NaN);
  const n = p.streams;
  const body: Row[] = [
    ...line(`iperf3 single stream (MB/s, median of ${p.rounds})`, (w) => w.iperf.megabytesPerSec, int),
    ...line('  machine CPU per GB moved (core-seconds), lower is better', (w) => w.iperf.cpuSecondsPerGB, (v) => fixed(v, 2)),
    plain('  hub CPU meanwhile (1.00 = one core)', hubCpu, (v) => fixed(v, 2)),
    ...line(`HTTP wrk requests/s (median of ${p.rounds})`, (w) => w.http.requestsPerSec, int),
    ...line('HTTP latency p50 (µs), lower is better', (w) => w.http.p50Us, int),
    ...line('HTTP latency p99 (µs), lower is better', (w) => w.http.p99Us, int),
    ...line(`new connections/s (${p.connConcurrency} in flight)`, (w) => w.connRate?.perSec ?? NaN, int),
    ...clientRows(p, line),
    plain(`${n} concurrent streams: established`, (w) => w.streams?.established ?? NaN, int),
    plain(`  still echoing with all ${n} open`, (w) => w.streams?.aliveAtEnd ?? NaN, int),
    ...line(`  seconds to open all ${n}, lower is better`, (w) => w.streams?.secondsToEstablish ?? NaN, (v) => fixed(v, 2)),
    plain('memory of the way, idle: RSS (MiB)', (w) => mem(w, 'idle', 'rss'), fixed),
    ...line(`memory with ${n} streams open: RSS (MiB)`, (w) => mem(w, 'loaded', 'rss'), fixed),
    ...line(`memory with ${n} streams open: PSS (MiB)`, (w) => mem(w, 'loaded', 'pss'), fixed),
    ...line('memory added per open stream: PSS (KiB)', (w) => (w.memory ? (w.memory.loaded.pss - w.memory.idle.pss) / n / 1024 : NaN), fixed),
    plain(`  processes with ${n} streams open`, (w) => w.memory?.loaded.processes ?? NaN, int),
  ];
  // Memory rows of direct have no processes to measure.
  for (const r of body) for (let c = 1; c < r.length; c++) if (r[c] === 'n/a') r[c] = '—';
  return { header: ['workload', ...ways.map((w) => w.label)], body };
}

type LineFn = (label: string, value: (w: PeerWayResult) => number, show: (n: number) => string) => Row[];

/** The pgbench and redis-benchmark rows, when they ran. */
function clientRows(p: PeersResults, line: LineFn): Row[] {
  const out: Row[] = [];
  if (p.pgbench) {
    const { clients, threads, seconds } = p.pgbench;
    out.push(...line(`pgbench -S TPS (-c ${clients} -j ${threads} -T ${seconds}, median of ${p.rounds})`, (w) => w.pgbench?.tps ?? NaN, int));
    out.push(...line('pgbench -C -S TPS (a new connection per transaction)', (w) => w.pgbench?.reconnectTps ?? NaN, int));
  }
  if (p.redis) {
    for (const c of REDIS_COMMANDS) out.push(...line(`redis-benchmark ${c} req/s (-c ${p.redis.clients}, median of ${p.rounds})`, (w) => w.redis?.rps[c] ?? NaN, int));
    for (const c of REDIS_COMMANDS) out.push(...line(`redis-benchmark -P ${p.redis.pipeline} ${c} req/s`, (w) => w.redis?.pipelinedRps[c] ?? NaN, int));
  }
  return out;
}

/** The figures of the real clients, E2E over --no-e2e and over ssh -R: what issue 24 is judged by. */
export function e2eRatioLines(p: PeersResults): string[] {
  const by = (way: PeerWay) => p.ways.find((w) => w.way === way && !w.skipped);
  const e2e = by('connect');
  const plain = by('connectPlain');
  const ssh = by('ssh');
  if (!e2e || !p.e2eInBuild) return [];
  const figures: Array<[string, (w: PeerWayResult) => number]> = [['new connections/s', (w) => w.connRate?.perSec ?? NaN]];
  if (p.pgbench) figures.push(['pgbench -S TPS', (w) => w.pgbench?.tps ?? NaN], ['pgbench -C -S TPS', (w) => w.pgbench?.reconnectTps ?? NaN]);
  if (p.redis) {
    for (const c of REDIS_COMMANDS) figures.push([`redis-benchmark ${c} req/s`, (w) => w.redis?.rps[c] ?? NaN]);
    for (const c of REDIS_COMMANDS) figures.push([`redis-benchmark -P ${p.redis.pipeline} ${c} req/s`, (w) => w.redis?.pipelinedRps[c] ?? NaN]);
  }
  return figures.map(([what, f]) => {
    const parts = [`${int(f(e2e))} with E2E`];
    if (plain) parts.push(`${x(f(e2e), f(plain))} of --no-e2e (${int(f(plain))})`);
    if (ssh) parts.push(`${x(f(e2e), f(ssh))} of ssh -R (${int(f(ssh))})`);
    return `${what}: ${parts.join(', ')}`;
  });
}

export function peersTable(p: PeersResults): string {
  const { header, body } = rows(p);
  return table(header, body);
}

export function peersMarkdownTable(p: PeersResults): string {
  const { header, body } = rows(p);
  return markdownTable(header, body);
}

export type { TargetCheck } from './direct-goals.js';

/**
 * The issues' targets: the relay faster than ssh -R on every workload (each relay variant) and E2E single stream
 * ≥ 500 MB/s; and issue 25's goals for the direct path (direct-goals.ts).
 */
export function peersTargets(p: PeersResults): { checks: TargetCheck[]; notes: string[] } {
  const ssh = p.ways.find((w) => w.way === 'ssh');
  const checks: TargetCheck[] = [];
  const notes: string[] = [];
  if (!ssh || ssh.skipped) notes.push('ssh -R did not run, so "faster than ssh -R" cannot be judged');
  for (const w of p.ways.filter((v) => (v.way === 'connect' || v.way === 'connectPlain') && !v.skipped)) {
    const more = (what: string, a: number, b: number, show: (n: number) => string, unit: string) =>
      checks.push({ way: w.way, what, met: a > b, detail: `${show(a)} vs ssh -R ${show(b)} ${unit} (${x(a, b)})` });
    const less = (what: string, a: number, b: number, show: (n: number) => string, unit: string) =>
      checks.push({ way: w.way, what, met: a < b, detail: `${show(a)} vs ssh -R ${show(b)} ${unit} (${x(a, b)}; lower is better)` });
    if (ssh && !ssh.skipped) {
      more('iperf3 single stream', w.iperf.megabytesPerSec, ssh.iperf.megabytesPerSec, int, 'MB/s');
      more('HTTP requests/s', w.http.requestsPerSec, ssh.http.requestsPerSec, int, 'req/s');
      less('HTTP latency p50', w.http.p50Us, ssh.http.p50Us, int, 'µs');
      less('HTTP latency p99', w.http.p99Us, ssh.http.p99Us, int, 'µs');
      more('new connections/s', w.connRate?.perSec ?? NaN, ssh.connRate?.perSec ?? NaN, int, 'conn/s');
      const all = (v: PeerWayResult) => (v.streams?.established ?? 0) === p.streams;
      checks.push({
        way: w.way,
        what: `${p.streams} concurrent streams opened`,
        met: all(w) && (!all(ssh) || (w.streams?.secondsToEstablish ?? Infinity) < (ssh.streams?.secondsToEstablish ?? Infinity)),
        detail: `${int(w.streams?.established ?? NaN)}/${p.streams} in ${fixed(w.streams?.secondsToEstablish ?? NaN, 2)} s vs ssh -R ${int(ssh.streams?.established ?? NaN)}/${p.streams} in ${fixed(ssh.streams?.secondsToEstablish ?? NaN, 2)} s`,
      });
      const a = w.memory?.loaded.pss ?? NaN;
      const b = ssh.memory?.loaded.pss ?? NaN;
      notes.push(`${w.label}: with ${p.streams} streams open its processes hold ${fixed(a / MiB)} MiB (PSS) against ${fixed(b / MiB)} MiB for ssh -R (${x(a, b)}); memory is reported, not a speed target`);
    }
    if (w.way === 'connect') {
      if (p.e2eInBuild) {
        const mbps = w.iperf.megabytesPerSec;
        checks.push({ way: w.way, what: `single stream with E2E ≥ ${E2E_SINGLE_STREAM_TARGET_MBPS} MB/s`, met: mbps >= E2E_SINGLE_STREAM_TARGET_MBPS, detail: `${int(mbps)} MB/s` });
      } else {
        notes.push(`single stream with E2E ≥ ${E2E_SINGLE_STREAM_TARGET_MBPS} MB/s: not judged, this build has no end-to-end encryption yet (the connect figures are the plaintext relay)`);
      }
    }
  }
  const direct = directGoals(p);
  return { checks: [...checks, ...direct.checks], notes: [...notes, ...direct.notes] };
}

export function targetLines(p: PeersResults): string[] {
  const { checks, notes } = peersTargets(p);
  const label = (way: PeerWay) => p.ways.find((w) => w.way === way)?.label ?? way;
  return [
    ...checks.map((c) => `${c.met ? 'target met   ' : 'TARGET MISSED'}  ${label(c.way)}: ${c.what}: ${c.detail}`),
    ...notes.map((n) => `note: ${n}`),
  ];
}

/** What makes the bench fail: a way that should have run but gave no figure, or connections that failed. */
export function peersProblems(p: PeersResults): string[] {
  const problems: string[] = [];
  for (const w of p.ways) {
    if (w.skipped) {
      // The plaintext variant waits for the --no-e2e flag; every other way needs its tool installed.
      if (w.way !== 'connectPlain') problems.push(`peers: ${w.label} could not run: ${w.skipped}`);
      continue;
    }
    for (const e of w.errors) problems.push(`peers: ${w.label}: ${e}`);
    if (!(w.iperf.megabytesPerSec > 0)) problems.push(`peers: no iperf3 figure for ${w.label}`);
    if (!(w.http.requestsPerSec > 0)) problems.push(`peers: no HTTP figure for ${w.label}`);
    const total = w.http.runs.reduce((a, r) => a + r.requests, 0);
    const errors = w.http.runs.reduce((a, r) => a + r.errors, 0);
    if (errors > Math.max(1, total * 0.01)) problems.push(`peers: ${errors} failed HTTP requests through ${w.label}`);
    if (p.pgbench && !(w.pgbench && w.pgbench.tps > 0 && w.pgbench.reconnectTps > 0)) problems.push(`peers: no pgbench figure for ${w.label}`);
    if (p.redis && !(w.redis && REDIS_COMMANDS.every((c) => w.redis!.rps[c]! > 0 && w.redis!.pipelinedRps[c]! > 0))) problems.push(`peers: no redis-benchmark figure for ${w.label}`);
    if (!w.connRate || !(w.connRate.perSec > 0)) problems.push(`peers: no connection-rate figure for ${w.label}`);
    else if (w.connRate.errors > Math.max(1, w.connRate.completed * 0.01)) problems.push(`peers: ${w.connRate.errors} failed connections through ${w.label} (first: ${w.connRate.firstError})`);
    if (!w.streams) problems.push(`peers: no concurrent-streams figure for ${w.label}`);
    else if (w.streams.established < p.streams || w.streams.aliveAtEnd < w.streams.established) {
      problems.push(`peers: ${w.label}: ${w.streams.established}/${p.streams} streams opened, ${w.streams.aliveAtEnd} still echoing (first error: ${w.streams.firstError})`);
    }
    if (w.way !== 'direct' && !(w.memory && w.memory.loaded.rss > 0)) problems.push(`peers: no memory figure for ${w.label}`);
  }
  return problems;
}

/** "hub 80.1 -> 95.3 MiB, ..." : RSS of each role, idle and with all streams open. */
function memoryByRole(w: PeerWayResult, streams: number): string {
  if (!w.memory) return '';
  const { idle, loaded } = w.memory;
  const parts = Object.entries(loaded.byRole).map(
    ([role, m]) => `${role} ${fixed((idle.byRole[role]?.rss ?? NaN) / MiB)} -> ${fixed(m.rss / MiB)} MiB RSS (${fixed(m.pss / MiB)} PSS, ${m.processes} process${m.processes === 1 ? '' : 'es'})`,
  );
  return `${parts.join('; ')}; idle -> ${streams} streams open`;
}

/** "hub 0.01, expose agent 0.62, reach agent 0.71": cores each role kept busy during iperf3 (empty without processes). */
function cpuByRole(w: PeerWayResult): string {
  return Object.entries(w.iperf.cpuByRole)
    .map(([role, cores]) => `${role} ${fixed(cores, 2)}`)
    .join(', ');
}

/** Lines under the terminal table: how each way was run, and what went wrong. */
export function peersNotes(p: PeersResults): string[] {
  const out = [
    `  peers: ways take turns in ${p.rounds} round(s), order rotated per round; iperf3 -t ${p.iperfSeconds}${p.iperfOmitSeconds ? ` -O ${p.iperfOmitSeconds}` : ''} ` +
      `(MB = 10^6 bytes, what the server received); wrk -t${p.wrk.threads} -c${p.wrk.connections} -d${p.wrk.seconds}s on a ${p.wrk.bodyBytes}-byte answer; ` +
      `connections: connect, 1 byte, echo, close, ${p.connConcurrency} in flight`,
    `  peers: ${p.streams} streams = ${p.streams} TCP connections opened at once through a freshly opened way to an echo server, 32 bytes echoed each, ` +
      'all held open while memory is sampled, then echoed again. Memory = every process of the way and its children ' +
      '(hub + expose agent + reach agent; sshd and its session processes + ssh; socat and its forks), VmRSS and PSS from /proc',
  ];
  if (p.pgbench) {
    out.push(`  peers: pgbench -S (select only) -c ${p.pgbench.clients} -j ${p.pgbench.threads} -T ${p.pgbench.seconds}, scale ${p.pgbench.scale}, on the machine's PostgreSQL in a database of its own; -C opens a connection per transaction`);
  }
  if (p.redis) out.push(`  peers: redis-benchmark -t get,set -c ${p.redis.clients}, -n ${p.redis.requests} plain and -n ${p.redis.pipelinedRequests} with -P ${p.redis.pipeline}, on the machine's Redis`);
  for (const why of p.clientsNotRun) out.push(`  peers: ${why}`);
  for (const l of e2eRatioLines(p)) out.push(`  peers: connect ${l}`);
  for (const l of directRatioLines(p)) out.push(`  peers: direct path ${l}`);
  for (const w of p.ways) {
    if (w.skipped) out.push(`  peers: ${w.label} skipped: ${w.skipped}`);
    if (cpuByRole(w)) out.push(`  peers: ${w.label}, CPU during iperf3 (1.00 = one core): ${cpuByRole(w)}`);
    for (const e of w.errors) out.push(`  peers: ${w.label}: ${e}`);
    if (w.streams?.firstError) out.push(`  peers: ${w.label} streams, first error: ${w.streams.firstError}`);
    if (w.memory) out.push(`  peers: ${w.label}, memory by process: ${memoryByRole(w, p.streams)}`);
  }
  return out;
}

/** The figures and ratios of each way, for artifacts/bench-latest.json. */
export function peersSummary(p: PeersResults): Record<string, unknown> {
  const ssh = p.ways.find((w) => w.way === 'ssh' && !w.skipped);
  const direct = p.ways.find((w) => w.way === 'direct' && !w.skipped);
  const ratio = (a: number, b: number | undefined) => (b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
  const num = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n : null);
  const figure = (w: PeerWayResult | undefined, f: (w: PeerWayResult) => number | undefined) => (w ? f(w) : undefined);
  const metric = (w: PeerWayResult, f: (w: PeerWayResult) => number | undefined) => ({
    value: num(f(w)),
    vsDirect: ratio(f(w) ?? NaN, figure(direct, f)),
    vsSsh: ratio(f(w) ?? NaN, figure(ssh, f)),
  });
  const { checks, notes } = peersTargets(p);
  return {
    e2eInBuild: p.e2eInBuild,
    ways: Object.fromEntries(
      p.ways.map((w) => [
        w.way,
        w.skipped
          ? { label: w.label, skipped: w.skipped }
          : {
              label: w.label,
              iperfMBps: metric(w, (v) => v.iperf.megabytesPerSec),
              iperfCpuSecondsPerGB: metric(w, (v) => v.iperf.cpuSecondsPerGB),
              iperfCpuCoresByRole: w.iperf.cpuByRole,
              httpRequestsPerSec: metric(w, (v) => v.http.requestsPerSec),
              httpP50Us: metric(w, (v) => v.http.p50Us),
              httpP99Us: metric(w, (v) => v.http.p99Us),
              connectionsPerSec: metric(w, (v) => v.connRate?.perSec),
              pgbenchSelectTps: metric(w, (v) => v.pgbench?.tps),
              pgbenchReconnectSelectTps: metric(w, (v) => v.pgbench?.reconnectTps),
              redisRequestsPerSec: Object.fromEntries(REDIS_COMMANDS.map((c) => [c, metric(w, (v) => v.redis?.rps[c])])),
              redisPipelinedRequestsPerSec: Object.fromEntries(REDIS_COMMANDS.map((c) => [c, metric(w, (v) => v.redis?.pipelinedRps[c])])),
              streams: { requested: p.streams, established: w.streams?.established ?? null, aliveAtEnd: w.streams?.aliveAtEnd ?? null, seconds: metric(w, (v) => v.streams?.secondsToEstablish) },
              memoryMiB: {
                idleRss: num((w.memory?.idle.rss ?? NaN) / MiB),
                loadedRss: metric(w, (v) => (v.memory ? v.memory.loaded.rss / MiB : undefined)),
                loadedPss: metric(w, (v) => (v.memory ? v.memory.loaded.pss / MiB : undefined)),
                processes: w.memory?.loaded.processes ?? null,
                byRole: w.memory
                  ? Object.fromEntries(Object.entries(w.memory.loaded.byRole).map(([role, m]) => [role, { idleRss: (w.memory!.idle.byRole[role]?.rss ?? NaN) / MiB, loadedRss: m.rss / MiB, loadedPss: m.pss / MiB }]))
                  : null,
              },
              errors: w.errors,
            },
      ]),
    ),
    targets: checks,
    targetNotes: notes,
    clientsNotRun: p.clientsNotRun,
    e2eRatios: e2eRatioLines(p),
    directRatios: directRatioLines(p),
  };
}

/** The generated part of docs/BENCHMARKS.md. */
export function peersDocsBlock(p: PeersResults, quick: boolean, started: Date, machine: string): string {
  const { checks, notes } = peersTargets(p);
  const label = (way: PeerWay) => p.ways.find((w) => w.way === way)?.label ?? way;
  const missed = checks.filter((c) => !c.met);
  return [
    runHeading(started, quick),
    '',
    `Machine: ${machine}.`,
    '',
    `Settings: ${p.rounds} round(s) per workload, ways in rotating order; iperf3 \`-t ${p.iperfSeconds}${p.iperfOmitSeconds ? ` -O ${p.iperfOmitSeconds}` : ''}\`; ` +
      `wrk \`-t${p.wrk.threads} -c${p.wrk.connections} -d${p.wrk.seconds}s\`, ${p.wrk.bodyBytes}-byte answers; new connections with ${p.connConcurrency} in flight; ` +
      (p.pgbench ? `pgbench \`-S -c ${p.pgbench.clients} -j ${p.pgbench.threads} -T ${p.pgbench.seconds}\` (and with \`-C\`), scale ${p.pgbench.scale}; ` : '') +
      (p.redis ? `redis-benchmark \`-t get,set -c ${p.redis.clients}\`, ${p.redis.requests} requests plain, ${p.redis.pipelinedRequests} with \`-P ${p.redis.pipeline}\`; ` : '') +
      `${p.streams} concurrent streams.`,
    '',
    peersMarkdownTable(p),
    '',
    missed.length === 0 && checks.length > 0 ? '**Targets: all met in this run.**' : `**Targets: ${missed.length} of ${checks.length} missed in this run.**`,
    '',
    ...checks.map((c) => `- ${c.met ? 'met' : '**MISSED**'}: ${label(c.way)}, ${c.what}: ${c.detail}`),
    ...notes.map((n) => `- ${n}`),
    ...e2eRatioLines(p).map((l) => `- connect ${l}`),
    ...directRatioLines(p).map((l) => `- direct path ${l}`),
    ...p.ways.filter((w) => cpuByRole(w)).map((w) => `- ${w.label}, CPU during iperf3 (1.00 = one core): ${cpuByRole(w)}`),
    ...p.clientsNotRun.map((why) => `- ${why}`),
    ...p.ways.filter((w) => w.memory).map((w) => `- ${w.label}, memory by process: ${memoryByRole(w, p.streams)}`),
    ...p.ways.filter((w) => w.skipped).map((w) => `- ${w.label} did not run: ${w.skipped}`),
    ...p.ways.flatMap((w) => w.errors.map((e) => `- ${w.label}: ${e}`)),
  ].join('\n');
}
