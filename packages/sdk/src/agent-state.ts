/**
 * The agent's remembered services: `state.json` in the config folder lists what `connect expose` and `connect reach`
 * started, so `connect daemon run` can bring every one of them back after a restart or a reboot. `connect down
 * <name>` forgets a service. Written atomically (temp file + rename), readable by the owner only.
 */

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A service this machine exposes: what `connect expose` was given. */
export interface ExposeEntry {
  kind: 'expose';
  name: string;
  /** host:port of the local service. */
  target: string;
  protocol?: 'tcp' | 'http';
  hubPort?: boolean;
}

/** A service this machine reaches: the local address it listens on. */
export interface ReachEntry {
  kind: 'reach';
  name: string;
  host: string;
  port: number;
}

export type StateEntry = ExposeEntry | ReachEntry;

export interface AgentState {
  services: StateEntry[];
}

/** The most services one state file holds; a longer list is refused when written and cut when read. */
export const MAX_STATE_ENTRIES = 1000;

export function statePath(home: string): string {
  return join(home, 'state.json');
}

function validEntry(value: unknown): value is StateEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  if (typeof entry.name !== 'string' || entry.name === '') return false;
  if (entry.kind === 'expose') return typeof entry.target === 'string';
  if (entry.kind === 'reach') return typeof entry.host === 'string' && Number.isInteger(entry.port) && (entry.port as number) > 0 && (entry.port as number) < 65536;
  return false;
}

/** The remembered services; a missing or unreadable file is an empty state (entries that do not parse are skipped). */
export async function readState(home: string): Promise<AgentState> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(statePath(home), 'utf8'));
  } catch {
    return { services: [] };
  }
  const services = (value as { services?: unknown } | null)?.services;
  return { services: Array.isArray(services) ? services.filter(validEntry).slice(0, MAX_STATE_ENTRIES) : [] };
}

async function writeState(home: string, state: AgentState): Promise<void> {
  if (state.services.length > MAX_STATE_ENTRIES) throw new Error(`state.json holds at most ${MAX_STATE_ENTRIES} services`);
  await mkdir(home, { recursive: true, mode: 0o700 });
  const file = statePath(home);
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

const sameKey = (a: StateEntry, b: Pick<StateEntry, 'kind' | 'name'>) => a.kind === b.kind && a.name === b.name;

/** Adds or replaces the entry for (kind, name). Returns false when nothing changed. */
export async function rememberService(home: string, entry: StateEntry): Promise<boolean> {
  const state = await readState(home);
  const index = state.services.findIndex((s) => sameKey(s, entry));
  if (index >= 0 && JSON.stringify(state.services[index]) === JSON.stringify(entry)) return false;
  if (index >= 0) state.services[index] = entry;
  else state.services.push(entry);
  await writeState(home, state);
  return true;
}

/** Forgets every entry named `name` (both kinds), or every entry when `name` is undefined; returns what was removed. */
export async function forgetServices(home: string, name?: string): Promise<StateEntry[]> {
  const state = await readState(home);
  const removed = state.services.filter((s) => name === undefined || s.name === name);
  if (removed.length === 0) return [];
  await writeState(home, { services: state.services.filter((s) => !removed.includes(s)) });
  return removed;
}
