/**
 * HTTP requests per second and latency with `wrk` (Debian package), against one small HTTP server reached four
 * ways in one run: directly on loopback; through `connect reach` (agent → hub → agent); through a hub TCP port
 * (`connect expose --hub-port`, no agent on the client side); and through a public link (the hub as HTTP
 * reverse proxy, `/l/<token>/`). Each way gets the same wrk settings; the runs alternate in rounds so that load
 * from elsewhere on the machine hits every way alike.
 */

import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { enrolAgent, removeDirs, startHubProcess, type Proc } from '@private-connect/e2e';
import { median, progress, type BenchConfig } from './config.js';
import { rssBytes } from './procstat.js';

const run = promisify(execFile);

export interface WrkResult {
  requestsPerSec: number;
  p50Us: number;
  p99Us: number;
  requests: number;
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number;
}

export interface HttpResults {
  connections: number;
  threads: number;
  seconds: number;
  bodyBytes: number;
  ways: Record<HttpWay, { runs: WrkResult[]; requestsPerSec: number; p50Us: number; p99Us: number }>;
  hubRss: { before: number; after: number };
}

export type HttpWay = 'direct' | 'reach' | 'hubPort' | 'publicLink';
export const HTTP_WAYS: readonly HttpWay[] = ['direct', 'reach', 'hubPort', 'publicLink'];

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

/** One wrk run with --latency against `url`. */
export async function wrk(url: string, threads: number, connections: number, seconds: number): Promise<WrkResult> {
  const { stdout } = await run('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], { maxBuffer: 1 << 20 });
  return parseWrk(stdout);
}

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

/** Creates a public link for `service` with the workspace's API key; returns its path-mode URL. */
async function createLink(hubUrl: string, apiKey: string, service: string): Promise<string> {
  const res = await fetch(`${hubUrl}/v1/links`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ service, expiresIn: '1d' }),
  });
  const body = (await res.json()) as { url?: string; link?: { url?: string } };
  const url = body.url ?? body.link?.url;
  if (res.status !== 201 || !url) throw new Error(`creating the public link failed: ${res.status} ${JSON.stringify(body)}`);
  return url;
}

export async function httpBench(config: BenchConfig): Promise<HttpResults> {
  const threads = 2;
  const connections = config.httpConnections;
  const seconds = config.httpSeconds;
  const rounds = config.httpRounds;
  const bodyBytes = 64;
  const { server, port } = await helloServer(Buffer.alloc(bodyBytes, 'x'));
  const first = 23500 + Math.floor(Math.random() * 400);
  progress('http: a hub process, `connect expose --http --hub-port` for a small HTTP server, `connect reach` for it, and a public link');
  const hub = await startHubProcess({ env: { HUB_TCP_PORT_RANGE: `${first}-${first + 50}` } });
  const exposing = await enrolAgent(hub, { label: 'bench-http-expose' });
  const reaching = await enrolAgent(hub, { label: 'bench-http-reach' });
  const procs: Proc[] = [];
  try {
    const expose = await exposing.expose(`127.0.0.1:${port}`, 'bench-http', ['--http', '--hub-port']);
    procs.push(expose);
    const exposed = expose.lines.find((l) => typeof l === 'object' && l.type === 'exposed') as { service: { hubPort?: number } } | undefined;
    const hubPort = exposed?.service.hubPort;
    if (!hubPort) throw new Error('the service got no hub port');
    const reach = await reaching.reach('bench-http', ['--port', '0']);
    procs.push(reach.proc);
    const linkUrl = await createLink(hub.url, hub.apiKey, 'bench-http');
    const urls: Record<HttpWay, string> = {
      direct: `http://127.0.0.1:${port}/`,
      reach: `http://127.0.0.1:${reach.port}/`,
      hubPort: `http://127.0.0.1:${hubPort}/`,
      publicLink: linkUrl.endsWith('/') ? linkUrl : `${linkUrl}/`,
    };
    const hubPid = hub.proc.child.pid ?? -1;
    const before = rssBytes(hubPid) ?? NaN;
    progress(`http: wrk -t${threads} -c${connections} -d${seconds}s, ${rounds} round(s) over direct, reach, hub port, public link`);
    for (const way of HTTP_WAYS) await wrk(urls[way], 1, 4, 1); // warm-up: JIT, keep-alive pools, the link cache
    const runs: Record<HttpWay, WrkResult[]> = { direct: [], reach: [], hubPort: [], publicLink: [] };
    for (let round = 0; round < rounds; round++) {
      for (const way of HTTP_WAYS) runs[way].push(await wrk(urls[way], threads, connections, seconds));
    }
    const after = rssBytes(hubPid) ?? NaN;
    const summary = (list: WrkResult[]) => ({
      runs: list,
      requestsPerSec: median(list.map((r) => r.requestsPerSec)),
      p50Us: median(list.map((r) => r.p50Us)),
      p99Us: median(list.map((r) => r.p99Us)),
    });
    return {
      connections,
      threads,
      seconds,
      bodyBytes,
      ways: { direct: summary(runs.direct), reach: summary(runs.reach), hubPort: summary(runs.hubPort), publicLink: summary(runs.publicLink) },
      hubRss: { before, after },
    };
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await hub.stop();
    server.close();
    await removeDirs(hub.dataDir, exposing.home, reaching.home);
  }
}
