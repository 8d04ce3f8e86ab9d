/**
 * The embedded database's folder lock on a real hub process: after `kill -9` the hub starts again whatever pid the
 * stale hub.lock names (its own, as in a container where the pid is the same on every start, or a live unrelated
 * process); while a hub runs, a second hub on the same folder is refused with a clear error.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HUB_MAIN, removeDirs, startHubProcess, tempDir, type HubProcess } from '../src/index.js';

const LOCK = 'hub.lock';

/** The hub answers its API (the database behind it is open). */
async function assertServes(hub: HubProcess): Promise<void> {
  const answer = await fetch(`${hub.url}/v1/services`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
  assert.equal(answer.status, 200);
}

describe('the data folder lock of a hub process (PGlite)', () => {
  const dirs: string[] = [];
  const hubs: HubProcess[] = [];

  after(async () => {
    for (const hub of hubs) await hub.proc.kill();
    await removeDirs(...dirs);
  });

  test('after kill -9, the hub starts again when hub.lock names the new hub process itself', async () => {
    const dataDir = await tempDir('hub-lock');
    dirs.push(dataDir);
    const first = await startHubProcess({ dataDir });
    hubs.push(first);
    await first.proc.kill();
    // What a container sees: the stale lock names the pid the hub gets on every start, its own.
    const second = await startHubProcess({ dataDir, apiKey: first.apiKey, shellBefore: `echo $$ > "$HUB_DATA_DIR/${LOCK}"` });
    hubs.push(second);
    await assertServes(second);
    assert.equal((await readFile(join(dataDir, LOCK), 'utf8')).trim(), String(second.proc.child.pid));
  });

  test('after kill -9, the hub starts again when hub.lock names a live unrelated process', async () => {
    const dataDir = await tempDir('hub-lock');
    dirs.push(dataDir);
    const first = await startHubProcess({ dataDir });
    hubs.push(first);
    await first.proc.kill();
    const bystander = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const second = await startHubProcess({ dataDir, apiKey: first.apiKey, shellBefore: `echo ${bystander.pid} > "$HUB_DATA_DIR/${LOCK}"` });
      hubs.push(second);
      await assertServes(second);
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  test('a second hub on the folder of a live hub is refused with a clear error, and the first keeps serving', async () => {
    const dataDir = await tempDir('hub-lock');
    dirs.push(dataDir);
    const first = await startHubProcess({ dataDir });
    hubs.push(first);
    const { code, stdout, stderr } = await runHubOnce(dataDir);
    assert.notEqual(code, 0, 'the second hub exits');
    assert.match(stdout + stderr, new RegExp(`the data folder ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another hub \\(pid ${first.proc.child.pid}\\)`));
    await assertServes(first);
  });
});

/** Starts a hub on `dataDir` and collects its output until it exits (it is expected to be refused). */
async function runHubOnce(dataDir: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [HUB_MAIN], {
    env: { ...process.env, HUB_PORT: '0', WEB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_DATA_DIR: dataDir, DATABASE_URL: '', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // a hub that was not refused is cut off
  const code = await new Promise<number | string>((resolve) => child.once('exit', (c, s) => resolve(c ?? s ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
