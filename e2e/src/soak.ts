/**
 * The soak driver shared by the CI test (e2e/test/soak.test.ts, 60 s) and the long run (`npm run soak`,
 * soak-run.ts): a hub and three agent daemons on loopback, workers doing random echo transfers, aborts and bursts
 * through every reach port, and a killer that SIGKILLs a random agent and starts it again. At the end it stops the
 * traffic, waits for the agents, runs one checked transfer on every path, and measures what was left open and the
 * hub's memory (soak-finish.ts). It only measures: soakProblems() (soak-report.ts) decides whether a run passed.
 */

import { finishSoak, sampleHub } from './soak-finish.js';
import { startMesh, type Mesh, type MeshAgent } from './soak-mesh.js';
import { rssSlope, type SoakReport } from './soak-report.js';
import { createRng, runTransfer, type Rng, type TransferOutcome, type TransferPlan } from './soak-traffic.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** A transfer that fails this long after an agent came back is no longer blamed on the kill. */
const RECOVERY_GRACE_MS = 3000;
const SAMPLE_EVERY_MS = 2000;
const MAX_FAILURE_LINES = 30;

export interface SoakOptions {
  /** How long traffic runs. */
  seconds: number;
  seed: number;
  agents?: number;
  /** Concurrent worker loops (default 4). */
  workers?: number;
  /** Mean time between kills (each wait is 0.5-1.5× this); default a tenth of the run, 4-30 s. */
  killEveryMs?: number;
  /** Largest payload of one transfer (default 4 MiB). */
  maxPayload?: number;
  /** RSS "after warm-up" is the first sample this long after traffic started (default 20% of the run, 10-60 s). */
  warmupMs?: number;
  /** A transfer not closed by then is destroyed and counted as stalled (default 120 s). */
  transferTimeoutMs?: number;
  /** Called with a progress line every `progressEveryMs` (default 30 s). */
  onProgress?: (line: string) => void;
  progressEveryMs?: number;
  /** Keep the hub's and agents' folders and logs (their paths end up in report.keptDirs). */
  keep?: boolean;
}

/** When an agent was down: from its kill until it had restored everything (`to` is Infinity meanwhile). */
interface Outage {
  agent: MeshAgent;
  from: number;
  to: number;
}

/** What the traffic phase's loops share. */
interface Run {
  mesh: Mesh;
  options: SoakOptions;
  report: SoakReport;
  t0: number;
  deadline: number;
  /** Appended by the killer, never removed (read to excuse interrupted transfers). */
  outages: Outage[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Starts the mesh, runs the traffic for `options.seconds`, checks the end state, and tears everything down. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const names = ['soak-a', 'soak-b', 'soak-c', 'soak-d', 'soak-e'].slice(0, options.agents ?? 3);
  const mesh = await startMesh(names);
  const report = emptyReport(options);
  try {
    await drive(mesh, options, report);
    await finishSoak(mesh, report);
  } finally {
    report.keptDirs = await mesh.close(options.keep);
  }
  report.wallMs = Date.now() - started;
  return report;
}

function emptyReport(options: SoakOptions): SoakReport {
  return {
    seed: options.seed,
    seconds: options.seconds,
    wallMs: 0,
    transfers: { completed: 0, aborted: 0, interrupted: 0, unexplained: 0, stalled: 0, corrupt: 0 },
    bytesCompleted: 0,
    bursts: 0,
    kills: 0,
    restarts: 0,
    killLog: [],
    interruptedReasons: {},
    failures: [],
    end: { agentsConnected: 0, hubStreams: -1, agentOpen: {}, finalPassOk: false },
    rss: { start: 0, warm: 0, end: 0, max: 0, slopeMiBPerMin: 0 },
    streamsMax: 0,
    samples: [],
    keptDirs: [],
  };
}

/** The traffic phase: workers, the killer, the sampler and progress until the deadline, then the in-flight transfers. */
async function drive(mesh: Mesh, options: SoakOptions, report: SoakReport): Promise<void> {
  const t0 = Date.now();
  const run: Run = { mesh, options, report, t0, deadline: t0 + options.seconds * 1000, outages: [] };
  const warmupMs = options.warmupMs ?? Math.min(60_000, Math.max(10_000, options.seconds * 200));
  const stopSampling = sampler(run, warmupMs);
  const workers = Array.from({ length: options.workers ?? 4 }, (_, i) => worker(run, createRng(options.seed * 31 + i + 1)));
  await Promise.all([...workers, killer(run, createRng(options.seed * 31)), progress(run)]);
  await stopSampling();
  const trafficEnd = Date.now() - t0;
  report.rss.max = Math.max(0, ...report.samples.map((s) => s.rss));
  report.rss.slopeMiBPerMin = rssSlope(report.samples.filter((s) => s.t <= trafficEnd), warmupMs);
  if (report.rss.warm === 0) report.rss.warm = report.samples.at(-1)?.rss ?? 0;
}

function fail(run: Run, line: string): void {
  if (run.report.failures.length < MAX_FAILURE_LINES) run.report.failures.push(line);
}

/** Counts an outcome. A transfer cut short is excused only by an outage of one of the two agents on its path. */
function record(run: Run, plan: TransferPlan, path: [MeshAgent, MeshAgent], start: number, outcome: TransferOutcome): void {
  const { report } = run;
  const t = report.transfers;
  const what = `${path[0].name}→${path[1].name} ${plan.size} B (content seed ${plan.contentSeed}, started at +${((start - run.t0) / 1000).toFixed(1)} s)`;
  if (outcome.kind === 'completed') {
    t.completed++;
    report.bytesCompleted += outcome.size;
  } else if (outcome.kind === 'aborted') {
    t.aborted++;
  } else if (outcome.kind === 'corrupt') {
    t.corrupt++;
    fail(run, `corrupt: ${what}: ${outcome.reason}`);
  } else if (outcome.kind === 'stalled') {
    t.stalled++;
    fail(run, `stalled: ${what}: ${outcome.sent} sent, ${outcome.received} received`);
  } else if (run.outages.some((o) => path.includes(o.agent) && o.from <= Date.now() && o.to + RECOVERY_GRACE_MS >= start)) {
    t.interrupted++;
    const reason = outcome.reason.replace(/\d+/g, 'N');
    report.interruptedReasons[reason] = (report.interruptedReasons[reason] ?? 0) + 1;
  } else {
    t.unexplained++;
    fail(run, `failed with no agent down: ${what}: ${outcome.reason} (${outcome.sent} sent, ${outcome.received} received)`);
  }
}

/** One transfer of `size` bytes on a random path, destroyed at a random point when `abort`. */
async function transfer(run: Run, rng: Rng, size: number, abort: boolean): Promise<void> {
  const from = rng.pick(run.mesh.agents);
  const to = rng.pick(run.mesh.agents.filter((a) => a !== from));
  const plan: TransferPlan = {
    port: from.reachPorts.get(to.name)!,
    size,
    contentSeed: rng.int(0, 2 ** 31),
    timeoutMs: run.options.transferTimeoutMs ?? 120_000,
    ...(abort ? { abort: { side: rng.chance(0.5) ? ('send' as const) : ('receive' as const), afterBytes: rng.int(0, size - 1) } } : {}),
  };
  const start = Date.now();
  record(run, plan, [from, to], start, await runTransfer(plan));
}

/** 45% up to 64 KiB, 40% up to 1 MiB, 15% up to maxPayload. */
function randomSize(rng: Rng, maxPayload: number): number {
  const r = rng.next();
  if (r < 0.45) return rng.int(1, 64 * KiB);
  if (r < 0.85) return rng.int(64 * KiB, Math.min(MiB, maxPayload));
  return rng.int(Math.min(MiB, maxPayload), maxPayload);
}

/** Until the deadline: 70% a full transfer, 20% one destroyed on purpose, 10% a burst of 5-30 small ones at once. */
async function worker(run: Run, rng: Rng): Promise<void> {
  const maxPayload = run.options.maxPayload ?? 4 * MiB;
  while (Date.now() < run.deadline) {
    const r = rng.next();
    if (r < 0.1) {
      run.report.bursts++;
      const sizes = Array.from({ length: rng.int(5, 30) }, () => rng.int(1, 16 * KiB));
      await Promise.all(sizes.map((size) => transfer(run, rng, size, rng.chance(0.3))));
    } else {
      await transfer(run, rng, randomSize(rng, maxPayload), r < 0.3);
    }
  }
}

/** SIGKILLs a random agent, waits 0.2-3 s, starts it again and waits until it restored everything; repeats. */
async function killer(run: Run, rng: Rng): Promise<void> {
  const { options, deadline } = run;
  const killEveryMs = options.killEveryMs ?? Math.min(30_000, Math.max(4000, (options.seconds * 1000) / 10));
  await sleep(Math.min(killEveryMs * (0.5 + rng.next() * 0.5), deadline - Date.now()));
  while (Date.now() < deadline - 5000) {
    const agent = rng.pick(run.mesh.agents);
    const outage: Outage = { agent, from: Date.now(), to: Infinity };
    run.outages.push(outage);
    await run.mesh.kill(agent);
    run.report.kills++;
    const entry: SoakReport['killLog'][number] = { agent: agent.name, killedAt: (outage.from - run.t0) / 1000 };
    run.report.killLog.push(entry);
    await sleep(rng.int(200, 3000));
    try {
      await run.mesh.start(agent);
      run.report.restarts++;
      entry.backAt = (Date.now() - run.t0) / 1000;
    } catch (err) {
      return fail(run, `agent ${agent.name} did not come back: ${String(err).split('\n')[0]}`);
    } finally {
      outage.to = Date.now();
    }
    await sleep(Math.min(killEveryMs * (0.5 + rng.next()), deadline - Date.now()));
  }
}

/** Samples the hub every SAMPLE_EVERY_MS until the returned function is called (which waits for the loop to end). */
function sampler(run: Run, warmupMs: number): () => Promise<void> {
  const { report } = run;
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const sample = await sampleHub(run.mesh, Date.now() - run.t0);
      if (sample) {
        report.samples.push(sample);
        report.streamsMax = Math.max(report.streamsMax, sample.streams);
        if (report.rss.start === 0) report.rss.start = sample.rss;
        if (report.rss.warm === 0 && sample.t >= warmupMs) report.rss.warm = sample.rss;
      }
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  return async () => {
    sampling = false;
    await loop;
  };
}

async function progress(run: Run): Promise<void> {
  const { options, report } = run;
  const every = options.progressEveryMs ?? 30_000;
  while (options.onProgress && Date.now() + every <= run.deadline) {
    await sleep(every);
    const t = report.transfers;
    const last = report.samples.at(-1);
    options.onProgress(
      `+${Math.round((Date.now() - run.t0) / 1000)} s: ${t.completed} completed, ${t.interrupted} interrupted, ${t.aborted} aborted, ` +
        `${t.corrupt + t.stalled + t.unexplained} failed; ${report.kills} kills; hub ${last?.streams ?? '?'} streams, RSS ${last ? (last.rss / MiB).toFixed(1) : '?'} MiB`,
    );
  }
}
