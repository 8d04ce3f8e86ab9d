/** The daemon's files in the config folder: daemon.pid (which process runs it) and daemon.log (what it did). */

import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive } from '@private-connect/sdk';

/** daemon.log is moved to daemon.log.1 when it grows past this (checked at start and every hour). */
export const MAX_LOG_BYTES = 10 * 1024 * 1024;

export const daemonLogPath = (home: string) => join(home, 'daemon.log');
export const daemonPidPath = (home: string) => join(home, 'daemon.pid');

export interface DaemonPid {
  pid: number;
  startedAt: string;
}

/** The daemon process of this folder if it runs now; a stale pid file (e.g. after kill -9) reads as undefined. */
export async function runningDaemon(home: string): Promise<DaemonPid | undefined> {
  try {
    const value = JSON.parse(await readFile(daemonPidPath(home), 'utf8')) as DaemonPid;
    return Number.isInteger(value.pid) && value.pid > 0 && isAlive(value.pid) ? value : undefined;
  } catch {
    return undefined;
  }
}

export async function writeDaemonPid(home: string, value: DaemonPid): Promise<void> {
  const file = daemonPidPath(home);
  await writeFile(`${file}.tmp`, JSON.stringify(value) + '\n', { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** Removes daemon.pid if it still names `pid` (a newer daemon's file stays). */
export async function removeDaemonPid(home: string, pid: number): Promise<void> {
  try {
    const value = JSON.parse(await readFile(daemonPidPath(home), 'utf8')) as DaemonPid;
    if (value.pid === pid) await rm(daemonPidPath(home), { force: true });
  } catch {
    // already gone
  }
}

/** Moves daemon.log aside when it is larger than MAX_LOG_BYTES (one old generation is kept). */
export async function rotateLog(home: string): Promise<void> {
  const file = daemonLogPath(home);
  try {
    if ((await stat(file)).size > MAX_LOG_BYTES) await rename(file, `${file}.1`);
  } catch {
    // no log yet
  }
}
