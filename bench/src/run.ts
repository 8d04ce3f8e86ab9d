#!/usr/bin/env node
/**
 * `npm run bench`: the hub relay beside direct loopback, in one run.
 *
 *   throughput   bulk bytes one way, client → sink                              MiB/s, tunnel/direct
 *   latency      1-byte round trips on one connection to an echo server        p50/p99 µs, added µs
 *   conn rate    connect, 1 byte, echo, close; N connections in flight         conn/s, tunnel/direct
 *   memory       hub idle and first-start peak RSS (embedded database, PostgreSQL), idle agents: MiB beside
 *                the goals (pass/miss); hub RSS idle, then with N authenticated idle agent sockets: KiB per agent
 *   http         wrk requests/s and latency: direct, via reach, via a hub port, via a public link in path and in
 *                subdomain mode, via ssh -R; issue 21's link targets (vs the hub port, vs ssh -R) judged
 *   peers        direct, socat, ssh -R, connect through the relay with and without E2E and on its direct path
 *                between the agents (E2E): iperf3 (with each process role's CPU), wrk, conn/s, pgbench (-S, -C -S),
 *                redis-benchmark (plain, -P 16), many streams + memory
 *   cluster      2 hubs on one PostgreSQL over NATS: throughput, round trips, conn/s with both agents on one hub vs
 *                on different hubs (skipped, saying why, without PostgreSQL or NATS; BENCH_POSTGRES_URL, BENCH_NATS_URL)
 *
 * "Through the hub" is a real hub process and real `connect expose` / `connect reach` agent processes started by the
 * e2e harness; "direct" is the same client against the same server on loopback. BENCH_QUICK=1 shrinks every size
 * (the CI smoke run); BENCH_ONLY=relay,memory,http,peers,cluster picks parts; BENCH_WRITE_DOCS=1 puts the peer and HTTP tables
 * into docs/BENCHMARKS.md; BENCH_CPU_PROF=<dir> writes V8 CPU profiles of the hub
 * and agents for each tunnel phase (see profile-hook.ts). Sizes: see config.ts. Results also go to
 * artifacts/bench-latest.json.
 * Exits 1 when a figure is missing or connections failed (a missed target is printed, not an exit code).
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, MiB, progress } from './config.js';
import { memoryBench } from './memory-bench.js';
import { memoryAgentBreakdownTable, memoryAgentsTable, memoryGoalsTable, memoryNotes, memoryProblems, memorySummary } from './memory-report.js';
import { relayBench, type RelayResults } from './relay-bench.js';
import { haveWrk, httpBench } from './http-bench.js';
import { httpDocsBlock, httpNotes, httpProblems, httpSummary, httpTable } from './http-report.js';
import { peersBench } from './peers-bench.js';
import { clusterBench } from './cluster-bench.js';
import { clusterBlock, clusterNotes, clusterProblems, clusterSummary } from './cluster-report.js';
import { safeUrl } from './cluster-setup.js';
import { writeDocsBlock } from './docs-block.js';
import { peersDocsBlock, peersNotes, peersProblems, peersSummary, peersTable, targetLines } from './peers-report.js';
import { added, fixed, int, pct, ratio, table } from './report.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const OUT_FILE = join(root, 'artifacts', 'bench-latest.json');
const DOCS_FILE = join(root, 'docs', 'BENCHMARKS.md');

function cpuLine(label: string, cpu: Record<string, number>): string {
  return (
    `  CPU during ${label} (100% = one core): hub ${pct(cpu.hub!)}, expose agent ${pct(cpu.expose!)}, ` +
    `reach agent ${pct(cpu.reach!)}, bench client+server ${pct(cpu.bench!)}; softirq ${pct(cpu.softirq!)}, other processes ${pct(cpu.other!)}, steal ${pct(cpu.steal!)}`
  );
}

function relayTable(r: RelayResults, bulkBytes: number, bulkRuns: number): string {
  const { bulk, latency, connRate } = r;
  return table(
    ['relay', 'direct', 'through hub', 'hub vs direct'],
    [
      [`throughput, ${bulkBytes / MiB} MiB one way (MiB/s, median of ${bulkRuns})`, fixed(bulk.directMiBps), fixed(bulk.tunnelMiBps), ratio(bulk.tunnelMiBps, bulk.directMiBps)],
      ['1-byte round trip p50 (µs)', int(latency.direct.p50), int(latency.tunnel.p50), added(latency.tunnel.p50, latency.direct.p50)],
      ['1-byte round trip p99 (µs)', int(latency.direct.p99), int(latency.tunnel.p99), added(latency.tunnel.p99, latency.direct.p99)],
      [`new connections/s (${connRate.direct.concurrency} in flight)`, int(connRate.direct.perSec), int(connRate.tunnel.perSec), ratio(connRate.tunnel.perSec, connRate.direct.perSec)],
      ['one connection, open to close, p50 (µs)', int(connRate.direct.each.p50), int(connRate.tunnel.each.p50), added(connRate.tunnel.each.p50, connRate.direct.each.p50)],
    ],
  );
}

/** The distribution and kernel, e.g. "Debian GNU/Linux 12 (bookworm), Linux 6.1.0". */
function osRelease(): string {
  let name = process.platform as string;
  try {
    name = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? name;
  } catch {
    // not Linux, or no os-release
  }
  return `${name}, kernel ${release()}`;
}

/**
 * The code measured: the commit, and whether apps/ or packages/ had uncommitted changes (a before/after comparison
 * needs to know), e.g. "6eb7cec" or "6eb7cec + uncommitted changes in apps/, packages/"; undefined outside git.
 */
function codeVersion(): string | undefined {
  const git = (...args: string[]) => spawnSync('git', ['-C', root, ...args], { encoding: 'utf8', timeout: 10_000 });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return undefined;
  const dirty = git('status', '--porcelain', '--', 'apps', 'packages').stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? ' + uncommitted changes in apps/, packages/' : ''}`;
}

async function main(): Promise<number> {
  // Ctrl-C or a CI timeout: exit normally so the harness's exit hook kills every child (hub, agents, sshd, socat, iperf3).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  // Every part measures the hub's relay, so the agents it starts (which inherit this environment) take no direct
  // paths; only the peer comparison's direct way turns them on, for its own agents (peer-ways.ts).
  process.env.CONNECT_DIRECT = 'off';
  const config = loadConfig();
  const cores = cpus().length;
  const started = new Date();
  const load0 = loadavg()[0]!;
  progress(`${config.quick ? 'quick run (BENCH_QUICK=1)' : 'full run'} on ${cores} CPU cores`);
  const relay = config.relay ? await relayBench(config) : undefined;
  const memory = config.memory ? await memoryBench(config) : undefined;
  const wrkThere = config.http ? await haveWrk() : false;
  if (config.http && !wrkThere) progress('http: wrk is not installed (apt-get install wrk); the HTTP part is skipped');
  const http = config.http && wrkThere ? await httpBench(config) : undefined;
  const peers = config.peers ? await peersBench(config) : undefined;
  const cluster = config.cluster ? await clusterBench(config) : undefined;
  const load1 = loadavg()[0]!;
  const code = codeVersion();

  const tables: string[] = [];
  if (relay) tables.push(relayTable(relay, config.bulkBytes, config.bulkRuns));
  if (memory) tables.push(memoryGoalsTable(memory), memoryAgentBreakdownTable(memory), memoryAgentsTable(memory));
  if (http) tables.push(httpTable(http));
  if (peers) tables.push(peersTable(peers));
  if (cluster) tables.push(clusterBlock(cluster));

  const notes: string[] = [];
  if (relay) {
    const { bulk, latency, connRate, processes } = relay;
    notes.push(
      cpuLine('tunnel throughput', bulk.cpu),
      cpuLine('tunnel round trips', latency.cpu),
      cpuLine('tunnel connection rate', connRate.cpu),
      `  throughput runs (MiB/s): direct ${bulk.direct.map((r) => fixed(r.mibPerSec)).join(', ')}; through the hub ${bulk.tunnel.map((r) => fixed(r.mibPerSec)).join(', ')}`,
      `  round trips: ${int(latency.direct.count)} per side; p90 direct ${int(latency.direct.p90)} µs, through the hub ${int(latency.tunnel.p90)} µs; max ${int(latency.direct.max)} / ${int(latency.tunnel.max)} µs`,
      `  connections: ${int(connRate.direct.completed)} direct, ${int(connRate.tunnel.completed)} through the hub (${fixed(connRate.tunnel.seconds)} s each side); ` +
        `failed ${connRate.direct.errors} / ${connRate.tunnel.errors}${connRate.tunnel.firstError ? ` (first: ${connRate.tunnel.firstError})` : ''}; ` +
        `open-to-close p99 ${int(connRate.direct.each.p99)} / ${int(connRate.tunnel.each.p99)} µs`,
      `  RSS after the relay runs: hub ${fixed(processes.hubRss / MiB)} MiB, expose agent ${fixed(processes.exposeAgentRss / MiB)} MiB, reach agent ${fixed(processes.reachAgentRss / MiB)} MiB`,
    );
  }
  if (memory) notes.push(...memoryNotes(memory));

  if (http) notes.push(...httpNotes(http));
  if (peers) notes.push(...peersNotes(peers), ...targetLines(peers).map((l) => `  ${l}`));
  if (cluster) notes.push(...clusterNotes(cluster));
  const model = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const lines = [
    `Private Connect bench: hub relay vs direct loopback (${config.quick ? 'quick run, BENCH_QUICK=1' : 'full run'})`,
    `code ${code ?? 'unknown (not a git work tree)'}; node ${process.version}, ${process.platform} ${process.arch}, ${cores} CPU cores (${model}), ${fixed(totalmem() / 1024 ** 3)} GiB RAM; load average ${fixed(load0, 2)} at start, ${fixed(load1, 2)} at end`,
    'Through the hub = bench client -> `connect reach` -> hub -> `connect expose` -> server; direct = bench client -> server. All on 127.0.0.1.',
    cores <= 2
      ? `Only ${cores} core${cores === 1 ? '' : 's'}: the hub, both agents and the bench client+server compete for CPU, so the through-the-hub figures are pessimistic.`
      : `The hub, both agents and the bench client+server share ${cores} cores.`,
    '',
    tables.join('\n\n'),
    '',
    ...notes,
    `results: ${OUT_FILE}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');

  const result = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    code: code ?? null,
    machine: { node: process.version, platform: process.platform, arch: process.arch, cores, cpu: model, totalMemBytes: totalmem(), loadAverage: { start: load0, end: load1 } },
    // The server URLs of the cluster part may hold passwords.
    config: { ...config, clusterPostgresUrl: safeUrl(config.clusterPostgresUrl), clusterNatsUrl: safeUrl(config.clusterNatsUrl) },
    summary: {
      ...(relay
        ? {
            throughputMiBps: { direct: relay.bulk.directMiBps, tunnel: relay.bulk.tunnelMiBps, ratio: relay.bulk.tunnelMiBps / relay.bulk.directMiBps },
            roundTripP50Us: { direct: relay.latency.direct.p50, tunnel: relay.latency.tunnel.p50, addedUs: relay.latency.tunnel.p50 - relay.latency.direct.p50 },
            roundTripP99Us: { direct: relay.latency.direct.p99, tunnel: relay.latency.tunnel.p99, addedUs: relay.latency.tunnel.p99 - relay.latency.direct.p99 },
            connectionsPerSec: { direct: relay.connRate.direct.perSec, tunnel: relay.connRate.tunnel.perSec, ratio: relay.connRate.tunnel.perSec / relay.connRate.direct.perSec },
          }
        : {}),
      ...(memory ? { hubMemory: memorySummary(memory) } : {}),
      ...(http ? { http: httpSummary(http) } : {}),
      ...(peers ? { peers: peersSummary(peers) } : {}),
      ...(cluster ? { cluster: clusterSummary(cluster) } : {}),
    },
    details: { relay, memory, http, peers, cluster },
  };
  mkdirSync(dirname(OUT_FILE), { recursive: true });
  writeFileSync(OUT_FILE, JSON.stringify(result, null, 2) + '\n');
  JSON.parse(readFileSync(OUT_FILE, 'utf8'));

  // What CI checks: every part produced its figures and no connection failed beyond a trace.
  const problems: string[] = [];
  if (relay) {
    if (!(relay.bulk.tunnelMiBps > 0) || !(relay.bulk.directMiBps > 0)) problems.push('no throughput figure');
    if (!(relay.latency.tunnel.count > 0) || !Number.isFinite(relay.latency.tunnel.p99)) problems.push('no latency figure');
    if (!(relay.connRate.tunnel.completed > 0) || !(relay.connRate.direct.completed > 0)) problems.push('no connection-rate figure');
    for (const [side, r] of [['direct', relay.connRate.direct], ['through the hub', relay.connRate.tunnel]] as const) {
      if (r.errors > Math.max(1, r.completed * 0.01)) problems.push(`${r.errors} failed connections ${side} (first: ${r.firstError})`);
    }
  }
  if (memory) problems.push(...memoryProblems(memory));
  if (config.http && !wrkThere) problems.push('wrk is missing: the HTTP figures could not be measured');
  if (http) problems.push(...httpProblems(http, config.quick));
  if (peers) problems.push(...peersProblems(peers));
  if (cluster) problems.push(...clusterProblems(cluster));
  if (config.writeDocs && (peers || http)) {
    const machine = `${cores} CPU cores (${model}), ${fixed(totalmem() / 1024 ** 3)} GiB RAM, ${osRelease()}; node ${process.version}; load average ${fixed(load0, 2)} at start, ${fixed(load1, 2)} at end`;
    if (peers) writeDocsBlock(DOCS_FILE, 'peers', peersDocsBlock(peers, config.quick, started, machine));
    if (http) writeDocsBlock(DOCS_FILE, 'http', httpDocsBlock(http, config.quick, started, machine, code));
    progress(`${[peers ? 'peers' : '', http ? 'http' : ''].filter(Boolean).join(' and ')}: results written into ${DOCS_FILE}`);
  }
  if (problems.length > 0) {
    process.stderr.write(`bench: FAILED: ${problems.join('; ')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
