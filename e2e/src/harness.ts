/**
 * The multi-process world of the end-to-end tests and benchmarks: a real hub process (`connect-hub`) and real
 * `connect` agent processes, each agent with its own config folder, talking over real sockets.
 */

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startProcess, type Proc } from './processes.js';
import { eventually } from './tcp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
export const HUB_MAIN = join(root, 'apps/hub/dist/src/main.js');
export const CONNECT_MAIN = join(root, 'apps/connect/dist/src/main.js');

/** A fresh API key in the bootstrap format (pc_ + 32 base62). */
export function newApiKey(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return 'pc_' + Array.from(randomBytes(32), (b) => alphabet[b % 62]).join('');
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `pc-${prefix}-`));
}

export interface HubOptions {
  /** Fixed port (to restart a hub on the same address); 0 picks a free one. */
  port?: number;
  /** Embedded database folder; a new temp folder when omitted. Ignored with databaseUrl. */
  dataDir?: string;
  databaseUrl?: string;
  apiKey?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Shell commands run just before the hub, in the process that then becomes the hub (`exec`): `$$` is the hub's
   * own pid, as a container's entrypoint would see it; HUB_DATA_DIR is set.
   */
  shellBefore?: string;
  /** How long the hub may take to log "hub listening" (and "web listening"); default 30 s. */
  startTimeoutMs?: number;
}

export interface HubProcess {
  proc: Proc;
  url: string;
  port: number;
  /** The web port's URL (same application; the dashboard's origin); undefined with WEB_PORT=off. */
  webUrl?: string;
  dataDir: string;
  apiKey: string;
  /** The hub's /metrics as name → value (the sum of its samples: a labelled counter gives its total). */
  metrics(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

/** A hub's /metrics at `url` as name → value (the sum of its samples: a labelled counter gives its total). */
export async function readMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) values.set(m[1]!, (values.get(m[1]!) ?? 0) + Number(m[3]));
  }
  return values;
}

/** Starts `connect-hub` and resolves once it logs "hub listening". */
export async function startHubProcess(options: HubOptions = {}): Promise<HubProcess> {
  const dataDir = options.dataDir ?? (await tempDir('hub'));
  const apiKey = options.apiKey ?? newApiKey();
  const [command, args]: [string, string[]] = options.shellBefore === undefined
    ? [process.execPath, [HUB_MAIN]]
    : ['/bin/sh', ['-c', `${options.shellBefore}\nexec "$0" "$1"`, process.execPath, HUB_MAIN]];
  const proc = startProcess(
    command,
    args,
    {
      HUB_PORT: String(options.port ?? 0),
      WEB_PORT: '0',
      HUB_HOST: '127.0.0.1',
      HUB_DATA_DIR: dataDir,
      DATABASE_URL: options.databaseUrl ?? '',
      HUB_BOOTSTRAP_API_KEY: apiKey,
      LOG_LEVEL: 'info',
      // Tests refuse many upgrades and make many requests from 127.0.0.1; the limits have tests of their own.
      HUB_RATE_LIMIT_UPGRADE_FAILURES: '100000/1m',
      HUB_RATE_LIMIT_API: '100000/1m',
      HUB_RATE_LIMIT_AUTH_FAILURES: '100000/1m',
      ...options.env,
    },
    'hub',
  );
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  let port: number;
  let webUrl: string | undefined;
  try {
    const listening = await proc.waitFor((l) => l.msg === 'hub listening', startTimeoutMs, '"hub listening" log line');
    port = Number(listening.port);
    if (String(options.env?.WEB_PORT ?? '').toLowerCase() !== 'off') {
      const web = await proc.waitFor((l) => l.msg === 'web listening', startTimeoutMs, '"web listening" log line');
      webUrl = `http://127.0.0.1:${Number(web.port)}`;
    }
  } catch (err) {
    // Nobody gets a handle on a hub that failed to start: stop it here, or its open pipes keep the test file running.
    await proc.kill();
    throw err;
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    url,
    port,
    webUrl,
    dataDir,
    apiKey,
    metrics: () => readMetrics(url),
    async stop() {
      await proc.stop();
    },
  };
}

export interface AgentHome {
  home: string;
  label: string;
  /** Runs a one-shot command (`up`, `ls`, `status`, `down`) and returns its exit code and output. */
  run(args: string[], env?: NodeJS.ProcessEnv): { code: number; stdout: string; stderr: string; json: () => unknown };
  /** Starts a long-running command (`expose`, `reach`) with --json. */
  start(args: string[], env?: NodeJS.ProcessEnv): Proc;
  /** `connect expose <target> --name <name>`, resolved once the hub confirmed it. */
  expose(target: string, name: string, extra?: string[]): Promise<Proc>;
  /** `connect reach <name>`, resolved with the local port once it listens. */
  reach(name: string, extra?: string[]): Promise<{ proc: Proc; port: number }>;
}

export interface AgentOptions {
  label?: string;
  home?: string;
  env?: NodeJS.ProcessEnv;
}

type Starter = (args: string[]) => Proc;

/** `connect expose`, resolved once the hub confirmed the service. */
export async function startExpose(start: Starter, target: string, name: string, extra: string[] = []): Promise<Proc> {
  const proc = start(['expose', target, '--name', name, ...extra]);
  await proc.waitFor((l) => l.type === 'exposed' && (l.service as { name?: string } | undefined)?.name === name, 20_000, `"exposed ${name}" event`);
  return proc;
}

/** `connect reach`, resolved with the local port once it listens. */
export async function startReach(start: Starter, name: string, extra: string[] = []): Promise<{ proc: Proc; port: number }> {
  const proc = start(['reach', name, ...extra]);
  const line = await proc.waitFor((l) => l.type === 'listening' && l.name === name, 20_000, `"listening ${name}" event`);
  return { proc, port: Number(line.port) };
}

/** An agent config folder enrolled with `connect up` against the hub. */
export async function enrolAgent(hub: { url: string; apiKey: string }, options: AgentOptions = {}): Promise<AgentHome> {
  const home = options.home ?? (await tempDir('agent'));
  const label = options.label ?? `agent-${randomBytes(3).toString('hex')}`;
  const baseEnv: NodeJS.ProcessEnv = { CONNECT_HOME: home, CONNECT_RECONNECT_MAX_MS: '500', NO_COLOR: '1', ...options.env };
  const agent: AgentHome = {
    home,
    label,
    run(args, env) {
      const result = spawnSync(process.execPath, [CONNECT_MAIN, '--json', ...args], { env: { ...process.env, ...baseEnv, ...env }, encoding: 'utf8', timeout: 30_000 });
      return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr, json: () => JSON.parse(result.stdout) as unknown };
    },
    start(args, env) {
      return startProcess(process.execPath, [CONNECT_MAIN, '--json', ...args], { ...baseEnv, ...env }, `connect ${args.join(' ')} (${label})`);
    },
    expose: (target, name, extra = []) => startExpose(agent.start, target, name, extra),
    reach: (name, extra = []) => startReach(agent.start, name, extra),
  };
  const up = agent.run(['up', '--hub', hub.url, '--api-key', hub.apiKey, '--label', label]);
  if (up.code !== 0) throw new Error(`connect up failed (${up.code}): ${up.stdout}${up.stderr}`);
  return agent;
}

/** Removes temp folders at the end of a test file. */
export async function removeDirs(...dirs: Array<string | undefined>): Promise<void> {
  await Promise.all(dirs.filter((d): d is string => !!d).map((d) => rm(d, { recursive: true, force: true })));
}

/**
 * A workspace of its own, as a new person gets one: sign in by the link the hub printed (its console mailer), then an
 * API key made with that session, from the hub's own origin as its pages would.
 */
export async function newWorkspace(hub: HubProcess, email: string): Promise<{ workspaceId: string; apiKey: string }> {
  const login = await fetch(`${hub.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: hub.url }, body: JSON.stringify({ email }) });
  if (login.status !== 202) throw new Error(`sign-in link request for ${email}: ${login.status}`);
  const line = await eventually(async () => {
    const found = hub.proc.stderr().split('\n').reverse().find((l) => l.includes(` link for ${email}: `));
    if (!found) throw new Error(`no link printed for ${email}`);
    return found;
  });
  const token = new URL(line.trim().split(' ').pop()!).searchParams.get('token')!;
  const verify = await fetch(`${hub.url}/v1/auth/verify?token=${token}`, { method: 'POST', headers: { origin: hub.url } });
  if (verify.status !== 200) throw new Error(`signing in ${email}: ${verify.status} ${await verify.text()}`);
  const { workspaceId } = (await verify.json()) as { workspaceId: string };
  const cookie = verify.headers.getSetCookie()[0]!.split(';')[0]!;
  const key = await fetch(`${hub.url}/v1/api-keys`, { method: 'POST', headers: { 'content-type': 'application/json', cookie, origin: hub.url }, body: JSON.stringify({ name: 'ci' }) });
  if (key.status !== 201) throw new Error(`an API key for ${email}: ${key.status} ${await key.text()}`);
  return { workspaceId, apiKey: ((await key.json()) as { key: string }).key };
}
