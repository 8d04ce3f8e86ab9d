/**
 * `connect status`: this machine's enrolment, the hub's view of it, and each service exposed or reached here:
 * running (in a `connect expose`/`reach` process or the daemon) with its state and traffic, or remembered only.
 */

import { ConnectError } from '@private-connect/protocol';
import { ApiClient, listRuns, readConfig, readState, type AgentConfig, type RunRecord, type StateEntry, type Traffic } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color, table, withProgress } from '../output.js';
import { tokenExpiryWarning } from '../token-warning.js';
import { pathColumn, resolveDirect, type DirectSetting } from '../direct-setting.js';

/** One line of `connect status`: a service this machine exposes or reaches. */
export interface LocalService {
  kind: 'expose' | 'reach';
  name: string;
  /** host:port exposed, or the local address a reach listens on. */
  detail: string;
  /** connected / reconnecting / retrying while it runs; stopped when only state.json remembers it. */
  state: NonNullable<RunRecord['state']> | 'running' | 'stopped';
  pid?: number;
  daemon?: boolean;
  traffic?: Traffic;
  /** A running reach: the path its new streams take (direct, or relayed by the hub and why). */
  path?: RunRecord['path'];
  /** A running expose: its agent's direct port, or why it takes no direct connections. */
  direct?: RunRecord['direct'];
}

/** 1536 → "1.5 kB"; decimal units like `ls -h --si`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatTraffic(traffic: Traffic | undefined): string {
  if (!traffic) return '';
  return `${traffic.connections} conn (${traffic.open} open)  ↑ ${formatBytes(traffic.bytesIn)}  ↓ ${formatBytes(traffic.bytesOut)}`;
}

/** Running services (newest record wins per kind and name) followed by the remembered ones that run nowhere. */
export function localServices(runs: RunRecord[], remembered: StateEntry[]): LocalService[] {
  const out = new Map<string, LocalService>();
  for (const r of runs) {
    out.set(`${r.command}:${r.name}`, {
      kind: r.command,
      name: r.name,
      detail: r.command === 'reach' ? `${r.host ?? '127.0.0.1'}:${r.port}` : (r.target ?? ''),
      state: r.state ?? 'running',
      pid: r.pid,
      ...(r.daemon ? { daemon: true } : {}),
      ...(r.traffic ? { traffic: r.traffic } : {}),
      ...(r.command === 'reach' && r.path ? { path: r.path } : {}),
      ...(r.command === 'expose' && r.direct ? { direct: r.direct } : {}),
    });
  }
  for (const e of remembered) {
    if (out.has(`${e.kind}:${e.name}`)) continue;
    out.set(`${e.kind}:${e.name}`, { kind: e.kind, name: e.name, detail: e.kind === 'reach' ? `${e.host}:${e.port}` : e.target, state: 'stopped' });
  }
  return [...out.values()];
}

/** The PATH column: "direct via 10.0.0.2:41641", "relayed: <why>" for a reach; "direct on port 41641" or "direct off (why)" for an expose. */
export function pathText(service: Pick<LocalService, 'kind' | 'path' | 'direct'>): string {
  const text = pathColumn({ command: service.kind, path: service.path, direct: service.direct });
  return service.kind === 'reach' && service.path?.mode === 'direct' ? color.green(text) : text;
}

/** The services of `connect status` as a table, or the hint when there are none. */
export function servicesTable(services: LocalService[]): string {
  if (services.length === 0) return 'nothing exposed or reached here; start with connect expose ... or connect reach ...';
  return table(
    ['KIND', 'SERVICE', 'DETAIL', 'STATE', 'PATH', 'TRAFFIC', 'PID'],
    services.map((s) => [s.kind, s.name, s.detail, stateColor(s.state), pathText(s), formatTraffic(s.traffic), s.pid === undefined ? '' : `${s.pid}${s.daemon ? ' (daemon)' : ''}`]),
  );
}

/** What agents started here now would do: flags aside, CONNECT_DIRECT and config.json decide. */
function directLine(setting: DirectSetting): string {
  if (setting.off) return color.dim(`off for agents started here (${setting.off}); every stream goes through the hub`);
  const port = typeof setting.direct === 'object' ? setting.direct.port : undefined;
  return `on${port ? `, exposing agents listen on port ${port}` : ''}; streams go direct when the agents can reach each other, through the hub otherwise`;
}

const stateColor = (state: LocalService['state']) =>
  state === 'connected' || state === 'running' ? color.green(state) : state === 'stopped' ? color.dim(state) : color.yellow(state);

/** What `connect status` learnt of the hub: the one the agent runs on (or the first configured that answers). */
export interface HubStatus {
  /** The hub asked. */
  url: string;
  /** A process of this machine is connected to it now. */
  connected: boolean;
  /** It answered (even when it refused the token). */
  reachable: boolean;
  /** It answered but refused this agent's token: UNAUTHORIZED (revoked, or not valid) or TOKEN_EXPIRED. */
  tokenRefused?: 'UNAUTHORIZED' | 'TOKEN_EXPIRED';
  error?: string;
  tokenExpiresAt?: string;
  tokenExpiring?: boolean;
  tokenExpiresInMs?: number;
}

/**
 * The hub to ask: the one this machine's running processes are connected to (the newest record's), when it is one
 * of config.json's hubs (a run record never sends the token elsewhere); then the other configured hubs in turn,
 * until one answers.
 */
async function askHub(ctx: Context, config: AgentConfig, runs: RunRecord[]): Promise<HubStatus> {
  const configured = [config.hubUrl, ...(config.hubUrls ?? [])];
  const current = runs
    .filter((r) => r.state === 'connected' && typeof r.hubUrl === 'string' && configured.includes(r.hubUrl))
    .sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? ''))[0]?.hubUrl;
  let first: HubStatus | undefined;
  for (const url of current ? [current, ...configured.filter((u) => u !== current)] : configured) {
    const hub = await askOne(ctx, config, url, url === current);
    if (hub.reachable) return hub;
    first ??= hub;
  }
  return first!;
}

async function askOne(ctx: Context, config: AgentConfig, url: string, connected: boolean): Promise<HubStatus> {
  try {
    const me = await withProgress(ctx.out, `asking ${url}`, () =>
      new ApiClient({ hubUrl: url, credential: config.token, allowInsecure: ctx.env.allowInsecure, timeoutMs: 5000 }).me(),
    );
    return me.kind === 'agent'
      ? { url, connected, reachable: true, tokenExpiresAt: me.expiresAt, tokenExpiring: me.expiring, tokenExpiresInMs: me.expiresInMs }
      : { url, connected, reachable: true };
  } catch (err) {
    const error = err instanceof ConnectError ? `${err.code}: ${err.message}` : String(err);
    // These come from a hub that answered: it is there, and this agent's token is what it refuses.
    if (err instanceof ConnectError && (err.code === 'UNAUTHORIZED' || err.code === 'TOKEN_EXPIRED')) {
      return { url, connected, reachable: true, tokenRefused: err.code, error };
    }
    return { url, connected, reachable: false, error };
  }
}

/** The hub line's state: where the agent runs, and what the hub said. */
function hubState(hub: HubStatus, config: AgentConfig): string {
  if (hub.tokenRefused) {
    const why = hub.tokenRefused === 'TOKEN_EXPIRED' ? 'it has expired' : 'the agent was revoked, or the token is not valid';
    const hubs = [config.hubUrl, ...(config.hubUrls ?? [])].join(',');
    return color.red(`answers, but refused this agent's token (${why})`) + `\n        enrol again: connect up --hub ${hubs} --api-key <pc_...> (or without --api-key, to sign in)`;
  }
  if (!hub.reachable) return color.red(`unreachable: ${hub.error}`);
  return color.green(hub.connected ? 'reachable, the agent is connected to it' : 'reachable');
}

export async function status(ctx: Context): Promise<number> {
  const config = await readConfig(ctx.home);
  const runs = await listRuns(ctx.home);
  const services = localServices(runs, (await readState(ctx.home)).services);
  if (!config) {
    ctx.out.result({ enrolled: false, configDir: ctx.home, running: runs, services }, `not enrolled (no ${ctx.home}/config.json); run: connect up --hub <url> --api-key <pc_...>`);
    return 1;
  }
  const hub = await askHub(ctx, config, runs);
  const lines = [
    `agent   ${color.bold(config.label)} (${config.agentId})`,
    `hub     ${hub.url}  ${hubState(hub, config)}`,
    `token   expires ${(hub.tokenExpiresAt ?? config.tokenExpiresAt).slice(0, 10)}${hub.tokenExpiring && hub.tokenExpiresInMs !== undefined ? `  ${color.yellow(`warning: ${tokenExpiryWarning(hub.tokenExpiresAt!, hub.tokenExpiresInMs)}`)}` : ''}`,
    `config  ${ctx.home}`,
    `direct  ${directLine(resolveDirect({}, ctx.env, config))}`,
    '',
    servicesTable(services),
  ];
  ctx.out.result(
    { enrolled: true, agentId: config.agentId, label: config.label, hubUrl: config.hubUrl, hub, configDir: ctx.home, running: runs, services },
    lines.join('\n'),
  );
  return 0;
}
