/**
 * HTTP requests per second and latency with `wrk` (Debian package), against one small HTTP server reached six
 * ways in one run: directly on loopback; through `connect reach` (agent → hub → agent); through a hub TCP port
 * (`connect expose --hub-port`, no agent on the client side); through a public link (the hub as HTTP reverse
 * proxy) in path mode (`/l/<token>/`) and in subdomain mode (Host `<token>.<PUBLIC_BASE_DOMAIN>`, wrk sends the
 * Host header to the hub's port); and through an OpenSSH `ssh -R` reverse forward (ssh-forward.ts), the way
 * sish-like tunnels publish a service. Each way gets the same wrk settings; the ways take turns in rounds, the
 * order rotated per round, so that load from elsewhere on the machine hits every way alike.
 */

import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { enrolAgent, removeDirs, startHubProcess, type Proc } from '@private-connect/e2e';
import { median, progress, rotate, type BenchConfig } from './config.js';
import { cpuSeconds, rssBytes } from './procstat.js';
import { sshMissing, startSshForward, type SshForward } from './ssh-forward.js';

const run = promisify(execFile);

export interface WrkResult {
  requestsPerSec: number;
  p50Us: number;
  p99Us: number;
  requests: number;
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number;
  /** CPU time the hub process used per request during the run (µs; ways through the hub only). */
  hubCpuUs?: number;
}

export type HttpWay = 'direct' | 'reach' | 'hubPort' | 'linkPath' | 'linkSubdomain' | 'ssh';
/** Table order. */
export const HTTP_WAYS: readonly HttpWay[] = ['direct', 'reach', 'hubPort', 'linkPath', 'linkSubdomain', 'ssh'];

/** The domain the bench's hub serves subdomain links under (PUBLIC_BASE_DOMAIN); never resolved, wrk sends Host. */
export const LINK_DOMAIN = 'links.test';

export const HTTP_WAY_LABELS: Record<HttpWay, string> = {
  direct: 'direct (loopback)',
  reach: 'connect reach → hub → agent',
  hubPort: 'hub TCP port → agent',
  linkPath: 'public link, path mode /l/<token>/',
  linkSubdomain: `public link, subdomain <token>.${LINK_DOMAIN}`,
  ssh: 'ssh -R (OpenSSH)',
};

export interface HttpWayResult {
  /** Why the way did not run (ssh is not installed), or undefined. */
  skipped?: string;
  /** A failure to open the way or a wrk run that threw; the bench fails on any. */
  errors: string[];
  runs: WrkResult[];
  /** Medians over the healthy runs (answers, under 1% failed). */
  requestsPerSec: number;
  p50Us: number;
  p99Us: number;
  /** Median hub CPU per request (µs), for the ways through the hub: what the hub's part of a request costs. */
  hubCpuUs?: number;
}

export interface HttpResults {
  connections: number;
  threads: number;
  seconds: number;
  rounds: number;
  bodyBytes: number;
  ways: Record<HttpWay, HttpWayResult>;
  hubRss: { before: number; after: number };
}

/** Whether wrk is installed (the bench says so and skips this part when it is not). */
export async function haveWrk(): Promise<boolean> {
  try {
    await run('wrk', ['--version']);
    return true;
  } catch (err) {
    // wrk --version prints its banner and exits 1.
    return (err as { code?: unknown }).code === 1;
  }
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1000, s: 1_000_000, m: 60_000_000 };

function durationUs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_US[m[2]!]! : NaN;
}

/** Reads wrk's --latency report. */
export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!rps || !p50 || !p99 || !total) throw new Error(`cannot read wrk output:\n${out}`);
  const socketErrors = socket ? socket.slice(1).reduce((a, n) => a + Number(n), 0) : 0;
  return {
    requestsPerSec: Number(rps[1]),
    p50Us: durationUs(p50[1]!),
    p99Us: durationUs(p99[1]!),
    requests: Number(total[1]),
    errors: socketErrors + (non2xx ? Number(non2xx[1]) : 0),
  };
}

/** One wrk run with --latency against `url`; `headers` as `Name: value` (a Host here replaces the URL's). */
export async function wrk(url: string, threads: number, connections: number, seconds: number, headers: string[] = []): Promise<WrkResult> {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const { stdout } = await run('wrk', args, { maxBuffer: 1 << 20 });
  return parseWrk(stdout);
}

/** A wrk run counts when it got answers and under 1% of them failed; the others only show up as problems. */
export const healthyWrk = (r: WrkResult): boolean => r.requests > 0 && r.errors <= r.requests * 0.01;

/** A keep-alive HTTP server answering every request with `body`. */
export function helloServer(body: Buffer): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

/** Creates a public link for `service` with the workspace's API key; its path-mode URL and subdomain-mode Host. */
async function createLink(hubUrl: string, apiKey: string, service: string): Promise<{ url: string; host: string }> {
  const res = await fetch(`${hubUrl}/v1/links`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ service, expiresIn: '1d' }),
  });
  const body = (await res.json()) as { url?: string; subdomainUrl?: string | null };
  if (res.status !== 201 || !body.url) throw new Error(`creating the public link failed: ${res.status} ${JSON.stringify(body)}`);
  if (!body.subdomainUrl) throw new Error(`the hub gave the link no subdomain URL (PUBLIC_BASE_DOMAIN=${LINK_DOMAIN} was set): ${JSON.stringify(body)}`);
  return { url: body.url.endsWith('/') ? body.url : `${body.url}/`, host: new URL(body.subdomainUrl).host };
}

/** Where wrk is pointed for one way. */
interface Target {
  url: string;
  headers: string[];
}

const message = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

function summarize(result: HttpWayResult): void {
  const healthy = result.runs.filter(healthyWrk);
  result.requestsPerSec = median(healthy.map((r) => r.requestsPerSec));
  result.p50Us = median(healthy.map((r) => r.p50Us));
  result.p99Us = median(healthy.map((r) => r.p99Us));
  const cpu = healthy.flatMap((r) => (r.hubCpuUs === undefined ? [] : [r.hubCpuUs]));
  if (cpu.length > 0) result.hubCpuUs = median(cpu);
}

/** The ways whose requests cross the hub process (its CPU per request is measured for them). */
const THROUGH_HUB: ReadonlySet<HttpWay> = new Set(['reach', 'hubPort', 'linkPath', 'linkSubdomain']);

/** `ssh -R` for the server, or why not: a tool is missing (skipped) or it failed to start (an error). */
async function openSsh(port: number, result: HttpWayResult): Promise<SshForward | undefined> {
  const missing = sshMissing();
  if (missing) {
    result.skipped = missing;
    progress(`http: ssh -R SKIPPED: ${missing}`);
    return undefined;
  }
  try {
    return await startSshForward([port]);
  } catch (err) {
    result.errors.push(`opening: ${message(err)}`);
    progress(`http: ssh -R failed to open: ${message(err)}`);
    return undefined;
  }
}

export async function httpBench(config: BenchConfig): Promise<HttpResults> {
  const threads = 2;
  const { httpConnections: connections, httpSeconds: seconds, httpRounds: rounds } = config;
  const bodyBytes = 64;
  const { server, port } = await helloServer(Buffer.alloc(bodyBytes, 'x'));
  const first = 23500 + Math.floor(Math.random() * 400);
  progress('http: a hub process, `connect expose --http --hub-port` for a small HTTP server, `connect reach` for it, a public link, `ssh -R`');
  const hub = await startHubProcess({ env: { HUB_TCP_PORT_RANGE: `${first}-${first + 50}`, PUBLIC_BASE_DOMAIN: LINK_DOMAIN } });
  const exposing = await enrolAgent(hub, { label: 'bench-http-expose' });
  const reaching = await enrolAgent(hub, { label: 'bench-http-reach' });
  const results = Object.fromEntries(
    HTTP_WAYS.map((w) => [w, { errors: [], runs: [], requestsPerSec: NaN, p50Us: NaN, p99Us: NaN }]),
  ) as unknown as Record<HttpWay, HttpWayResult>;
  const procs: Proc[] = [];
  let ssh: SshForward | undefined;
  try {
    const expose = await exposing.expose(`127.0.0.1:${port}`, 'bench-http', ['--http', '--hub-port']);
    procs.push(expose);
    const exposed = expose.lines.find((l) => typeof l === 'object' && l.type === 'exposed') as { service: { hubPort?: number } } | undefined;
    const hubPort = exposed?.service.hubPort;
    if (!hubPort) throw new Error('the service got no hub port');
    const reach = await reaching.reach('bench-http', ['--port', '0']);
    procs.push(reach.proc);
    const link = await createLink(hub.url, hub.apiKey, 'bench-http');
    ssh = await openSsh(port, results.ssh);
    const plain = (p: number): Target => ({ url: `http://127.0.0.1:${p}/`, headers: [] });
    const targets: Partial<Record<HttpWay, Target>> = {
      direct: plain(port),
      reach: plain(reach.port),
      hubPort: plain(hubPort),
      linkPath: { url: link.url, headers: [] },
      linkSubdomain: { url: `${hub.url}/`, headers: [`Host: ${link.host}`] },
      ...(ssh ? { ssh: plain(ssh.ports[0]!) } : {}),
    };
    const open = HTTP_WAYS.filter((w) => targets[w]);
    const hubPid = hub.proc.child.pid ?? -1;
    const before = rssBytes(hubPid) ?? NaN;
    progress(`http: wrk -t${threads} -c${connections} -d${seconds}s, ${rounds} round(s) over ${open.join(', ')} in rotating order`);
    for (let r = -1; r < rounds; r++) {
      for (const way of rotate(open, Math.max(r, 0))) {
        const { url, headers } = targets[way]!;
        try {
          // Round -1 warms up: JIT, keep-alive pools, the link cache.
          if (r < 0) await wrk(url, 1, 4, 1, headers);
          else {
            const cpuBefore = cpuSeconds(hubPid);
            const result = await wrk(url, threads, connections, seconds, headers);
            const cpuAfter = cpuSeconds(hubPid);
            if (THROUGH_HUB.has(way) && cpuBefore !== undefined && cpuAfter !== undefined && result.requests > 0) result.hubCpuUs = ((cpuAfter - cpuBefore) * 1e6) / result.requests;
            results[way].runs.push(result);
          }
        } catch (err) {
          results[way].errors.push(`${r < 0 ? 'warm-up' : `round ${r + 1}`}: ${message(err)}`);
        }
      }
    }
    const after = rssBytes(hubPid) ?? NaN;
    for (const way of open) summarize(results[way]);
    return { connections, threads, seconds, rounds, bodyBytes, ways: results, hubRss: { before, after } };
  } finally {
    await ssh?.stop();
    for (const p of procs.reverse()) await p.stop();
    await hub.stop();
    server.closeAllConnections();
    server.close();
    await removeDirs(hub.dataDir, exposing.home, reaching.home);
  }
}
