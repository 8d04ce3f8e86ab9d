/**
 * The agent's local state folder (`~/.connect`, or CONNECT_HOME): config.json with the hub URL and the agent
 * token (mode 0600), ports.json with stable ports, run/ with one file per running agent process.
 */

import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface AgentConfig {
  hubUrl: string;
  agentId: string;
  workspaceId: string;
  label: string;
  token: string;
  tokenExpiresAt: string;
}

/** A running `connect expose` / `connect reach` process, as recorded in run/<pid>.json. */
export interface RunRecord {
  pid: number;
  command: 'expose' | 'reach';
  name: string;
  target?: string;
  port?: number;
  startedAt: string;
}

/** The folder: explicit option, else CONNECT_HOME, else ~/.connect. */
export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? env.CONNECT_HOME ?? join(homedir(), '.connect');
}

export function configPath(home: string): string {
  return join(home, 'config.json');
}

export function portsPath(home: string): string {
  return join(home, 'ports.json');
}

export async function readConfig(home: string): Promise<AgentConfig | undefined> {
  try {
    const value = JSON.parse(await readFile(configPath(home), 'utf8')) as Partial<AgentConfig>;
    if (typeof value.hubUrl !== 'string' || typeof value.token !== 'string') return undefined;
    return value as AgentConfig;
  } catch {
    return undefined;
  }
}

/** Writes config.json atomically, readable by the owner only. */
export async function writeConfig(home: string, config: AgentConfig): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const file = configPath(home);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

export async function removeConfig(home: string): Promise<void> {
  await rm(configPath(home), { force: true });
}

/** Records this process as a running agent command; returns a function that removes the record. */
export async function recordRun(home: string, record: RunRecord): Promise<() => Promise<void>> {
  const dir = join(home, 'run');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A shared service's name is `share/service`: the file name keeps one path segment.
  const file = join(dir, `${record.pid}-${record.command}-${record.name.replaceAll('/', '~')}.json`);
  await writeFile(file, JSON.stringify(record) + '\n', { mode: 0o600 });
  return () => rm(file, { force: true });
}

/** Running agent processes of this folder; records of dead processes are removed. */
export async function listRuns(home: string): Promise<RunRecord[]> {
  const dir = join(home, 'run');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: RunRecord[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      const record = JSON.parse(await readFile(join(dir, name), 'utf8')) as RunRecord;
      if (isAlive(record.pid)) out.push(record);
      else await rm(join(dir, name), { force: true });
    } catch {
      await rm(join(dir, name), { force: true });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
