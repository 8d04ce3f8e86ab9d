/** The agent's state folder: config.json (owner-only), the folder resolution, and run records of live processes. */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configPath, isAlive, listRuns, readConfig, recordRun, removeConfig, resolveHome, writeConfig, type AgentConfig } from '../src/index.js';

const config: AgentConfig = {
  hubUrl: 'https://hub.example.com',
  agentId: '00000000-0000-4000-8000-000000000001',
  workspaceId: '00000000-0000-4000-8000-000000000002',
  label: 'laptop',
  token: 'f'.repeat(64),
  tokenExpiresAt: '2030-01-01T00:00:00.000Z',
};

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('config.json', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'pc-config-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('is written readable by the owner only, in a folder only the owner can enter', async () => {
    const home = join(root, 'fresh', '.connect');
    await writeConfig(home, config);
    assert.equal((await stat(configPath(home))).mode & 0o777, 0o600);
    assert.equal((await stat(home)).mode & 0o077, 0, 'no group or other access to the folder');
    assert.deepEqual(await readConfig(home), config);
    assert.deepEqual(await readdir(home), ['config.json'], 'no temp file is left behind');
  });

  test('stays 0600 when rewritten, even over a file that was world-readable', async () => {
    const home = join(root, 'rewrite');
    await mkdir(home, { recursive: true });
    await writeFile(configPath(home), '{}', { mode: 0o644 });
    await writeConfig(home, { ...config, label: 'again' });
    assert.equal((await stat(configPath(home))).mode & 0o777, 0o600);
    assert.equal((await readConfig(home))?.label, 'again');
  });

  test('writes at the same time from one process (two agents saving a rotated token) all succeed, leaving no temp file', async () => {
    const home = join(root, 'concurrent');
    const labels = Array.from({ length: 8 }, (_, i) => `writer-${i}`);
    await Promise.all(labels.map((label) => writeConfig(home, { ...config, label })));
    assert.ok(labels.includes((await readConfig(home))?.label ?? ''));
    assert.deepEqual(await readdir(home), ['config.json']);
  });

  test('readConfig: missing, corrupt or incomplete → undefined', async () => {
    const home = join(root, 'broken');
    await mkdir(home, { recursive: true });
    assert.equal(await readConfig(home), undefined);
    await writeFile(configPath(home), '{"hubUrl":');
    assert.equal(await readConfig(home), undefined);
    await writeFile(configPath(home), JSON.stringify({ hubUrl: 'https://x' }));
    assert.equal(await readConfig(home), undefined, 'no token');
    await writeFile(configPath(home), JSON.stringify({ hubUrl: 'https://x', token: 42 }));
    assert.equal(await readConfig(home), undefined, 'token not a string');
  });

  test('removeConfig deletes it, and is fine when it is already gone', async () => {
    const home = join(root, 'remove');
    await writeConfig(home, config);
    await removeConfig(home);
    assert.equal(await readConfig(home), undefined);
    await removeConfig(home);
  });

  test('resolveHome: explicit folder, else CONNECT_HOME, else ~/.connect', () => {
    assert.equal(resolveHome('/explicit', { CONNECT_HOME: '/env' }), '/explicit');
    assert.equal(resolveHome(undefined, { CONNECT_HOME: '/env' }), '/env');
    assert.equal(resolveHome(undefined, {}), join(homedir(), '.connect'));
  });
});

describe('run records', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-runs-'));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  test('a live process is listed; its remover deletes the record', async () => {
    const remove = await recordRun(home, { pid: process.pid, command: 'reach', name: 'prod-db', port: 5433, startedAt: new Date().toISOString() });
    const files = await readdir(join(home, 'run'));
    assert.deepEqual(files, [`${process.pid}-reach-prod-db.json`]);
    assert.equal((await stat(join(home, 'run', files[0]!))).mode & 0o777, 0o600);
    const runs = await listRuns(home);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.name, 'prod-db');
    assert.equal(runs[0]!.port, 5433);
    await remove();
    assert.deepEqual(await listRuns(home), []);
    assert.deepEqual(await readdir(join(home, 'run')), []);
  });

  test('records of dead processes and unreadable records are pruned; live ones are kept, sorted by name', async () => {
    const dead = await deadPid();
    assert.equal(isAlive(dead), false);
    const removeB = await recordRun(home, { pid: process.pid, command: 'expose', name: 'b-service', target: '127.0.0.1:80', startedAt: 'now' });
    const removeA = await recordRun(home, { pid: process.pid, command: 'reach', name: 'a-service', port: 1, startedAt: 'now' });
    await recordRun(home, { pid: dead, command: 'expose', name: 'ghost', target: '127.0.0.1:81', startedAt: 'then' });
    await writeFile(join(home, 'run', 'broken.json'), '{"pid":');
    await writeFile(join(home, 'run', 'notes.txt'), 'not a record');

    const runs = await listRuns(home);
    assert.deepEqual(runs.map((r) => r.name), ['a-service', 'b-service']);
    const left = (await readdir(join(home, 'run'))).sort();
    assert.deepEqual(left, [`${process.pid}-expose-b-service.json`, `${process.pid}-reach-a-service.json`, 'notes.txt'].sort());
    assert.equal(JSON.parse(await readFile(join(home, 'run', `${process.pid}-reach-a-service.json`), 'utf8')).port, 1);
    await removeA();
    await removeB();
  });

  test('a reach of a shared service (share/service) is recorded in one file of the run folder', async () => {
    const remove = await recordRun(home, { pid: process.pid, command: 'reach', name: 'acme/db', port: 5434, startedAt: 'now' });
    assert.deepEqual((await readdir(join(home, 'run'))).filter((f) => f.endsWith('.json')), [`${process.pid}-reach-acme~db.json`]);
    assert.deepEqual((await listRuns(home)).map((r) => r.name), ['acme/db']);
    await remove();
  });

  test('no run folder: nothing running', async () => {
    assert.deepEqual(await listRuns(join(home, 'does-not-exist')), []);
  });

  test('isAlive: this process yes, an exited one no', async () => {
    assert.equal(isAlive(process.pid), true);
    assert.equal(isAlive(await deadPid()), false);
  });
});
