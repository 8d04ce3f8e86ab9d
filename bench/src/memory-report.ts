/** The memory part's report: each figure beside its goal (issue 22: a hub on the smallest VPS), pass or miss. */

import { MiB } from './config.js';
import type { MemoryResults } from './memory-bench.js';
import { fixed, table } from './report.js';

/** Goals in MiB: idle hub on each database, peak of a first start (embedded database: the worst), idle agent. */
export const MEMORY_GOALS = {
  hubIdlePglite: 150,
  hubIdlePostgres: 100,
  firstStartPeak: 300,
  agentIdle: 50,
} as const;

export interface MemoryGoalRow {
  label: string;
  /** MiB; NaN when not measured. */
  measured: number;
  goal: number;
  /** undefined when the figure was not measured (a skipped part). */
  pass?: boolean;
}

/** The figures with goals, in the order the table prints them. */
export function memoryGoalRows(m: MemoryResults): MemoryGoalRow[] {
  const row = (label: string, bytes: number | undefined, goal: number): MemoryGoalRow => {
    const measured = bytes === undefined ? NaN : bytes / MiB;
    return { label, measured, goal, ...(Number.isFinite(measured) ? { pass: measured <= goal } : {}) };
  };
  return [
    row('hub idle RSS, embedded database', m.pglite.idleRss, MEMORY_GOALS.hubIdlePglite),
    row('hub idle RSS, PostgreSQL', m.postgres?.idleRss, MEMORY_GOALS.hubIdlePostgres),
    row('hub peak RSS during first start, embedded database (fresh folder, migrations)', m.pglite.peakRss, MEMORY_GOALS.firstStartPeak),
    row('hub peak RSS during first start, PostgreSQL', m.postgres?.peakRss, MEMORY_GOALS.firstStartPeak),
    row('`connect expose` agent idle RSS', m.exposeAgent.idleRss, MEMORY_GOALS.agentIdle),
    row('`connect reach` agent idle RSS', m.reachAgent.idleRss, MEMORY_GOALS.agentIdle),
  ];
}

export function memoryGoalsTable(m: MemoryResults): string {
  return table(
    ['memory (RSS from /proc, no forced GC)', 'measured MiB', 'goal MiB', 'result'],
    memoryGoalRows(m).map((r) => [r.label, fixed(r.measured), `<= ${r.goal}`, r.pass === undefined ? 'not measured' : r.pass ? 'pass' : 'MISS']),
  );
}

/**
 * Where an idle agent's RSS goes: the part only it holds (private pages) and the floor under every Node process on
 * this binary (a bare `node` that loads nothing), whose code pages every Node process on the machine shares.
 */
export function memoryAgentBreakdownTable(m: MemoryResults): string {
  const line = (label: string, p: MemoryResults['exposeAgent']) => [label, fixed(p.idleRss / MiB), fixed(p.idlePrivate / MiB), fixed((p.idleRss - p.idlePrivate) / MiB)];
  return table(
    ['idle process (no goal: where the agent figures come from)', 'RSS MiB', 'private MiB', 'shared MiB'],
    [line('bare `node -e` that loads nothing', m.bareNode), line('`connect expose` agent', m.exposeAgent), line('`connect reach` agent', m.reachAgent)],
  );
}

export function memoryAgentsTable(m: MemoryResults): string {
  return table(
    ['hub memory with idle agents (after a full GC)', 'value'],
    [
      ['hub RSS idle (MiB)', fixed(m.idleRss / MiB)],
      [`hub RSS with ${m.agents} idle agents connected (MiB)`, fixed(m.loadedRss / MiB)],
      [`hub RSS added by ${m.agents} agents (MiB)`, fixed((m.loadedRss - m.idleRss) / MiB)],
      ['hub RSS per connected agent (KiB)', fixed(m.perAgentRss / 1024)],
      ['hub JS heap per connected agent (KiB)', fixed(m.perAgentHeap / 1024)],
    ],
  );
}

export function memoryNotes(m: MemoryResults): string[] {
  const missed = memoryGoalRows(m).filter((r) => r.pass === false);
  return [
    `  memory: "idle" = settled RSS (4 samples 500 ms apart within 512 KiB) 2 s after the hub listened or the agent connected, no forced GC; ` +
      `"peak" = VmHWM, the highest RSS since the process started.${m.postgresSkipped ? ` PostgreSQL: skipped: ${m.postgresSkipped}.` : ''}`,
    `  agents: a bare Node ${process.version} process on this binary holds ${fixed(m.bareNode.idleRss / MiB)} MiB RSS (${fixed(m.bareNode.idlePrivate / MiB)} MiB of it private); ` +
      `the agents hold ${fixed(m.exposeAgent.idlePrivate / MiB)} and ${fixed(m.reachAgent.idlePrivate / MiB)} MiB private (V8 heap, buffers, malloc); the rest of their RSS is the node binary's code pages, shared by every Node process on the machine`,
    `  memory goals: ${missed.length === 0 ? 'all measured figures within their goals' : `missed: ${missed.map((r) => `${r.label} ${fixed(r.measured)} > ${r.goal} MiB`).join('; ')}`}`,
    `  hub memory with agents: "idle" = fresh hub, ${m.agents} agents enrolled, none connected; then ${m.agents} authenticated agent WebSockets ` +
      `(SDK HubConnection, hello/welcome) connected in ${fixed(m.connectSeconds)} s. VmRSS from /proc after a full GC in the hub.`,
    `  hub JS heap used ${fixed(m.idleHeapUsed / MiB)} -> ${fixed(m.loadedHeapUsed / MiB)} MiB, external ${fixed(m.idleExternal / MiB)} -> ${fixed(m.loadedExternal / MiB)} MiB ` +
      `(external is mostly the embedded database's WASM memory and files; docs/BENCHMARKS.md, "Memory"); RSS deltas carry a few MiB of allocator noise, the heap figure is the steadier one`,
  ];
}

/** What CI checks: every memory figure that ran was measured (a missed goal is printed, not an exit code). */
export function memoryProblems(m: MemoryResults): string[] {
  const missing = memoryGoalRows(m).filter((r) => !Number.isFinite(r.measured) && !(m.postgresSkipped && r.label.includes('PostgreSQL')));
  return [...(Number.isFinite(m.perAgentRss) ? [] : ['no hub memory figure']), ...missing.map((r) => `no figure for ${r.label}`)];
}

export function memorySummary(m: MemoryResults) {
  return {
    goals: memoryGoalRows(m).map((r) => ({ figure: r.label, measuredMiB: Number.isFinite(r.measured) ? r.measured : null, goalMiB: r.goal, pass: r.pass ?? null })),
    ...(m.postgresSkipped ? { postgresSkipped: m.postgresSkipped } : {}),
    agentPrivateMiB: { expose: m.exposeAgent.idlePrivate / MiB, reach: m.reachAgent.idlePrivate / MiB },
    bareNodeMiB: { rss: m.bareNode.idleRss / MiB, private: m.bareNode.idlePrivate / MiB },
    agents: m.agents,
    idleRssMiB: m.idleRss / MiB,
    loadedRssMiB: m.loadedRss / MiB,
    perAgentKiB: m.perAgentRss / 1024,
    perAgentHeapKiB: m.perAgentHeap / 1024,
  };
}
