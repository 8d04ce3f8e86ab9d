/**
 * Names for the ids the audit log records (actor and target): agents, services, API keys, members, shares, links
 * and workspaces, from the lists the dashboard loads anyway. A list the signed-in member may not read is simply
 * left out; an id no list knows (a revoked agent, a removed member) falls back to the name the event's own
 * metadata carries, and only then to a short id.
 */

import { request } from './api.js';
import { useResource } from './use-resource.js';
import { useSession } from './workspace.js';

/** `type:id` → name. */
export type Names = Map<string, string>;

async function optional<T>(load: Promise<T>): Promise<T | undefined> {
  try {
    return await load;
  } catch {
    return undefined; // not allowed for this member, or failed: ids of this kind stay short ids
  }
}

async function loadNames(workspaceId: string): Promise<Names> {
  const [agents, services, keys, members, shares, links] = await Promise.all([
    optional(request('GET /v1/agents', {})),
    optional(request('GET /v1/services', {})),
    optional(request('GET /v1/api-keys', {})),
    optional(request('GET /v1/workspaces/:id/members', { params: { id: workspaceId } })),
    optional(request('GET /v1/shares', {})),
    optional(request('GET /v1/links', {})),
  ]);
  const names: Names = new Map();
  for (const a of agents?.agents ?? []) names.set(`agent:${a.id}`, a.label);
  for (const s of services?.services ?? []) names.set(`service:${s.id}`, s.name);
  for (const k of keys?.apiKeys ?? []) names.set(`api_key:${k.id}`, k.name);
  for (const m of members?.members ?? []) names.set(`user:${m.userId}`, m.email);
  for (const s of shares?.owned ?? []) names.set(`share:${s.id}`, s.name);
  for (const s of shares?.joined ?? []) names.set(`share:${s.id}`, s.alias);
  for (const l of links?.links ?? []) names.set(`link:${l.id}`, `${l.service} (${l.prefix}…)`);
  return names;
}

/**
 * The names of the current workspace's things, loaded once per workspace (and again on `reload`); `ready` once
 * the lists answered (or failed), so that a table can wait for names instead of flashing ids.
 */
export function useNames(): { names: Names; ready: boolean; reload(): void } {
  const { current, workspaces, me } = useSession();
  const loaded = useResource(() => loadNames(current.id), current.id);
  const names: Names = new Map(loaded.state.status === 'ready' ? loaded.state.data : []);
  for (const w of workspaces) names.set(`workspace:${w.id}`, w.name);
  if (me.kind === 'user') names.set(`user:${me.userId}`, me.email);
  return { names, ready: loaded.state.status !== 'loading', reload: loaded.reload };
}

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * What to call the actor or target of an event: its current name, else what the event recorded about it (the
 * target's `name`/`label`/`email` in the metadata), else the first 8 characters of the id. `known` says whether a
 * name was found.
 */
export function nameOf(names: Names, type: string | null, id: string | null, metadata?: Record<string, unknown>): { name: string; known: boolean } {
  if (!type) return { name: '—', known: true };
  if (type === 'system') return { name: 'the hub', known: true };
  if (!id) return { name: '—', known: true };
  const current = names.get(`${type}:${id}`);
  if (current) return { name: current, known: true };
  const recorded = metadata && (text(metadata.name) ?? text(metadata.label) ?? text(metadata.email) ?? text(metadata.service));
  if (recorded) return { name: recorded, known: true };
  if (type === 'email') return { name: id, known: true };
  return { name: id.slice(0, 8), known: false };
}
