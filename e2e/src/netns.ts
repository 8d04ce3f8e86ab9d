/**
 * Linux network namespaces for the tests of direct paths (issue 25): namespaces named per run, veth pairs made inside
 * them (never in the host's own namespace), addresses, routes and firewall rules inside them, processes started in
 * them, and bridges between the test process and a namespace through unix sockets (which are no network address).
 * Needs root, `ip` (iproute2), `iptables` and `socat`. The host's interfaces, routes and firewall are never touched.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Proc } from './processes.js';
import { CONNECT_MAIN, HUB_MAIN, newApiKey, readMetrics, startExpose, startReach, tempDir, type AgentHome, type HubProcess } from './harness.js';

/** Every namespace of a run is named `<NETNS_PREFIX>-<pid>-<role>`. */
export const NETNS_PREFIX = 'pc25';

/** The program the tests run inside namespaces (servers and clients speaking JSON lines): netns-peer.ts. */
export const PEER_MAIN = new URL('./netns-peer.js', import.meta.url).pathname;

/** The tools this module needs that are not on PATH (empty when all are there). */
export function missingNetnsTools(): string[] {
  return ['ip', 'iptables', 'socat', 'ss'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

/** Runs a command and returns its stdout; throws with its stderr when it fails. */
export function sh(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}${result.error ?? ''}`);
  return result.stdout;
}

/** One end of a veth pair: its namespace (role), device name and address with prefix length ("10.25.1.2/24"). */
export interface VethEnd {
  role: string;
  dev: string;
  addr: string;
}

/** A set of namespaces made for one test run, and everything running inside them. */
export interface NetLab {
  /** The namespace name of a role. */
  ns(role: string): string;
  /** Makes the namespace of `role` with its loopback up. */
  add(role: string): string;
  /** A veth pair between two namespaces, both ends up with their addresses. */
  link(a: VethEnd, b: VethEnd): void;
  /** Runs a command inside the namespace of `role` (e.g. ['ip', 'route', 'add', ...]); its stdout. */
  exec(role: string, args: string[]): string;
  /** Runs a command inside the namespace and returns its exit code and output, whatever they are. */
  execResult(role: string, args: string[], timeoutMs?: number): { code: number; stdout: string; stderr: string };
  /** Starts a long-running process inside the namespace; stopped by dispose(). */
  start(role: string, command: string, args: string[], env?: NodeJS.ProcessEnv, label?: string): Proc;
  /** Starts netns-peer.ts inside the namespace with `args`. */
  peer(role: string, args: string[], label?: string): Proc;
  /** A port on 127.0.0.1 of the test process that leads to host:port inside the namespace. */
  bridgeIn(role: string, host: string, port: number): Promise<{ port: number; close(): Promise<void> }>;
  /** 127.0.0.1:port inside the namespace leads to 127.0.0.1:hostPort of the test's own namespace (both ends are processes of their own). */
  bridgeOut(role: string, port: number, hostPort: number): Promise<void>;
  /** Stops every process started here, then removes the namespaces (their veths and rules go with them). */
  dispose(): Promise<void>;
}

/**
 * Removes namespaces of earlier runs whose test process is gone (a run killed before its `after`), with what that run
 * left running inside them.
 */
function removeStale(): void {
  let names: string[] = [];
  try {
    names = readdirSync('/var/run/netns');
  } catch {
    return; // no namespace at all yet
  }
  for (const name of names) {
    const m = new RegExp(`^${NETNS_PREFIX}-(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    removeNamespace(name);
  }
}

/** Deletes a namespace of this module; whatever still runs inside (started there by a run of these tests) goes too. */
function removeNamespace(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  spawnSync('ip', ['netns', 'del', name]);
}

/** A new lab: namespaces `pc25-<pid>-<role>`. */
export function netLab(): NetLab {
  removeStale();
  const made: string[] = [];
  const procs: Proc[] = [];
  /** Closes the bridges' servers of this process and their connections. */
  const closers: Array<() => Promise<void>> = [];
  const sockDir = mkdtempSync(join(tmpdir(), `${NETNS_PREFIX}-sock-`));
  let bridges = 0;
  const ns = (role: string) => `${NETNS_PREFIX}-${process.pid}-${role}`;

  const lab: NetLab = {
    ns,
    add(role) {
      const name = ns(role);
      sh('ip', ['netns', 'add', name]);
      made.push(name);
      sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      return name;
    },
    link(a, b) {
      // Made inside a's namespace with its peer put straight into b's: the pair never exists in the host's namespace.
      sh('ip', ['-n', ns(a.role), 'link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev, 'netns', ns(b.role)]);
      for (const end of [a, b]) {
        sh('ip', ['-n', ns(end.role), 'addr', 'add', end.addr, 'dev', end.dev]);
        sh('ip', ['-n', ns(end.role), 'link', 'set', 'dev', end.dev, 'up']);
      }
    },
    exec(role, args) {
      return sh('ip', ['netns', 'exec', ns(role), ...args]);
    },
    execResult(role, args, timeoutMs = 60_000) {
      const result = spawnSync('ip', ['netns', 'exec', ns(role), ...args], { encoding: 'utf8', timeout: timeoutMs });
      return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr + (result.error ? String(result.error) : '') };
    },
    start(role, command, args, env = {}, label) {
      const proc = startProcess('ip', ['netns', 'exec', ns(role), command, ...args], env, label ?? `${role}: ${command} ${args.join(' ')}`);
      procs.push(proc);
      return proc;
    },
    peer(role, args, label) {
      return lab.start(role, process.execPath, [PEER_MAIN, ...args], {}, label ?? `${role}: peer ${args.join(' ')}`);
    },
    async bridgeIn(role, host, port) {
      const path = join(sockDir, `in-${++bridges}.sock`);
      lab.start(role, 'socat', [`UNIX-LISTEN:${path},fork,unlink-early`, `TCP:${host}:${port}`]);
      await until(() => existsSync(path), `the bridge into ${role} (${path})`);
      return pipeServer(closers, (server) => server.listen(0, '127.0.0.1'), () => net.connect({ path }));
    },
    async bridgeOut(role, port, hostPort) {
      const path = join(sockDir, `out-${++bridges}.sock`);
      // The host's end is a child process, not this one: a test blocked in spawnSync (connect up) must not stall it.
      // It exits when this process is gone, however that happened.
      const hostEnd = startProcess(process.execPath, [PEER_MAIN, 'pipe-out', path, String(hostPort)], {}, `bridge out of ${role}`);
      procs.push(hostEnd);
      await hostEnd.waitFor((l) => l.type === 'listening', 10_000, 'the host end of the bridge listening');
      lab.start(role, 'socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${path}`]);
      await until(() => lab.exec(role, ['ss', '-Hltn', `sport = :${port}`]).trim() !== '', `the bridge out of ${role} listening on ${port}`);
    },
    async dispose() {
      await Promise.all(procs.map((p) => p.stop(2000)));
      await Promise.all(closers.map((close) => close()));
      for (const name of made.reverse()) removeNamespace(name);
      rmSync(sockDir, { recursive: true, force: true });
    },
  };
  return lab;
}

/** A server of this process that pipes each connection to a new one from `dial`; `listen` starts it. */
async function pipeServer(closers: Array<() => Promise<void>>, listen: (server: net.Server) => void, dial: () => net.Socket): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const inner = dial();
    for (const s of [client, inner]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        inner.destroy();
      });
    }
    client.pipe(inner);
    inner.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => resolve());
    listen(server);
  });
  const address = server.address();
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
  closers.push(close);
  return { port: typeof address === 'object' && address ? address.port : 0, close };
}

async function until(ok: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`netns: no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `connect` agent whose commands all run inside one namespace of the lab (AgentHome, as enrolAgent's). */
export async function enrolNetnsAgent(lab: NetLab, role: string, hub: { url: string; apiKey: string }, options: { label: string; env?: NodeJS.ProcessEnv }): Promise<AgentHome> {
  const agent = await netnsAgentHome(lab, role, options);
  const up = agent.run(['up', '--hub', hub.url, '--api-key', hub.apiKey, '--label', options.label]);
  if (up.code !== 0) throw new Error(`connect up in ${role} failed (${up.code}): ${up.stdout}${up.stderr}`);
  return agent;
}

/** A config folder for `connect` commands run inside one namespace of the lab, not enrolled yet (`connect up` is the caller's). */
export async function netnsAgentHome(lab: NetLab, role: string, options: { label: string; env?: NodeJS.ProcessEnv }): Promise<AgentHome> {
  const home = await tempDir('agent');
  // The hub's address in the lab is no loopback address: plain http needs CONNECT_ALLOW_INSECURE.
  const baseEnv: NodeJS.ProcessEnv = { CONNECT_HOME: home, CONNECT_RECONNECT_MAX_MS: '500', NO_COLOR: '1', CONNECT_ALLOW_INSECURE: 'true', ...options.env };
  const agent: AgentHome = {
    home,
    label: options.label,
    run(args, env) {
      const result = spawnSync('ip', ['netns', 'exec', lab.ns(role), process.execPath, CONNECT_MAIN, '--json', ...args], {
        env: { ...process.env, ...baseEnv, ...env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr, json: () => JSON.parse(result.stdout) as unknown };
    },
    start(args, env) {
      return lab.start(role, process.execPath, [CONNECT_MAIN, '--json', ...args], { ...baseEnv, ...env }, `${role}: connect ${args.join(' ')} (${options.label})`);
    },
    expose: (target, name, extra = []) => startExpose(agent.start, target, name, extra),
    reach: (name, extra = []) => startReach(agent.start, name, extra),
  };
  return agent;
}

/** A hub process inside a namespace of the lab: agents there use `agentUrl`, the test process `url` (a bridge). */
export interface NetnsHub extends HubProcess {
  /** The hub's address inside the lab, for agents: http://<address>:<port>. */
  agentUrl: string;
}

/**
 * Starts `connect-hub` inside the namespace of `role`, listening on `address:port` there (WEB_PORT off), with the
 * database `databaseUrl` (as the hub's namespace sees it: bridge it first). The test process reaches it through a
 * bridge on 127.0.0.1; its /metrics are read there.
 */
export async function startNetnsHub(lab: NetLab, role: string, options: { address: string; port: number; databaseUrl: string; env?: NodeJS.ProcessEnv }): Promise<NetnsHub> {
  const dataDir = await tempDir('hub');
  const apiKey = newApiKey();
  const proc = lab.start(
    role,
    process.execPath,
    [HUB_MAIN],
    {
      HUB_PORT: String(options.port),
      HUB_HOST: '0.0.0.0',
      WEB_PORT: 'off',
      HUB_DATA_DIR: dataDir,
      DATABASE_URL: options.databaseUrl,
      HUB_BOOTSTRAP_API_KEY: apiKey,
      LOG_LEVEL: 'info',
      HUB_RATE_LIMIT_UPGRADE_FAILURES: '100000/1m',
      HUB_RATE_LIMIT_API: '100000/1m',
      HUB_RATE_LIMIT_AUTH_FAILURES: '100000/1m',
      ...options.env,
    },
    `hub in ${role}`,
  );
  await proc.waitFor((l) => l.msg === 'hub listening', 30_000, '"hub listening" log line');
  const bridge = await lab.bridgeIn(role, '127.0.0.1', options.port);
  const url = `http://127.0.0.1:${bridge.port}`;
  return {
    proc,
    url,
    port: options.port,
    dataDir,
    apiKey,
    agentUrl: `http://${options.address}:${options.port}`,
    metrics: () => readMetrics(url),
    async stop() {
      await proc.stop();
      await bridge.close();
    },
  };
}
