/**
 * The soak's world: one hub process and N agents, each a `connect daemon run` process (one process that both
 * exposes its own echo server and reaches every other agent's), which can be SIGKILLed and started again on the
 * same config folder. What each daemon runs is set up beforehand with plain `connect expose` and `connect reach`,
 * which remember it in state.json; reach ports come back from there after a restart.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { echoServer, type TcpServer } from './tcp.js';
import { enrolAgent, removeDirs, startHubProcess, type AgentHome, type HubProcess } from './harness.js';
import type { Proc } from './processes.js';

/** Waits for a restarted daemon to have restored everything (hub reconnect, expose, reaches). */
const RESTORE_TIMEOUT_MS = 90_000;

export interface MeshAgent {
  /** The agent's label and the name of the service it exposes. */
  name: string;
  home: AgentHome;
  echo: TcpServer;
  /** The running daemon; undefined while killed. */
  daemon: Proc | undefined;
  /** Local reach port on this agent for each other agent's service (updated from `listening` events on restart). */
  reachPorts: Map<string, number>;
}

export interface Mesh {
  hub: HubProcess;
  agents: MeshAgent[];
  /** SIGKILLs the agent's daemon. */
  kill(agent: MeshAgent): Promise<void>;
  /** Starts the agent's daemon again and resolves once it restored its expose and every reach. */
  start(agent: MeshAgent): Promise<void>;
  /**
   * Stops every process and removes the temp folders; with `keep`, leaves them (each agent's daemon.log, the hub's
   * output in hub.log of its data folder) and resolves with their paths.
   */
  close(keep?: boolean): Promise<string[]>;
}

export async function startMesh(names: string[]): Promise<Mesh> {
  const hub = await startHubProcess();
  const agents: MeshAgent[] = [];
  const mesh: Mesh = {
    hub,
    agents,
    async kill(agent) {
      const daemon = agent.daemon;
      agent.daemon = undefined;
      await daemon?.kill();
    },
    async start(agent) {
      const daemon = agent.home.start(['daemon', 'run']);
      agent.daemon = daemon;
      const others = names.filter((n) => n !== agent.name);
      const restored = (kind: string, name: string) =>
        daemon.waitFor((l) => l.type === 'restored' && l.kind === kind && l.name === name, RESTORE_TIMEOUT_MS, `restored ${kind} ${name} on ${agent.name}`);
      await Promise.all([restored('expose', agent.name), ...others.map((n) => restored('reach', n))]);
      for (const name of others) {
        const listening = daemon.lines.findLast((l): l is Record<string, unknown> => typeof l === 'object' && l.type === 'listening' && l.name === name);
        if (listening) agent.reachPorts.set(name, Number(listening.port));
      }
    },
    async close(keep = false) {
      await Promise.all(agents.map((a) => a.daemon?.stop()));
      await Promise.all(agents.map((a) => a.echo.close()));
      await hub.stop();
      const dirs = [hub.dataDir, ...agents.map((a) => a.home.home)];
      if (!keep) {
        await removeDirs(...dirs);
        return [];
      }
      const text = hub.proc.lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');
      await writeFile(join(hub.dataDir, 'hub.log'), `${text}\n${hub.proc.stderr()}`);
      return dirs;
    },
  };
  try {
    for (const name of names) {
      agents.push({ name, home: await enrolAgent(hub, { label: name }), echo: await echoServer(), daemon: undefined, reachPorts: new Map() });
    }
    await rememberServices(agents);
    await Promise.all(agents.map((a) => mesh.start(a)));
    return mesh;
  } catch (err) {
    await mesh.close().catch(() => undefined);
    throw err;
  }
}

/** Runs `connect expose` on every agent, then `connect reach` of every other service, so state.json holds them all. */
async function rememberServices(agents: MeshAgent[]): Promise<void> {
  const procs: Proc[] = [];
  try {
    for (const p of await Promise.all(agents.map((a) => a.home.expose(`127.0.0.1:${a.echo.port}`, a.name)))) procs.push(p);
    // One reach at a time per folder: state.json is read, changed and written back by each process, so two
    // processes starting at once in the same folder can lose one's entry.
    await Promise.all(
      agents.map(async (a) => {
        for (const b of agents.filter((other) => other !== a)) {
          const { proc, port } = await a.home.reach(b.name, ['--port', '0']);
          procs.push(proc);
          a.reachPorts.set(b.name, port);
          await proc.stop();
        }
      }),
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
