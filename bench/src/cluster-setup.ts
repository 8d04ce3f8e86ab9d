/**
 * The world of the cluster bench: two hub processes on one fresh PostgreSQL database relaying to each other over
 * NATS; a `connect expose` agent on hub A for a sink and an echo server; `connect reach` agents for both, one on
 * hub A (same hub) and one on hub B (cross hub, over NATS). PostgreSQL and NATS are probed first, so that a
 * machine without them skips the part instead of failing.
 */

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
// pg comes with @private-connect/e2e (hoisted to the root node_modules); bench/package.json does not list it so
// that adding this part did not change package-lock.json.
import pg from 'pg';
import { enrolAgent, removeDirs, startHubProcess, type HubProcess, type Proc } from '@private-connect/e2e';
import { progress, sleep } from './config.js';
import { echoServer, sinkServer, type BenchServer } from './servers.js';

/** How the bench client reaches the servers: directly, through hub A alone, or from hub B to hub A over NATS. */
export type ClusterWay = 'direct' | 'same' | 'cross';
export const CLUSTER_WAYS: readonly ClusterWay[] = ['direct', 'same', 'cross'];

export const message = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

/** A NATS URL as a URL: NATS_URL may also be a bare host:port. */
export function natsUrlOf(url: string): URL {
  return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `nats://${url}`);
}

/** The URL with its password masked: secrets are never printed. Bare host:port (NATS) is taken as nats://. */
export function safeUrl(url: string): string {
  try {
    const u = natsUrlOf(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '(not a URL)';
  }
}

/** Why PostgreSQL at `adminUrl` cannot be used, or undefined when it answers a query within 3 s. */
export async function postgresProblem(adminUrl: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return `PostgreSQL at ${safeUrl(adminUrl)} is not reachable: ${message(err)}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Why NATS at `url` cannot be used, or undefined when a server there greets with INFO within 3 s. */
export function natsProblem(url: string): Promise<string | undefined> {
  let host: string;
  let port: number;
  try {
    const u = natsUrlOf(url);
    host = u.hostname.replace(/^\[|\]$/g, '');
    port = Number(u.port || 4222);
  } catch {
    return Promise.resolve(`"${url}" is not a NATS URL`);
  }
  const where = `NATS at ${safeUrl(url)}`;
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (problem?: string) => {
      socket.destroy();
      resolve(problem);
    };
    let greeting = '';
    socket.setTimeout(3000, () => done(`${where} did not greet within 3 s`));
    socket.once('error', (err) => done(`${where} is not reachable: ${message(err)}`));
    socket.on('data', (chunk: Buffer) => {
      greeting += chunk.toString('latin1');
      if (greeting.length >= 4) done(greeting.startsWith('INFO') ? undefined : `${where} is not a NATS server (it said "${greeting.slice(0, 20).trim()}")`);
    });
  });
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface BenchDatabase {
  name: string;
  /** The database's URL, for the hubs' DATABASE_URL. */
  url: string;
  /** Drops it (forcing the hubs' sessions off); safe to call twice. */
  drop(): Promise<void>;
}

/**
 * A fresh database with a random name. It is dropped by drop(), and also when the bench exits without calling it
 * (Ctrl-C or a CI timeout end in process.exit, where finally blocks do not run): the exit hook drops it from a
 * short synchronous child process, since an exit hook cannot wait for a query.
 */
export async function createDatabase(adminUrl: string, prefix = 'pc_bench_cluster'): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const dropSql = `drop database if exists ${name} with (force)`;
  await adminQuery(adminUrl, `create database ${name}`);
  const pgPath = createRequire(import.meta.url).resolve('pg');
  const dropOnExit = () => {
    const script = `const pg = require(${JSON.stringify(pgPath)}); const c = new pg.Client(process.env.PC_ADMIN_URL);` +
      ` c.connect().then(() => c.query(${JSON.stringify(dropSql)})).finally(() => c.end());`;
    spawnSync(process.execPath, ['-e', script], { env: { ...process.env, PC_ADMIN_URL: adminUrl }, stdio: 'ignore', timeout: 10_000 });
  };
  process.on('exit', dropOnExit);
  let dropped = false;
  return {
    name,
    url: Object.assign(new URL(adminUrl), { pathname: `/${name}` }).href,
    async drop() {
      if (dropped) return;
      dropped = true;
      process.off('exit', dropOnExit);
      await adminQuery(adminUrl, dropSql);
    },
  };
}

/** The first process whose command name is `comm` (from /proc), e.g. a local nats-server; undefined when none. */
export function pidNamed(comm: string): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** One way to the two servers: its ports, and the processes it crosses (for CPU samples); none for direct. */
export interface WayPorts {
  sink: number;
  echo: number;
  /** Role → pid for the bulk (sink) and the echo workloads. */
  sinkPids: Record<string, number>;
  echoPids: Record<string, number>;
}

export interface ClusterWorld {
  database: string;
  hubA: HubProcess;
  hubB: HubProcess;
  ways: Record<ClusterWay, WayPorts>;
  stop(): Promise<void>;
}

interface Service {
  name: string;
  online: boolean;
  e2e?: string;
}

/** Resolves once `hub` lists every one of `names` online (for hub B: the routes hub A announced over NATS). */
async function waitOnline(hub: HubProcess, names: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const res = await fetch(`${hub.url}/v1/services`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
    const { services } = (await res.json()) as { services: Service[] };
    const online = services.filter((s) => s.online).map((s) => s.name);
    if (names.every((n) => online.includes(n))) return;
    last = JSON.stringify(services.map((s) => ({ name: s.name, online: s.online })));
    if (Date.now() > deadline) throw new Error(`hub ${hub.url} did not list ${names.join(', ')} online within ${timeoutMs} ms (it lists ${last})`);
    await sleep(100);
  }
}

const pidOf = (p: Proc | HubProcess): number => ('proc' in p ? p.proc : p).child.pid ?? -1;

/**
 * Starts everything on a database that exists already. On a failure half-way, whatever started is stopped before
 * the error goes on; the caller drops the database.
 */
export async function startClusterWorld(databaseUrl: string, database: string, natsUrl: string): Promise<ClusterWorld> {
  const hubs: HubProcess[] = [];
  const procs: Proc[] = [];
  const servers: BenchServer[] = [];
  const homes: string[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(hubs.map((h) => h.stop()));
    await Promise.all(servers.map((s) => s.close()));
    await removeDirs(...homes, ...hubs.map((h) => h.dataDir));
  };
  // Separate hub TCP port ranges, as for hubs on separate machines (neither bench service asks for one).
  const startHub = (index: number, apiKey?: string) =>
    startHubProcess({
      databaseUrl,
      ...(apiKey ? { apiKey } : {}),
      env: { NATS_URL: natsUrl, WEB_PORT: 'off', HUB_TCP_PORT_RANGE: `${25000 + index * 100}-${25099 + index * 100}` },
    });
  try {
    const [sink, echo] = await Promise.all([sinkServer(), echoServer()]);
    servers.push(sink, echo);
    // Hub A creates the workspace with its bootstrap key (and runs the migrations); hub B starts on the same database.
    const hubA = await startHub(0);
    hubs.push(hubA);
    const hubB = await startHub(1, hubA.apiKey);
    hubs.push(hubB);
    const exposing = await enrolAgent(hubA, { label: 'bench-cluster-expose' });
    homes.push(exposing.home);
    const reachSame = await enrolAgent(hubA, { label: 'bench-cluster-reach-same' });
    homes.push(reachSame.home);
    const reachCross = await enrolAgent(hubB, { label: 'bench-cluster-reach-cross' });
    homes.push(reachCross.home);

    // One expose process per server, shared by both ways, so the exposing side is the same for both.
    const exposeSink = await exposing.expose(`127.0.0.1:${sink.port}`, 'bench-cluster-sink', ['--check-interval', '0']);
    procs.push(exposeSink);
    const exposeEcho = await exposing.expose(`127.0.0.1:${echo.port}`, 'bench-cluster-echo', ['--check-interval', '0']);
    procs.push(exposeEcho);
    await waitOnline(hubB, ['bench-cluster-sink', 'bench-cluster-echo']);
    const reach = async (agent: typeof reachSame, hubLabel: string): Promise<WayPorts> => {
      const s = await agent.reach('bench-cluster-sink', ['--port', '0']);
      procs.push(s.proc);
      const e = await agent.reach('bench-cluster-echo', ['--port', '0']);
      procs.push(e.proc);
      const hubPids = { 'hub A': pidOf(hubA), 'hub B': pidOf(hubB) };
      progress(`cluster: ${hubLabel} reach agent listening on ${s.port} (sink) and ${e.port} (echo)`);
      return {
        sink: s.port,
        echo: e.port,
        sinkPids: { ...hubPids, 'expose agent': pidOf(exposeSink), 'reach agent': pidOf(s.proc) },
        echoPids: { ...hubPids, 'expose agent': pidOf(exposeEcho), 'reach agent': pidOf(e.proc) },
      };
    };
    const same = await reach(reachSame, 'same-hub (hub A)');
    const cross = await reach(reachCross, 'cross-hub (hub B)');
    return { database, hubA, hubB, ways: { direct: { sink: sink.port, echo: echo.port, sinkPids: {}, echoPids: {} }, same, cross }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
