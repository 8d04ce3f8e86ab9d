/**
 * The end of a soak run, once traffic stopped: wait for every agent, one checked transfer on every path, then what
 * was left open (the hub's gauge, each agent's `connect status`) and the hub's memory.
 */

import { readFile } from 'node:fs/promises';
import { eventually } from './tcp.js';
import type { Mesh, MeshAgent } from './soak-mesh.js';
import type { RssSample, SoakReport } from './soak-report.js';
import { runTransfer, type TransferOutcome, type TransferPlan } from './soak-traffic.js';

const KiB = 1024;

/** Fills report.end and report.rss.end; a step that fails adds a line to report.failures. */
export async function finishSoak(mesh: Mesh, report: SoakReport): Promise<void> {
  const hubValue = async (name: string) => (await mesh.hub.metrics()).get(name) ?? NaN;
  await eventually(async () => {
    report.end.agentsConnected = await hubValue('connect_agents_connected');
    if (report.end.agentsConnected !== mesh.agents.length) throw new Error('agents not all connected');
  }, 60_000, 500).catch(() => report.failures.push(`only ${report.end.agentsConnected} of ${mesh.agents.length} agents connected 60 s after the traffic stopped`));

  await finalPass(mesh, report);

  await eventually(async () => {
    report.end.hubStreams = await hubValue('connect_streams_open');
    if (report.end.hubStreams !== 0) throw new Error('streams open');
  }, 30_000, 500).catch(() => undefined);

  for (const agent of mesh.agents) report.end.agentOpen[agent.name] = -1;
  await eventually(async () => {
    for (const agent of mesh.agents) report.end.agentOpen[agent.name] = agentOpenConnections(agent);
    if (Object.values(report.end.agentOpen).some((n) => n !== 0)) throw new Error('connections open');
  }, 20_000, 1000).catch(() => undefined);

  // A few tries: the blocking `connect status` calls above can leave the client a keep-alive socket the hub closed.
  const last = await eventually(async () => (await sampleHub(mesh, 0)) ?? Promise.reject(new Error('no sample')), 10_000, 500).catch(() => undefined);
  report.rss.end = last?.rss ?? 0;
}

/** One 256 KiB checked transfer on every path (retried while it is cut short, for up to 30 s). */
async function finalPass(mesh: Mesh, report: SoakReport): Promise<void> {
  report.end.finalPassOk = true;
  for (const from of mesh.agents) {
    for (const to of mesh.agents.filter((a) => a !== from)) {
      const plan: TransferPlan = { port: from.reachPorts.get(to.name)!, size: 256 * KiB, contentSeed: report.seed, timeoutMs: 30_000 };
      const outcome = await eventually(async () => {
        const o = await runTransfer(plan);
        if (o.kind === 'interrupted') throw new Error(o.reason);
        return o;
      }, 30_000, 500).catch((err: unknown): TransferOutcome => ({ kind: 'interrupted', reason: String(err), sent: 0, received: 0 }));
      if (outcome.kind === 'completed') continue;
      report.end.finalPassOk = false;
      if (outcome.kind === 'corrupt') report.transfers.corrupt++;
      report.failures.push(`final pass ${from.name}→${to.name}: ${outcome.kind}${'reason' in outcome ? `: ${outcome.reason}` : ''}`);
    }
  }
}

/** Open local connections of the agent's daemon, as `connect status --json` reports them; -1 when unknown. */
function agentOpenConnections(agent: MeshAgent): number {
  const status = agent.home.run(['status']);
  if (status.code !== 0) return -1;
  const pid = agent.daemon?.child.pid;
  const services = (status.json() as { services: Array<{ pid?: number; traffic?: { open: number } }> }).services.filter((s) => s.pid === pid);
  if (services.length === 0) return -1;
  return services.reduce((n, s) => n + (s.traffic?.open ?? 0), 0);
}

/** The hub's RSS (from /proc, else its metrics) and open streams; undefined if the hub did not answer. */
export async function sampleHub(mesh: Mesh, t: number): Promise<RssSample | undefined> {
  try {
    const metrics = await mesh.hub.metrics();
    let rss = metrics.get('process_resident_memory_bytes') ?? 0;
    const status = await readFile(`/proc/${mesh.hub.proc.child.pid}/status`, 'utf8').catch(() => '');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    if (kb) rss = Number(kb) * 1024;
    return { t, rss, streams: metrics.get('connect_streams_open') ?? 0 };
  } catch {
    return undefined;
  }
}
