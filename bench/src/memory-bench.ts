/**
 * Hub memory: RSS of a fresh hub process with N agents enrolled but none connected, then with N authenticated idle
 * agent WebSockets connected (hello/welcome done). Each sample follows a full GC in the hub (gc-hook.js, loaded only
 * into this benchmark's hub), so what is compared is live memory, not garbage.
 */

import { removeDirs, startHubProcess, type HubProcess } from '@private-connect/e2e';
import { median, progress, sleep, type BenchConfig } from './config.js';
import { connectFleet, enrolMany } from './fleet.js';
import { collectGarbage, gcHookEnv } from './gc-signal.js';
import { rssBytes } from './procstat.js';

export interface MemoryResults {
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

async function heapOf(hub: HubProcess): Promise<{ heapUsed: number; external: number }> {
  const m = await hub.metrics();
  return { heapUsed: m.get('nodejs_heap_size_used_bytes') ?? NaN, external: m.get('nodejs_external_memory_bytes') ?? NaN };
}

export async function memoryBench(config: BenchConfig): Promise<MemoryResults> {
  progress(`hub memory: a fresh hub process, ${config.agents} agents enrolled through the API`);
  // One API key enrols every agent: far more than the default per-key API limit allows in a minute.
  const hub = await startHubProcess({ env: { ...gcHookEnv(), HUB_RATE_LIMIT_API: '1000000/1m' } });
  try {
    const hubPid = hub.proc.child.pid ?? -1;
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
