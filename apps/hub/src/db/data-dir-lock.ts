/**
 * The lock that keeps two hubs from opening one embedded-database folder at once: an OS lock on `<dir>/hub.lock`
 * (Linux: an open file description lock; macOS: flock), held by the open file itself. The kernel drops it when the
 * hub's process ends, however it ends (`kill -9` included), so no stale file can block a start, whatever pid it
 * names: in a container the hub has the same pid on every start. The pid inside is only for the error message.
 */

import { constants } from 'node:fs';
import { open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { tryLock } from 'fs-native-extensions';
import { ConnectError } from '@private-connect/protocol';

/** Name of the lock file inside the data folder. */
export const LOCK_FILE = 'hub.lock';

/** A held lock; release() removes the file and drops the lock. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes `<dir>/hub.lock` for this process. Refuses with ConnectError('INTERNAL') while another open of the file
 * holds the lock: another hub process, or this process opening the folder twice. The folder must exist.
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    // Neither truncated nor appended on open: the pid of a hub that holds it stays readable for the message.
    const file = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    let held = false;
    try {
      if (!takeLock(file, path)) throw inUse(dir, await readFile(path, 'utf8').catch(() => ''));
      // A hub releasing the lock unlinks the file before it closes it: a lock taken on that old file guards
      // nothing, so take the lock of the file now at the path instead.
      if (!(await isAt(file, path))) {
        if (attempt >= 5) throw new ConnectError('INTERNAL', `the lock file ${path} keeps being replaced; is another hub starting on ${dir}?`);
        continue;
      }
      await file.truncate(0);
      await file.write(String(process.pid), 0);
      held = true;
      return heldLock(file, path);
    } finally {
      if (!held) await file.close();
    }
  }
}

/** Tries the OS lock; false when another open of the file holds it. */
function takeLock(file: FileHandle, path: string): boolean {
  try {
    return tryLock(file.fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConnectError('INTERNAL', `cannot lock ${path} (${code}); the data folder must be on a file system with file locks`);
  }
}

function inUse(dir: string, held: string): ConnectError {
  const pid = held.trim();
  const who = /^[0-9]{1,10}$/.test(pid) ? `another hub (pid ${pid})` : 'another hub';
  return new ConnectError('INTERNAL', `the data folder ${dir} is in use by ${who}; stop it or set HUB_DATA_DIR`);
}

/** Whether the open `file` is still the file at `path` (not unlinked or replaced since it was opened). */
async function isAt(file: FileHandle, path: string): Promise<boolean> {
  const [mine, there] = await Promise.all([file.stat(), stat(path).catch(() => undefined)]);
  return there !== undefined && mine.ino === there.ino && mine.dev === there.dev;
}

function heldLock(file: FileHandle, path: string): DataDirLock {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      // Unlinked while still locked (see lockDataDir), and only when the path still names our file.
      if (await isAt(file, path).catch(() => false)) await unlink(path).catch(() => undefined);
      await file.close();
    },
  };
}
