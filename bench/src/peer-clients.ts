/**
 * Real clients in the peer benchmark: `pgbench` against the machine's PostgreSQL and `redis-benchmark` against its
 * Redis, each pointed at a way's port. The bench makes its own pgbench database (initialised small, dropped after,
 * also on an interrupted run); redis-benchmark writes one key in a database number of its own, deleted after.
 * A missing program or a server that does not answer is said (a reason instead of a target), never a crash.
 */

import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { createDatabase, postgresProblem, safeUrl, type BenchDatabase } from './cluster-setup.js';
import { haveCommand } from './peer-procs.js';

const run = promisify(execFile);

const firstLine = (err: unknown): string => {
  const e = err as { stderr?: string; message?: string };
  const text = (e.stderr ?? '').trim() || (e.message ?? String(err));
  return text.split('\n').find((l) => l.trim())?.trim() ?? text;
};

/** pgbench's scale factor: 100,000 rows in pgbench_accounts, initialised in about a second. */
export const PGBENCH_SCALE = 1;

export interface PgbenchTarget {
  /** Loopback port of the PostgreSQL server (what the ways forward to). */
  port: number;
  user: string;
  database: BenchDatabase;
}

/** The pgbench database on PostgreSQL at `adminUrl` (a loopback server), or why pgbench cannot run. */
export async function preparePgbench(adminUrl: string): Promise<PgbenchTarget | { why: string }> {
  if (!haveCommand('pgbench')) return { why: 'pgbench is not installed (apt-get install postgresql-client): no pgbench figures' };
  let url: URL;
  try {
    url = new URL(adminUrl);
  } catch {
    return { why: `"${safeUrl(adminUrl)}" is not a PostgreSQL URL: no pgbench figures` };
  }
  if (!['127.0.0.1', 'localhost'].includes(url.hostname)) return { why: `PostgreSQL at ${safeUrl(adminUrl)} is not on loopback (the ways forward to 127.0.0.1): no pgbench figures` };
  const problem = await postgresProblem(adminUrl);
  if (problem) return { why: `${problem}: no pgbench figures` };
  const port = Number(url.port || 5432);
  const user = decodeURIComponent(url.username || 'postgres');
  const database = await createDatabase(adminUrl, 'pc_bench_pgbench');
  try {
    await run('pgbench', ['-i', '-q', '-s', String(PGBENCH_SCALE), '-h', '127.0.0.1', '-p', String(port), '-U', user, database.name], {
      env: pgEnv(url),
      timeout: 120_000,
    });
  } catch (err) {
    await database.drop().catch(() => undefined);
    return { why: `pgbench -i failed: ${firstLine(err)}: no pgbench figures` };
  }
  return { port, user, database };
}

/** A password in the URL reaches pgbench by PGPASSWORD (never on its command line). */
function pgEnv(url: URL): NodeJS.ProcessEnv {
  return url.password ? { ...process.env, PGPASSWORD: decodeURIComponent(url.password) } : process.env;
}

export interface PgbenchRun {
  /** Transactions per second; with -C, including the time to open each connection. */
  tps: number;
  latencyMs: number;
  transactions: number;
  failed: number;
  error?: string;
}

/** Reads pgbench's summary ("tps = 16468.23 (without initial connection time)", "latency average = 0.486 ms"). */
export function parsePgbench(output: string): PgbenchRun {
  const num = (re: RegExp) => Number(re.exec(output)?.[1] ?? NaN);
  const tps = num(/^tps = ([\d.]+)/m);
  return {
    tps,
    latencyMs: num(/^latency average = ([\d.]+) ms/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: Number(/^number of failed transactions: (\d+)/m.exec(output)?.[1] ?? 0),
    ...(Number.isFinite(tps) ? {} : { error: `no tps in pgbench's output: ${output.slice(0, 200)}` }),
  };
}

export interface PgbenchSettings {
  seconds: number;
  clients: number;
  threads: number;
}

/**
 * `pgbench -S` (select only) through `port` for `seconds`; `reconnect`: -C, a new connection per transaction (what
 * psql -c, health probes and clients without a pool do). -n: no vacuum (nothing is written).
 */
export async function pgbench(target: PgbenchTarget, port: number, s: PgbenchSettings, reconnect: boolean): Promise<PgbenchRun> {
  const args = ['-n', '-S', ...(reconnect ? ['-C'] : []), '-c', String(s.clients), '-j', String(s.threads), '-T', String(s.seconds)];
  args.push('-h', '127.0.0.1', '-p', String(port), '-U', target.user, target.database.name);
  try {
    const { stdout } = await run('pgbench', args, { env: pgEnv(new URL(target.database.url)), timeout: (s.seconds + 60) * 1000, maxBuffer: 1 << 20 });
    return parsePgbench(stdout);
  } catch (err) {
    // pgbench exits non-zero when a client aborted (a connection refused or cut): the figure would not be comparable.
    const stdout = (err as { stdout?: string }).stdout ?? '';
    return { ...parsePgbench(stdout), error: `pgbench ${reconnect ? '-C ' : ''}-S: ${firstLine(err)}` };
  }
}

/** redis-benchmark's SELECT: a database number of its own, so its key never meets anyone else's. */
export const REDIS_DB = 9;
/** The one key `redis-benchmark -t get,set` writes (no -r: the placeholder stays as it is). */
const REDIS_KEY = 'key:__rand_int__';

/** One RESP command to Redis at 127.0.0.1:`port`; resolves with the first reply line. */
function redisCommand(port: number, args: string[], timeoutMs = 3000): Promise<string> {
  const request = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(timeoutMs, () => (socket.destroy(), reject(new Error(`no answer within ${timeoutMs} ms`))));
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.slice(0, reply.indexOf('\r\n')));
      }
    });
    socket.write(request);
  });
}

/** Why redis-benchmark cannot run against Redis at 127.0.0.1:`port`, or undefined when it can. */
export async function redisProblem(port: number): Promise<string | undefined> {
  if (!haveCommand('redis-benchmark')) return 'redis-benchmark is not installed (apt-get install redis-tools): no redis-benchmark figures';
  try {
    const pong = await redisCommand(port, ['PING']);
    return pong === '+PONG' ? undefined : `Redis at 127.0.0.1:${port} answered PING with "${pong.slice(0, 60)}": no redis-benchmark figures`;
  } catch (err) {
    return `Redis does not answer at 127.0.0.1:${port} (${(err as Error).message}): no redis-benchmark figures`;
  }
}

/** Deletes the key redis-benchmark wrote (in REDIS_DB). */
export async function redisCleanup(port: number): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => {
    socket.once('error', () => resolve());
    socket.once('close', () => resolve());
    socket.setTimeout(3000, () => socket.destroy());
    socket.write(`*2\r\n$6\r\nSELECT\r\n$${String(REDIS_DB).length}\r\n${REDIS_DB}\r\n*2\r\n$3\r\nDEL\r\n$${REDIS_KEY.length}\r\n${REDIS_KEY}\r\n*1\r\n$4\r\nQUIT\r\n`);
  });
}

export interface RedisRun {
  /** Requests per second by command (GET, SET). */
  rps: Record<string, number>;
  error?: string;
}

/** Reads `redis-benchmark --csv`: a header, then `"SET","27027.03",...` per command. */
export function parseRedisCsv(output: string): RedisRun {
  const rps: Record<string, number> = {};
  for (const line of output.split('\n')) {
    const m = /^"([A-Z_]+)","([\d.]+)"/.exec(line.trim());
    if (m) rps[m[1]!] = Number(m[2]);
  }
  return { rps, ...(Object.keys(rps).length > 0 ? {} : { error: `no figures in redis-benchmark's output: ${output.slice(0, 200)}` }) };
}

export interface RedisSettings {
  clients: number;
  /** Requests per command without pipelining, and with -P 16. */
  requests: number;
  pipelinedRequests: number;
}

export const REDIS_COMMANDS = ['GET', 'SET'] as const;
export const REDIS_PIPELINE = 16;

/** `redis-benchmark -t get,set` through `port`: plain, or `pipelined` (-P 16). */
export async function redisBenchmark(port: number, s: RedisSettings, pipelined: boolean): Promise<RedisRun> {
  const requests = pipelined ? s.pipelinedRequests : s.requests;
  const args = ['-h', '127.0.0.1', '-p', String(port), '--dbnum', String(REDIS_DB), '-t', REDIS_COMMANDS.join(',').toLowerCase(), '-n', String(requests), '-c', String(s.clients), '--csv'];
  if (pipelined) args.push('-P', String(REDIS_PIPELINE));
  try {
    const { stdout } = await run('redis-benchmark', args, { timeout: 180_000, maxBuffer: 1 << 20 });
    const result = parseRedisCsv(stdout);
    const missing = REDIS_COMMANDS.filter((c) => !(result.rps[c]! > 0));
    return missing.length > 0 && !result.error ? { ...result, error: `redis-benchmark gave no figure for ${missing.join(', ')}` } : result;
  } catch (err) {
    return { rps: {}, error: `redis-benchmark${pipelined ? ` -P ${REDIS_PIPELINE}` : ''}: ${firstLine(err)}` };
  }
}
