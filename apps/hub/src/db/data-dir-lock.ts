/** A pid lock file that keeps two hubs from opening one embedded-database folder at once. */

import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConnectError } from '@private-connect/protocol';

/** Name of the lock file inside the data folder. */
export const LOCK_FILE = 'hub.lock';

/** A held lock; release() removes the file if it is still ours. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes `<dir>/hub.lock` for this process. Refuses with ConnectError('INTERNAL') when the file names a live
 * process (this one included: one process must not open the folder twice); a lock naming a dead process, or
 * holding no pid at all, is stale and taken over. The folder must exist.
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  const mine = String(process.pid);
  // Write the pid to a private file, then link() it into place: the lock appears atomically and never empty.
  const draft = join(dir, `${LOCK_FILE}.${process.pid}.${Math.random().toString(16).slice(2)}`);
  await writeFile(draft, mine);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(draft, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw error;
      }
      const held = await readFile(path, 'utf8').catch(() => undefined);
      if (held === undefined) continue; // released between link() and readFile(): try again
      const pid = Number(held.trim());
      if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new ConnectError('INTERNAL', `the data folder ${dir} is in use by another hub (pid ${pid}); stop it or set HUB_DATA_DIR`);
      }
      // Stale: remove it only if it still holds what we judged, so we do not delete a lock a rival just took.
      if ((await readFile(path, 'utf8').catch(() => undefined)) === held) await unlink(path).catch(() => undefined);
    }
  } finally {
    await unlink(draft).catch(() => undefined);
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      if ((await readFile(path, 'utf8').catch(() => undefined)) === mine) await unlink(path).catch(() => undefined);
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
