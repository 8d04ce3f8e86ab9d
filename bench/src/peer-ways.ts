/**
 * The ways a client can reach a TCP service in the peer benchmark, each opened for a list of target ports and
 * giving back one port per target: direct loopback; a `socat` relay; an OpenSSH `ssh -R` reverse forward; and this
 * project (hub + `connect expose` + `connect reach`, real processes) with end-to-end encryption and without.
 */

import { spawnSync } from 'node:child_process';
import { CONNECT_MAIN, enrolAgent, freePort, removeDirs, startHubProcess, startProcess, type Proc } from '@private-connect/e2e';
import { collectGarbage, gcHookEnv } from './gc-signal.js';
import { haveCommand, stopTree, waitListening } from './peer-procs.js';
import { sshMissing, startSshForward } from './ssh-forward.js';

export type PeerWay = 'direct' | 'socat' | 'ssh' | 'connect' | 'connectPlain';
export const PEER_WAYS: readonly PeerWay[] = ['direct', 'socat', 'ssh', 'connect', 'connectPlain'];

/** One opened way: a port per target, the processes that carry it, teardown. */
export interface Relay {
  ports: number[];
  /** Root processes of this way by role ("hub", "reach", "sshd", ...; their descendants count too); none for direct. */
  processes(): WayProcess[];
  /** Full GC in the way's Node processes before memory is sampled (hub and agents); absent for C programs. */
  collectGarbage?(): Promise<void>;
  stop(): Promise<void>;
}

/** The speed workloads' view of the open ways: ports, and turns in rotating order with errors recorded per way. */
export interface Turns {
  open: PeerWay[];
  /** The way's port for target `target` (an index into the target ports given to open()). */
  port(way: PeerWay, target: number): number;
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

/** Whether `connect expose` and `connect reach` both offer --no-e2e (so this build has end-to-end encryption). */
export function connectHasNoE2eFlag(): boolean {
  const help = (command: string) => spawnSync(process.execPath, [CONNECT_MAIN, command, '--help'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
  return help('expose').includes('--no-e2e') && help('reach').includes('--no-e2e');
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

/**
 * A hub process, and per target one `connect expose` and one `connect reach`, each in its own process. All of
 * them load gc-hook.js, so that memory can be sampled after a full GC (a fresh hub holds much start-up garbage).
 */
function connect(way: 'connect' | 'connectPlain', label: string, flags: string[], skip?: string): WaySpec {
  const open = async (targets: number[]): Promise<Relay> => {
    const env = gcHookEnv();
    const hub = await startHubProcess({ env });
    const procs: Array<{ role: string; proc: Proc }> = [];
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
        // No periodic health checks: they would open extra connections to iperf3's server (ssh and socat have none).
        procs.push({ role: 'expose agent', proc: await exposing.expose(`127.0.0.1:${target}`, name, [...flags, '--check-interval', '0']) });
        const reach = await reaching.reach(name, ['--port', '0', ...flags]);
        procs.push({ role: 'reach agent', proc: reach.proc });
        ports.push(reach.port);
      }
      const all = [{ role: 'hub', proc: hub.proc }, ...procs];
      return {
        ports,
        processes: () => all.map((p) => ({ role: p.role, pid: pidOf(p.proc) })),
        collectGarbage: async () => void (await Promise.all(all.map((p) => collectGarbage(p.proc)))),
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
    connect('connect', e2e ? 'connect (E2E, default)' : 'connect (default; no E2E in this build)', []),
    connect('connectPlain', 'connect --no-e2e', ['--no-e2e'], e2e ? undefined : noFlag),
  ];
}
