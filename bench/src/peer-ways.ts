/**
 * The ways a client can reach a TCP service in the peer benchmark, each opened for a list of target ports and
 * giving back one port per target: direct loopback; a `socat` relay; an OpenSSH `ssh -R` reverse forward; and this
 * project (hub + `connect expose` + `connect reach`, real processes) through the hub's relay with end-to-end
 * encryption and without (direct paths off), and on its direct path between the agents (issue 25) with encryption.
 */

import { spawnSync } from 'node:child_process';
import { CONNECT_MAIN, enrolAgent, freePort, removeDirs, startHubProcess, startProcess, type Proc } from '@private-connect/e2e';
import { collectGarbage, gcHookEnv } from './gc-signal.js';
import { describePath, pathEvents, pathProblems } from './path-events.js';
import { haveCommand, stopTree, waitListening } from './peer-procs.js';
import { sshMissing, startSshForward } from './ssh-forward.js';

export type PeerWay = 'direct' | 'socat' | 'ssh' | 'connect' | 'connectPlain' | 'connectDirect';
export const PEER_WAYS: readonly PeerWay[] = ['direct', 'socat', 'ssh', 'connect', 'connectPlain', 'connectDirect'];

/** How long the direct way's reach agents may take to report their direct path before the way counts as failed. */
export const DIRECT_PATH_WAIT_MS = 10_000;

/** One opened way: a port per target, the processes that carry it, teardown. */
export interface Relay {
  ports: number[];
  /** Root processes of this way by role ("hub", "reach", "sshd", ...; their descendants count too); none for direct. */
  processes(): WayProcess[];
  /** Full GC in the way's Node processes before memory is sampled (hub and agents); absent for C programs. */
  collectGarbage?(): Promise<void>;
  /** What went wrong with the way while it was open (a relay way that went direct; a direct way that fell back). */
  problems?(): string[];
  stop(): Promise<void>;
}

/** The speed workloads' view of the open ways: ports, and turns in rotating order with errors recorded per way. */
export interface Turns {
  open: PeerWay[];
  /** The way's port for target `target` (an index into the target ports given to open()). */
  port(way: PeerWay, target: number): number;
  /** The way's processes by role (none for direct loopback), to sample their CPU. */
  processes(way: PeerWay): WayProcess[];
  /** Runs `work` for every way in each of `rounds` rounds; a throw is recorded as that way's error. */
  each(rounds: number, what: string, work: (way: PeerWay, round: number) => Promise<void>): Promise<void>;
}

export interface WayProcess {
  role: string;
  pid: number;
}

const pidOf = (p: Proc): number => p.child.pid ?? -1;

export interface WaySpec {
  way: PeerWay;
  label: string;
  /** Why this way cannot run on this machine or build, or undefined when it can. */
  skip?: string;
  open(targets: number[]): Promise<Relay>;
}

const connectHelp = (command: string) => spawnSync(process.execPath, [CONNECT_MAIN, command, '--help'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';

/** Whether `connect expose` and `connect reach` both offer --no-e2e (so this build has end-to-end encryption). */
export function connectHasNoE2eFlag(): boolean {
  return connectHelp('expose').includes('--no-e2e') && connectHelp('reach').includes('--no-e2e');
}

function direct(): WaySpec {
  return { way: 'direct', label: 'direct loopback', open: async (targets) => ({ ports: targets, processes: () => [], stop: async () => undefined }) };
}

/**
 * `socat TCP-LISTEN:p,fork,reuseaddr,backlog=1024 TCP:127.0.0.1:target`, one per target: a process forked per
 * connection. socat's default listen backlog is 5: with many connections arriving at once the kernel drops the
 * rest and they only get through on SYN retries seconds later (or not within the streams workload's 30 s), so
 * the backlog is raised to what anyone running socat for that load would set.
 */
function socat(): WaySpec {
  const open = async (targets: number[]): Promise<Relay> => {
    const procs: Proc[] = [];
    const stop = async () => void (await Promise.all(procs.map(stopTree)));
    try {
      const ports: number[] = [];
      for (const target of targets) {
        const port = await freePort();
        const proc = startProcess('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=1024`, `TCP:127.0.0.1:${target}`], {}, 'socat');
        procs.push(proc);
        await waitListening(port, proc, 'socat');
        ports.push(port);
      }
      return { ports, processes: () => procs.map((p) => ({ role: 'socat', pid: pidOf(p) })), stop };
    } catch (err) {
      await stop();
      throw err;
    }
  };
  return { way: 'socat', label: 'socat relay', ...(haveCommand('socat') ? {} : { skip: 'socat is not installed (apt-get install socat)' }), open };
}

function ssh(): WaySpec {
  const missing = sshMissing();
  return { way: 'ssh', label: 'ssh -R (OpenSSH)', ...(missing ? { skip: missing } : {}), open: startSshForward };
}

/** Which direct-path flags this build of `connect` offers (until they land, CONNECT_DIRECT alone decides). */
interface DirectCli {
  exposeNoDirect: boolean;
  exposeDirectPort: boolean;
  reachNoDirect: boolean;
}

function directCli(): DirectCli {
  const expose = connectHelp('expose');
  const reach = connectHelp('reach');
  return { exposeNoDirect: expose.includes('--no-direct'), exposeDirectPort: expose.includes('--direct-port'), reachNoDirect: reach.includes('--no-direct') };
}

/** Resolves once the reach of `name` reports its direct path; rejects, saying what it reported instead, after DIRECT_PATH_WAIT_MS. */
async function waitDirect(proc: Proc, name: string): Promise<void> {
  try {
    await proc.waitFor((l) => l.type === 'path' && l.name === name && l.mode === 'direct', DIRECT_PATH_WAIT_MS, `direct path for ${name}`);
  } catch {
    const events = pathEvents(proc.lines, name);
    const exited = proc.child.exitCode ?? proc.child.signalCode;
    const said = exited !== null ? `connect reach exited (${exited})` : events.length > 0 ? `its last path event: ${describePath(events.at(-1)!)}` : 'no path event at all';
    throw new Error(`${name} did not go direct within ${DIRECT_PATH_WAIT_MS / 1000} s (${said})`);
  }
}

/**
 * A hub process, and per target one `connect expose` and one `connect reach`, each in its own process. All of
 * them load gc-hook.js, so that memory can be sampled after a full GC (a fresh hub holds much start-up garbage).
 * `direct` false: the relay, direct paths off by CONNECT_DIRECT=off and --no-direct where the CLI has it. `direct`
 * true: CONNECT_DIRECT=on, each expose agent on a direct port of its own, and the way opens only once every reach
 * reported its direct path (within DIRECT_PATH_WAIT_MS; otherwise opening fails, the way's error).
 */
function connect(way: 'connect' | 'connectPlain' | 'connectDirect', label: string, flags: string[], direct: boolean, skip?: string): WaySpec {
  const open = async (targets: number[]): Promise<Relay> => {
    const env = { ...gcHookEnv(), CONNECT_DIRECT: direct ? 'on' : 'off' };
    const cli = directCli();
    const hub = await startHubProcess({ env });
    const procs: Array<{ role: string; proc: Proc }> = [];
    const reaches: Array<{ name: string; proc: Proc }> = [];
    const homes: string[] = [];
    const stop = async () => {
      await Promise.all(procs.map((p) => p.proc.stop()));
      await hub.stop();
      await removeDirs(hub.dataDir, ...homes);
    };
    try {
      const exposing = await enrolAgent(hub, { label: `bench-peers-expose-${way}`, env });
      homes.push(exposing.home);
      const reaching = await enrolAgent(hub, { label: `bench-peers-reach-${way}`, env });
      homes.push(reaching.home);
      const ports: number[] = [];
      for (const [i, target] of targets.entries()) {
        const name = `bench-peer-${i}`;
        // One expose agent per target: each needs a direct port of its own.
        const exposeDirect = direct ? (cli.exposeDirectPort ? ['--direct-port', String(await freePort())] : []) : cli.exposeNoDirect ? ['--no-direct'] : [];
        // No periodic health checks: they would open extra connections to iperf3's server (ssh and socat have none).
        procs.push({ role: 'expose agent', proc: await exposing.expose(`127.0.0.1:${target}`, name, [...flags, ...exposeDirect, '--check-interval', '0']) });
        const reach = await reaching.reach(name, ['--port', '0', ...flags, ...(!direct && cli.reachNoDirect ? ['--no-direct'] : [])]);
        procs.push({ role: 'reach agent', proc: reach.proc });
        reaches.push({ name, proc: reach.proc });
        ports.push(reach.port);
      }
      if (direct) await Promise.all(reaches.map((r) => waitDirect(r.proc, r.name)));
      const all = [{ role: 'hub', proc: hub.proc }, ...procs];
      return {
        ports,
        processes: () => all.map((p) => ({ role: p.role, pid: pidOf(p.proc) })),
        collectGarbage: async () => void (await Promise.all(all.map((p) => collectGarbage(p.proc)))),
        problems: () => reaches.flatMap((r) => pathProblems(r.name, pathEvents(r.proc.lines, r.name), direct)),
        stop,
      };
    } catch (err) {
      await stop();
      throw err;
    }
  };
  return { way, label, ...(skip ? { skip } : {}), open };
}

/** Every way, in table order; ways that cannot run say why in `skip`. */
export function peerWays(): WaySpec[] {
  const e2e = connectHasNoE2eFlag();
  const noFlag = 'this build of `connect` has no --no-e2e flag on both expose and reach yet (end-to-end encryption not landed); the plaintext variant is skipped';
  return [
    direct(),
    socat(),
    ssh(),
    connect('connect', e2e ? 'connect, relay (E2E)' : 'connect, relay (no E2E in this build)', [], false),
    connect('connectPlain', 'connect, relay, --no-e2e', ['--no-e2e'], false, e2e ? undefined : noFlag),
    connect('connectDirect', 'connect, direct path (E2E)', [], true),
  ];
}
