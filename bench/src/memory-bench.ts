/**
 * Memory, as a person renting the smallest VPS sees it (goals in memory-report.ts):
 * - the hub's first start on a fresh data folder (embedded database: template copy and migrations), its peak RSS
 *   (VmHWM) and its idle RSS once settled, with no forced GC: what `top` shows;
 * - an idle `connect expose` and an idle `connect reach` agent, connected to that hub;
 * - the same first start on a fresh PostgreSQL database (skipped, saying why, without PostgreSQL);
 * - then RSS with N agents enrolled but none connected, and with N authenticated idle agent WebSockets connected
 *   (hello/welcome done). Those samples follow a full GC in the hub (gc-hook.js, loaded only into this benchmark's
 *   hub), so what is compared is live memory, not garbage.
 */

import { enrolAgent, removeDirs, startHubProcess, startProcess, type HubProcess, type Proc } from '@private-connect/e2e';
import { median, progress, sleep, type BenchConfig } from './config.js';
import { createDatabase, message, postgresProblem, safeUrl } from './cluster-setup.js';
import { connectFleet, enrolMany } from './fleet.js';
import { collectGarbage, gcHookEnv } from './gc-signal.js';
import { peakRssBytes, privateBytes, rssBytes } from './procstat.js';
import { sinkServer } from './servers.js';

/** A process's memory: settled RSS without a forced GC, and the highest RSS it had since it started (VmHWM). */
export interface ProcessMemory {
  idleRss: number;
  peakRss: number;
  /** Private_Clean + Private_Dirty when idle: what this process holds that no other Node process shares. */
  idlePrivate: number;
}

export interface MemoryResults {
  /** The hub on a fresh data folder, from its first start to idle. */
  pglite: ProcessMemory;
  /** The hub on a fresh PostgreSQL database; undefined when skipped (postgresSkipped says why). */
  postgres?: ProcessMemory;
  postgresSkipped?: string;
  /** Idle agents connected to the hub: `connect expose` of one service, `connect reach` of it. */
  exposeAgent: ProcessMemory;
  reachAgent: ProcessMemory;
  /** A bare `node` process on the same Node binary, idle: the floor under any agent's RSS (no goal). */
  bareNode: ProcessMemory;
  agents: number;
  connectedAtHub: number;
  /** Seconds from the first agent connect to the last welcome. */
  connectSeconds: number;
  idleRss: number;
  loadedRss: number;
  perAgentRss: number;
  idleHeapUsed: number;
  loadedHeapUsed: number;
  perAgentHeap: number;
  idleExternal: number;
  loadedExternal: number;
}

/**
 * RSS of a process once it has settled: after a GC, V8 and malloc hand pages back to the system over the next
 * seconds, so samples are taken every 500 ms until the last 4 lie within 512 KiB (at most 20 s); their median.
 */
async function settledRss(pid: number): Promise<number> {
  const values: number[] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = rssBytes(pid);
    if (v === undefined) throw new Error(`cannot read /proc/${pid}/status`);
    values.push(v);
    const last = values.slice(-4);
    if ((last.length === 4 && Math.max(...last) - Math.min(...last) <= 512 * 1024) || Date.now() > deadline) return median(last);
    await sleep(500);
  }
}

/** Idle memory of a process that just started or connected: 2 s to finish what it started, then settled RSS. */
async function idleMemory(proc: Proc): Promise<ProcessMemory> {
  const pid = proc.child.pid ?? -1;
  await sleep(2000);
  const idleRss = await settledRss(pid);
  return { idleRss, peakRss: peakRssBytes(pid) ?? NaN, idlePrivate: privateBytes(pid) ?? NaN };
}

/** A `node` process that loads nothing and waits: what every Node process on this binary holds at least. */
async function bareNodeMemory(): Promise<ProcessMemory> {
  const proc = startProcess(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], {}, 'bare node');
  try {
    return await idleMemory(proc);
  } finally {
    await proc.stop();
  }
}

/** Idle `connect expose` and `connect reach` agents against the hub (each its own enrolment), then stopped. */
async function agentMemory(hub: HubProcess): Promise<{ exposeAgent: ProcessMemory; reachAgent: ProcessMemory; bareNode: ProcessMemory }> {
  const sink = await sinkServer();
  const exposing = await enrolAgent(hub, { label: 'bench-mem-expose' });
  const reaching = await enrolAgent(hub, { label: 'bench-mem-reach' });
  const procs: Proc[] = [];
  try {
    const expose = await exposing.expose(`127.0.0.1:${sink.port}`, 'bench-mem');
    procs.push(expose);
    const reach = await reaching.reach('bench-mem');
    procs.push(reach.proc);
    const [exposeAgent, reachAgent] = await Promise.all([idleMemory(expose), idleMemory(reach.proc)]);
    return { exposeAgent, reachAgent, bareNode: await bareNodeMemory() };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await sink.close();
    await removeDirs(exposing.home, reaching.home);
  }
}

/** The hub's first start on a fresh PostgreSQL database (migrations included) to idle; skipped without PostgreSQL. */
async function postgresMemory(config: BenchConfig): Promise<{ postgres?: ProcessMemory; postgresSkipped?: string }> {
  const adminUrl = config.clusterPostgresUrl;
  const problem = await postgresProblem(adminUrl);
  const skip = (why: string) => {
    progress(`hub memory: PostgreSQL part skipped: ${why}`);
    return { postgresSkipped: why };
  };
  if (problem) return skip(`${problem} (BENCH_POSTGRES_URL picks another server)`);
  let database;
  try {
    database = await createDatabase(adminUrl);
  } catch (err) {
    return skip(`cannot create a database on ${safeUrl(adminUrl)}: ${message(err)}`);
  }
  try {
    progress('hub memory: a hub process on a fresh PostgreSQL database');
    const hub = await startHubProcess({ databaseUrl: database.url });
    try {
      return { postgres: await idleMemory(hub.proc) };
    } finally {
      await hub.stop();
      await removeDirs(hub.dataDir);
    }
  } finally {
    await database.drop();
  }
}

async function heapOf(hub: HubProcess): Promise<{ heapUsed: number; external: number }> {
  const m = await hub.metrics();
  return { heapUsed: m.get('nodejs_heap_size_used_bytes') ?? NaN, external: m.get('nodejs_external_memory_bytes') ?? NaN };
}

export async function memoryBench(config: BenchConfig): Promise<MemoryResults> {
  const pgliteParts = await pgliteMemory(config);
  return { ...pgliteParts, ...(await postgresMemory(config)) };
}

/** Everything measured on the hub with the embedded database, and the agents connected to it. */
async function pgliteMemory(config: BenchConfig): Promise<Omit<MemoryResults, 'postgres' | 'postgresSkipped'>> {
  progress('hub memory: a hub process on a fresh data folder (embedded database), first start to idle');
  // One API key enrols every agent: far more than the default per-key API limit allows in a minute.
  const hub = await startHubProcess({ env: { ...gcHookEnv(), HUB_RATE_LIMIT_API: '1000000/1m' } });
  try {
    const hubPid = hub.proc.child.pid ?? -1;
    const pglite = await idleMemory(hub.proc);
    progress('hub memory: an idle `connect expose` and an idle `connect reach` agent');
    const agentParts = await agentMemory(hub);
    progress(`hub memory: ${config.agents} agents enrolled through the API`);
    const enrolled = await enrolMany(hub.url, hub.apiKey, config.agents);
    await sleep(1000);
    await collectGarbage(hub.proc);
    const idleHeap = await heapOf(hub);
    const idleRss = await settledRss(hubPid);

    progress(`hub memory: connecting ${config.agents} agents (SDK HubConnection: authenticated upgrade, hello, welcome)`);
    const fleet = await connectFleet(
      hub.url,
      enrolled.map((e) => e.token),
    );
    try {
      const deadline = Date.now() + 30_000;
      let connected = 0;
      while (Date.now() < deadline) {
        connected = (await hub.metrics()).get('connect_agents_connected') ?? 0;
        if (connected >= config.agents) break;
        await sleep(200);
      }
      if (connected < config.agents) throw new Error(`only ${connected} of ${config.agents} agents are connected at the hub`);
      await sleep(2000);
      await collectGarbage(hub.proc);
      const loadedHeap = await heapOf(hub);
      const loadedRss = await settledRss(hubPid);
      return {
        pglite,
        ...agentParts,
        agents: config.agents,
        connectedAtHub: connected,
        connectSeconds: fleet.connectSeconds,
        idleRss,
        loadedRss,
        perAgentRss: (loadedRss - idleRss) / config.agents,
        idleHeapUsed: idleHeap.heapUsed,
        loadedHeapUsed: loadedHeap.heapUsed,
        perAgentHeap: (loadedHeap.heapUsed - idleHeap.heapUsed) / config.agents,
        idleExternal: idleHeap.external,
        loadedExternal: loadedHeap.external,
      };
    } finally {
      await fleet.close();
    }
  } finally {
    await hub.stop();
    await removeDirs(hub.dataDir);
  }
}
