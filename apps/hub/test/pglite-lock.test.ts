/** The embedded database's folder lock: one hub per data folder, stale locks taken over. */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectError } from '@private-connect/protocol';
import { LOCK_FILE, openPglite, type Database } from '../src/db/index.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-pglite-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('refuses to open a data folder that an open database holds, and opens it after close', async () => {
  await withTempDir(async (dir) => {
    const dataDir = join(dir, 'nested', 'data'); // created with mkdir -p
    const first = await openPglite(dataDir);
    let second: Database | undefined;
    try {
      assert.equal(await readFile(join(dataDir, LOCK_FILE), 'utf8'), String(process.pid));
      await assert.rejects(openPglite(dataDir), (error) => {
        assert.ok(error instanceof ConnectError);
        assert.equal(error.code, 'INTERNAL');
        assert.equal(
          error.message,
          `the data folder ${dataDir} is in use by another hub (pid ${process.pid}); stop it or set HUB_DATA_DIR`,
        );
        return true;
      });
      await first.withSystem((tx) => tx.query('create table kept (v int); '.trim().replace(/;$/, '')));
      await first.close();
      assert.equal(existsSync(join(dataDir, LOCK_FILE)), false);
      second = await openPglite(dataDir);
      const rows = await second.withSystem((tx) => tx.query(`select to_regclass('kept')::text as t`));
      assert.deepEqual(rows, [{ t: 'kept' }], 'the data persisted in the folder');
    } finally {
      await first.close();
      await second?.close();
    }
  });
});

test('takes over a stale lock left by a process that is gone', async () => {
  await withTempDir(async (dir) => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    await writeFile(join(dir, LOCK_FILE), String(gone));
    const db = await openPglite(dir);
    try {
      assert.equal(await readFile(join(dir, LOCK_FILE), 'utf8'), String(process.pid));
    } finally {
      await db.close();
    }
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  });
});

test('takes over a lock file that holds no pid', async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, LOCK_FILE), '');
    const db = await openPglite(dir);
    await db.close();
  });
});

test('takes over a lock file that names a live process holding no lock (this one, as after kill -9 in a container)', async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, LOCK_FILE), String(process.pid));
    const db = await openPglite(dir);
    try {
      assert.equal(await readFile(join(dir, LOCK_FILE), 'utf8'), String(process.pid));
    } finally {
      await db.close();
    }
  });
});
