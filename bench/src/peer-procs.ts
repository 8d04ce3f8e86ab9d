/** Helper processes of the peer benchmark (socat, sshd, ssh, iperf3): readiness, and teardown of whole trees. */

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Proc } from '@private-connect/e2e';
import { sleep } from './config.js';
import { processTree } from './procstat.js';

/** Whether a program can be run: an absolute path that exists, or a name found on PATH. */
export function haveCommand(command: string): boolean {
  if (command.startsWith('/')) return existsSync(command);
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Whether some socket listens on the TCP port (IPv4 or IPv6), from /proc/net: no connection is made. */
export function isListening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const fields = line.trim().split(/\s+/);
      // fields[1] = local address:port, fields[3] = state (0A = LISTEN)
      if (fields[3] === '0A' && `${fields[1]} `.endsWith(hex)) return true;
    }
  }
  return false;
}

/**
 * Resolves once `port` listens. Probing by connecting would use up iperf3's test slot and make sshd log errors,
 * so this reads /proc/net/tcp instead. Rejects when `proc` exits first or after `timeoutMs`.
 */
export async function waitListening(port: number, proc: Proc, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void proc.exited.then((code) => (exited = code));
  while (!isListening(port)) {
    if (exited !== undefined) throw new Error(`${what} exited (${exited}) before listening on port ${port}\nstderr:\n${proc.stderr()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms\nstderr:\n${proc.stderr()}`);
    await sleep(50);
  }
}

function commandName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Stops a process and whatever it forked (socat's per-connection children, sshd's session processes): SIGTERM to
 * the process, then SIGKILL to every descendant still there (checked by name, so a recycled pid is left alone).
 */
export async function stopTree(proc: Proc): Promise<void> {
  const pid = proc.child.pid;
  const descendants = pid === undefined ? [] : processTree(pid).slice(1).map((p) => ({ pid: p, name: commandName(p) }));
  await proc.stop(2000);
  for (const d of descendants) {
    if (d.name !== undefined && commandName(d.pid) === d.name) {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
