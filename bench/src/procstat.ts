/** Resident memory and CPU time of a process, read from /proc (Linux) without touching the process itself. */

import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every mainstream Linux. */
const CLK_TCK = 100;

function statusBytes(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in bytes, or undefined when /proc is not there. */
export const rssBytes = (pid: number): number | undefined => statusBytes(pid, 'VmRSS');

/** VmHWM of a process in bytes: the highest RSS it has had since it started (the kernel keeps it). */
export const peakRssBytes = (pid: number): number | undefined => statusBytes(pid, 'VmHWM');

/**
 * Memory only this process holds, in bytes: Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup. RSS also counts
 * the pages of the node binary and the C libraries that every Node process on the machine shares (about 35-40 MiB).
 */
export function privateBytes(pid: number): number | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(rollup)?.[1] ?? NaN);
    const sum = kib('Private_Clean') + kib('Private_Dirty');
    return Number.isFinite(sum) ? sum * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds a process has used so far, or undefined without /proc. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which is in parentheses and may hold spaces): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime (14), stime (15)
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process and of its children it has reaped (utime, stime, cutime, cstime), or undefined. */
function cpuWithReapedSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK; // utime, stime, cutime, cstime (14-17)
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds so far of some processes and all their descendants. A fork that exited and was reaped counts through
 * its parent's cutime/cstime (socat's per-connection children, sshd's session processes), so a difference of two
 * samples holds the forks that came and went between them.
 */
export function treeCpuSeconds(roots: number[]): number {
  const pids = [...new Set(roots.flatMap(processTree))];
  return pids.reduce((a, pid) => a + (cpuWithReapedSeconds(pid) ?? 0), 0);
}

/** Cores each role's processes (and their descendants) kept busy while `work` ran: CPU seconds / wall seconds, 1 = one core. */
export async function withRoleCpu<T>(processes: Array<{ role: string; pid: number }>, work: () => Promise<T>): Promise<{ result: T; cores: Record<string, number> }> {
  const roles = [...new Set(processes.map((p) => p.role))];
  const sample = () => Object.fromEntries(roles.map((role) => [role, treeCpuSeconds(processes.filter((p) => p.role === role).map((p) => p.pid))]));
  const before = sample();
  const t0 = process.hrtime.bigint();
  const result = await work();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = sample();
  return { result, cores: Object.fromEntries(roles.map((role) => [role, (after[role]! - before[role]!) / wall])) };
}

/** CPU seconds of the whole machine (all cores) so far, from /proc/stat: busy in processes, in softirq, stolen. */
export function machineSeconds(): { busy: number; softirq: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return { busy: (user! + nice! + system! + irq!) / CLK_TCK, softirq: softirq! / CLK_TCK, steal: steal! / CLK_TCK };
  } catch {
    return { busy: NaN, softirq: NaN, steal: NaN };
  }
}

/** Samples the CPU time of named processes around a piece of work: CPU seconds / wall seconds per process. */
export async function withCpu<T>(pids: Record<string, number>, work: () => Promise<T>): Promise<{ result: T; cpu: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) ?? NaN]));
  const machine0 = machineSeconds();
  const self0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const result = await work();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const self = process.cpuUsage(self0);
  const cpu: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) cpu[name] = ((cpuSeconds(pid) ?? NaN) - before[name]!) / wall;
  cpu.bench = (self.user + self.system) / 1e6 / wall;
  // Everything else that ran meanwhile: softirq (mostly loopback TCP, ours or not), other processes, hypervisor steal.
  const ours = Object.values(cpu).reduce((a, b) => a + b, 0);
  const machine1 = machineSeconds();
  cpu.softirq = (machine1.softirq - machine0.softirq) / wall;
  cpu.steal = (machine1.steal - machine0.steal) / wall;
  cpu.other = Math.max(0, (machine1.busy - machine0.busy) / wall - ours);
  return { result, cpu };
}

/** Parent pid of a process, or undefined when it is gone. */
function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** A process and all its descendants (socat's forked children, sshd's per-connection processes), from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const ppid = parentPid(pid);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (!existsSync(`/proc/${pid}`)) continue;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Proportional set size of a process in bytes (shared pages split among their users), or undefined. */
export function pssBytes(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface TreeMemory {
  /** Sum of VmRSS over every process (pages shared between forks count once per process). */
  rss: number;
  /** Sum of PSS: what the processes together really hold. */
  pss: number;
  processes: number;
}

/** Memory of some processes and all their descendants. */
export function treeMemory(roots: number[]): TreeMemory {
  const pids = [...new Set(roots.flatMap(processTree))];
  return {
    rss: pids.reduce((a, pid) => a + (rssBytes(pid) ?? 0), 0),
    pss: pids.reduce((a, pid) => a + (pssBytes(pid) ?? 0), 0),
    processes: pids.length,
  };
}
