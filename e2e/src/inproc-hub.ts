/**
 * A hub running inside the test process (real sockets, embedded PGlite in a temp folder) with direct access to its
 * database: for tests that need what the bootstrap cannot give, e.g. a second workspace or an expired token.
 *
 * The hub shares the test's event loop, so `connect` commands against it must run asynchronously:
 * AgentHome.run (spawnSync) would block the hub and time out. enrolAgentAsync gives an agent folder whose
 * `run` is async; start/expose/reach work as in the harness.
 */

import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectJsonLines, createApiKey, createLogger, loadConfig, startHub, type Clock, type Database, type Hub } from '@private-connect/hub';
import { CONNECT_MAIN, newApiKey, startExpose, startReach, tempDir } from './harness.js';
import { startProcess, type Proc } from './processes.js';

export interface InProcessHub {
  hub: Hub;
  url: string;
  port: number;
  /** The web port's URL (same application; the dashboard's origin); undefined with WEB_PORT=off. */
  webUrl?: string;
  dataDir: string;
  db: Database;
  /** The bootstrap workspace and its API key. */
  workspaceId: string;
  apiKey: string;
  /** The hub's JSON log lines (most recent 5000), for assertions and failure messages. */
  logs: Array<Record<string, unknown>>;
  /** Creates another workspace directly in the database, with an API key of its own. */
  addWorkspace(name: string): Promise<{ workspaceId: string; apiKey: string }>;
  stop(): Promise<void>;
}

export interface InProcessHubOptions {
  /** Extra environment for loadConfig (e.g. AGENT_TOKEN_TTL). */
  env?: NodeJS.ProcessEnv;
  /** The hub's clock (a ManualClock lets a test move token expiry and grace periods forward). */
  clock?: Clock;
}

/** Starts a hub in this process on 127.0.0.1 and a free port, with a new PGlite folder. */
export async function startInProcessHub(options: InProcessHubOptions = {}): Promise<InProcessHub> {
  const dataDir = await tempDir('inproc-hub');
  const apiKey = newApiKey();
  const config = loadConfig({
    HUB_PORT: '0',
    WEB_PORT: '0',
    HUB_HOST: '127.0.0.1',
    HUB_DATA_DIR: dataDir,
    HUB_BOOTSTRAP_API_KEY: apiKey,
    LOG_LEVEL: 'info',
    // Tests refuse many upgrades and make many requests from 127.0.0.1; the limits have tests of their own.
    HUB_RATE_LIMIT_UPGRADE_FAILURES: '100000/1m',
    HUB_RATE_LIMIT_API: '100000/1m',
    HUB_RATE_LIMIT_AUTH_FAILURES: '100000/1m',
    ...options.env,
  });
  const { sink, lines: logs } = collectJsonLines(5000);
  const hub = await startHub(config, { logger: createLogger(config.logLevel, sink), clock: options.clock });
  if (!hub.bootstrap) throw new Error('the in-process hub did not bootstrap a workspace');
  return {
    hub,
    url: hub.url,
    port: hub.port,
    webUrl: hub.webUrl,
    dataDir,
    db: hub.db,
    workspaceId: hub.bootstrap.workspaceId,
    apiKey: hub.bootstrap.apiKey,
    logs,
    async addWorkspace(name) {
      const [row] = await hub.db.withSystem((tx) => tx.query<{ id: string }>('insert into workspaces (name) values ($1) returning id', [name]));
      const workspaceId = row!.id;
      return { workspaceId, apiKey: await createApiKey(hub.db, workspaceId, `${name} test key`) };
    },
    stop: () => hub.close(),
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as one JSON document. */
  json(): unknown;
  /** stdout parsed as JSON lines (lines that are not JSON are skipped). */
  lines(): Array<Record<string, unknown>>;
}

/** Runs the built `connect` CLI asynchronously (no spawnSync), with CONNECT_HOME and any extra environment. */
export function runConnect(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CONNECT_MAIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({
        code,
        stdout,
        stderr,
        json: () => JSON.parse(stdout) as unknown,
        lines: () =>
          stdout
            .split('\n')
            .filter((l) => l.trim().startsWith('{'))
            .flatMap((l) => {
              try {
                return [JSON.parse(l) as Record<string, unknown>];
              } catch {
                return [];
              }
            }),
      });
    });
  });
}

export interface AsyncAgentHome {
  home: string;
  label: string;
  env: NodeJS.ProcessEnv;
  /** Runs a one-shot command (with --json unless json: false) without blocking the event loop. */
  run(args: string[], options?: { json?: boolean; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** Starts a long-running command (`expose`, `reach`) with --json. */
  start(args: string[], env?: NodeJS.ProcessEnv): Proc;
  expose(target: string, name: string, extra?: string[]): Promise<Proc>;
  reach(name: string, extra?: string[]): Promise<{ proc: Proc; port: number }>;
  /** The config.json `connect up` wrote. */
  config(): Promise<{ agentId: string; workspaceId: string; token: string; hubUrl: string; label: string }>;
}

/** An agent config folder enrolled with the real `connect up` (async, so it works against an in-process hub). */
export async function enrolAgentAsync(
  hub: { url: string; apiKey: string },
  options: { label?: string; home?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<AsyncAgentHome> {
  const home = options.home ?? (await tempDir('agent'));
  const label = options.label ?? `agent-${randomBytes(3).toString('hex')}`;
  const env: NodeJS.ProcessEnv = { CONNECT_HOME: home, CONNECT_RECONNECT_MAX_MS: '500', NO_COLOR: '1', ...options.env };
  const agent: AsyncAgentHome = {
    home,
    label,
    env,
    run: (args, runOptions = {}) => runConnect([...(runOptions.json === false ? [] : ['--json']), ...args], { ...env, ...runOptions.env }),
    start: (args, extraEnv) => startProcess(process.execPath, [CONNECT_MAIN, '--json', ...args], { ...env, ...extraEnv }, `connect ${args.join(' ')} (${label})`),
    expose: (target, name, extra = []) => startExpose(agent.start, target, name, extra),
    reach: (name, extra = []) => startReach(agent.start, name, extra),
    async config() {
      return JSON.parse(await readFile(join(home, 'config.json'), 'utf8')) as Awaited<ReturnType<AsyncAgentHome['config']>>;
    },
  };
  const up = await agent.run(['up', '--hub', hub.url, '--api-key', hub.apiKey, '--label', label]);
  if (up.code !== 0) throw new Error(`connect up failed (${up.code}): ${up.stdout}${up.stderr}`);
  return agent;
}
