/**
 * The agent's local state folder (`~/.connect`, or CONNECT_HOME): config.json with the hub URL and the agent
 * token (mode 0600), ports.json with stable ports, run/ with one file per running agent process.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConnectError, type ReachPath } from '@private-connect/protocol';

export interface AgentConfig {
  hubUrl: string;
  /** More hubs of the same deployment (several hubs on one database): tried in turn when `hubUrl` is lost. */
  hubUrls?: string[];
  agentId: string;
  workspaceId: string;
  label: string;
  token: string;
  tokenExpiresAt: string;
  /** Direct paths for the agents of this folder (connect up --no-direct): false turns them off; flags and CONNECT_DIRECT win. */
  direct?: boolean;
  /** The direct port exposing agents of this folder listen on (connect up --direct-port), e.g. one opened in a firewall. */
  directPort?: number;
}

/** Bytes and connections through one service since its process started. */
export interface Traffic {
  /** Connections opened so far. */
  connections: number;
  /** Connections open now. */
  open: number;
  /** Bytes from the local side into the tunnel. */
  bytesIn: number;
  /** Bytes from the tunnel to the local side. */
  bytesOut: number;
}

/** A running `connect expose` / `connect reach` process (or a service of `connect daemon run`), as recorded in run/. */
export interface RunRecord {
  pid: number;
  command: 'expose' | 'reach';
  name: string;
  target?: string;
  port?: number;
  host?: string;
  startedAt: string;
  /** Run by `connect daemon run`: `connect down` asks the daemon to drop it instead of ending the process. */
  daemon?: boolean;
  /** connected: the hub accepted it; reconnecting: the connection to the hub is down; retrying: the hub refused it for now. */
  state?: 'connected' | 'reconnecting' | 'retrying';
  /** The hub the process is connected to, or was last (one of config.json's hubs). */
  hubUrl?: string;
  traffic?: Traffic;
  /** A reach: the path its new streams take now, direct to the exposing agent or relayed by the hub (and why). */
  path?: ReachPath;
  /** An expose: the agent's direct port, or why it takes no direct connections (--no-direct, CONNECT_DIRECT=off, ...). */
  direct?: { host: string; port: number } | { off: string };
  /** When state and traffic were last written. */
  updatedAt?: string;
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

/** The agent's Ed25519 identity key (private; mode 0600). */
export function identityPath(home: string): string {
  return join(home, 'identity.pem');
}

/** Identity keys of exposing agents, pinned on first use. */
/** The X25519 static key of end-to-end sessions, beside the identity (mode 0600). */
export function staticKeyPath(home: string): string {
  return join(home, 'static_key.pem');
}

export function knownAgentsPath(home: string): string {
  return join(home, 'known_agents.json');
}

export async function readConfig(home: string): Promise<AgentConfig | undefined> {
  try {
    const value = JSON.parse(await readFile(configPath(home), 'utf8')) as Partial<AgentConfig>;
    if (typeof value.hubUrl !== 'string' || typeof value.token !== 'string') return undefined;
    if (value.hubUrls !== undefined && !(Array.isArray(value.hubUrls) && value.hubUrls.every((u) => typeof u === 'string'))) delete value.hubUrls;
    if (value.direct !== undefined && typeof value.direct !== 'boolean') delete value.direct;
    if (value.directPort !== undefined && !(Number.isInteger(value.directPort) && value.directPort > 0 && value.directPort < 65536)) delete value.directPort;
    return value as AgentConfig;
  } catch {
    return undefined;
  }
}

/** The enrolled agent's config, or NOT_ENROLLED with the command that fixes it. */
export async function requireConfig(home: string): Promise<AgentConfig> {
  const config = await readConfig(home);
  if (!config) {
    throw new ConnectError('NOT_ENROLLED', `this machine is not connected to a hub yet (no ${home}/config.json); run: connect up --hub <url> --api-key <pc_...>`);
  }
  return config;
}

/** Writes config.json atomically, readable by the owner only. */
export async function writeConfig(home: string, config: AgentConfig): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const file = configPath(home);
  // One temp file per write: agents of one process (reach() and expose() each run one) may save a rotated token at once.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

export async function removeConfig(home: string): Promise<void> {
  await rm(configPath(home), { force: true });
}

/** Records this process as a running agent command; returns a function that removes the record. */
export async function recordRun(home: string, record: RunRecord): Promise<() => Promise<void>> {
  await updateRun(home, record);
  return () => removeRun(home, record);
}

/** The run/ file of a record: one per process, command and service. */
function runFile(home: string, record: Pick<RunRecord, 'pid' | 'command' | 'name'>): string {
  // A shared service's name is `share/service`: the file name keeps one path segment.
  return join(home, 'run', `${record.pid}-${record.command}-${record.name.replaceAll('/', '~')}.json`);
}

/** Removes the record of a service that stopped running. */
export async function removeRun(home: string, record: Pick<RunRecord, 'pid' | 'command' | 'name'>): Promise<void> {
  await rm(runFile(home, record), { force: true });
}

/** Writes (or rewrites, e.g. with new traffic) the record of a running service; returns its file. */
export async function updateRun(home: string, record: RunRecord): Promise<string> {
  await mkdir(join(home, 'run'), { recursive: true, mode: 0o700 });
  const file = runFile(home, record);
  // Atomic, so a reader never sees half a record (status reads while the process rewrites).
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(record) + '\n', { mode: 0o600 });
  await rename(tmp, file);
  return file;
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
