/**
 * HTTP/1.1 load written in Node, for soak tests of whatever stands between a client and an app (a public link, a
 * reach, a hub TCP port): keep-alive connections making checked requests back to back as wrk does (`startLoad`),
 * and clients that close abruptly at a chosen point of an exchange (`startAbruptClients`). Every answer is checked
 * against its expected status, length and SHA-256, and every request has a deadline, so a stall is counted as a
 * failure instead of hanging the test. Nothing is asserted here: outcomes go to callbacks.
 */

import { createHash } from 'node:crypto';
import http from 'node:http';
import { rawHttpClient, type RawHttpClient } from './raw-http.js';
import type { Rng } from './soak-traffic.js';

/** Where requests go: 127.0.0.1:`port`, each path under `prefix`, with `host` as the Host header when set. */
export interface HttpTarget {
  /** The way it reaches the app, for reports (e.g. "link", "reach"). */
  way: string;
  port: number;
  /** Put before every path: `/l/<token>` for a path-mode link, '' otherwise. */
  prefix: string;
  /** Host header (a subdomain-mode link); the default is 127.0.0.1:<port>. */
  host?: string;
}

/** One request and the answer it must get. */
export interface HttpCall {
  /** A short name for reports (the route). */
  name: string;
  method: 'GET' | 'POST';
  /** The app's path (the target's prefix goes before it). */
  path: string;
  body?: Buffer;
  expect: { status: number; length: number; sha256: string };
}

/** A checked request: answered as expected, or why not. */
export type CallOutcome = { ok: true; ms: number } | { ok: false; ms: number; reason: string };

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Compares a whole answer with what `call` expects; undefined when it matches. */
function mismatch(call: HttpCall, status: number, length: number, digest: string): string | undefined {
  if (status !== call.expect.status) return `status ${status}, expected ${call.expect.status}`;
  if (length !== call.expect.length) return `${length} body bytes, expected ${call.expect.length}`;
  if (digest !== call.expect.sha256) return `the body differs from the expected one (${length} bytes)`;
  return undefined;
}

/** Sends `call` with node:http through `agent` and checks the whole answer; gives up after `deadlineMs`. Never rejects. */
export function httpCall(target: HttpTarget, agent: http.Agent, call: HttpCall, deadlineMs: number): Promise<CallOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status = 0;
    let length = 0;
    let settled = false;
    const hash = createHash('sha256');
    const done = (reason: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ms = performance.now() - started;
      resolve(reason === undefined ? { ok: true, ms } : { ok: false, ms, reason });
    };
    const headers: http.OutgoingHttpHeaders = { ...(target.host ? { host: target.host } : {}), ...(call.body ? { 'content-length': call.body.length } : {}) };
    const req = http.request({ host: '127.0.0.1', port: target.port, method: call.method, path: target.prefix + call.path, agent, headers }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => {
        length += chunk.length;
        hash.update(chunk);
      });
      res.on('end', () => done(mismatch(call, status, length, hash.digest('hex'))));
      res.on('error', () => undefined);
      res.on('close', () => done(`the answer was cut short (status ${status}, ${length} body bytes)`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => done(`${err.code ?? err.message} (status ${status || 'none'}, ${length} body bytes)`));
    const timer = setTimeout(() => {
      done(`no whole answer within ${deadlineMs} ms (status ${status || 'none'}, ${length} body bytes)`);
      req.destroy();
    }, deadlineMs);
    req.end(call.body);
  });
}

/** Something that runs until stop(), which resolves once everything it started has finished. */
export interface Running {
  stop(): Promise<void>;
}

/** A flag plus a promise that resolves when it is set, so waits can be cut short. */
function stopSignal(): { stopped: () => boolean; stop: () => void; wait: (ms: number) => Promise<void> } {
  let stopped = false;
  let wake: () => void = () => undefined;
  const signal = new Promise<void>((resolve) => (wake = resolve));
  return {
    stopped: () => stopped,
    stop: () => {
      stopped = true;
      wake();
    },
    wait: (ms) => Promise.race([sleep(ms), signal]),
  };
}

export interface LoadOptions {
  /** Keep-alive connections, each making one request at a time. */
  connections: number;
  /** The next request of a connection. */
  next: () => HttpCall;
  deadlineMs: number;
  /** Wait between two requests of a connection (a client that idles); none by default: back to back, as wrk. */
  pauseMs?: () => number;
  onOutcome: (call: HttpCall, outcome: CallOutcome) => void;
}

/**
 * `connections` keep-alive connections (one node:http Agent of one socket each) making requests back to back until
 * stop(), which waits for the requests in flight (each within its deadline) and then closes the connections.
 */
export function startLoad(target: HttpTarget, options: LoadOptions): Running {
  const signal = stopSignal();
  const connection = async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!signal.stopped()) {
        const call = options.next();
        options.onOutcome(call, await httpCall(target, agent, call, options.deadlineMs));
        const pause = options.pauseMs?.() ?? 0;
        if (pause > 0) await signal.wait(pause);
      }
    } finally {
      agent.destroy();
    }
  };
  const loops = Array.from({ length: options.connections }, connection);
  return {
    async stop() {
      signal.stop();
      await Promise.all(loops);
    },
  };
}

/**
 * How an abrupt client leaves: in the middle of its request head; after its whole request, before the answer; in
 * the middle of a large answer's body; with a TCP reset (RST, not FIN) while its answer is coming; in the middle of
 * a POST body it announced with Content-Length.
 */
export const ABRUPT_KINDS = ['mid-head', 'before-answer', 'mid-body', 'reset', 'cut-post'] as const;
export type AbruptKind = (typeof ABRUPT_KINDS)[number];

/** The app's routes the abrupt clients use. */
export interface AbruptRoutes {
  /** A small, quick answer: also the request a client may make in full before it misbehaves. */
  fast: HttpCall;
  /** An answer that takes a while (the client leaves before it). */
  slow: string;
  /** An answer of at least 1 MiB (the client leaves in its middle). */
  large: string;
  /** A POST route that reads the whole body. */
  post: string;
}

export interface AbruptOptions {
  /** Clients at a time; each loops over `kinds` in turn. */
  clients: number;
  /** Which ways of leaving (default: all of ABRUPT_KINDS). */
  kinds?: readonly AbruptKind[];
  routes: AbruptRoutes;
  rng: Rng;
  deadlineMs: number;
  /** Called once the client's socket is gone. */
  onClose: (kind: AbruptKind) => void;
  /** A full request made first on the same connection (half of the clients), or the part an abrupt client waited for. */
  onOutcome: (call: HttpCall, outcome: CallOutcome) => void;
}

/** Clients that close abruptly, one kind after the other, until stop() (which waits for the ones under way). */
export function startAbruptClients(target: HttpTarget, options: AbruptOptions): Running {
  const signal = stopSignal();
  const kinds = options.kinds ?? ABRUPT_KINDS;
  const client = async (first: number) => {
    for (let i = first; !signal.stopped(); i++) {
      const kind = kinds[i % kinds.length]!;
      await abruptClient(target, kind, options);
      options.onClose(kind);
      await signal.wait(options.rng.int(5, 40));
    }
  };
  const loops = Array.from({ length: options.clients }, (_, i) => client(i));
  return {
    async stop() {
      signal.stop();
      await Promise.all(loops);
    },
  };
}

/** A request head as a client writes it. */
function head(target: HttpTarget, method: string, path: string, extra: string[] = []): string {
  return [`${method} ${target.prefix}${path} HTTP/1.1`, `Host: ${target.host ?? `127.0.0.1:${target.port}`}`, 'User-Agent: http-load', ...extra, '', ''].join('\r\n');
}

/** One client that leaves as `kind` says; resolves once its connection is gone. */
async function abruptClient(target: HttpTarget, kind: AbruptKind, options: AbruptOptions): Promise<void> {
  const { rng, routes, deadlineMs } = options;
  let client: RawHttpClient;
  try {
    client = await rawHttpClient(target.port);
  } catch (err) {
    return options.onOutcome(routes.fast, { ok: false, ms: 0, reason: `could not connect: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
  }
  try {
    // Half of the clients first make a whole request, so that they leave on a connection already used.
    if (rng.chance(0.5)) {
      const outcome = await wholeRequest(client, target, routes.fast, deadlineMs);
      options.onOutcome(routes.fast, outcome);
      if (!outcome.ok) return;
    }
    await misbehave(client, target, kind, options);
  } finally {
    if (kind === 'reset') client.reset();
    else client.close();
    await client.closed(deadlineMs).catch(() => undefined);
  }
}

/** A request of `call` (small ASCII answers only) on a raw connection, its answer read and checked. */
async function wholeRequest(client: RawHttpClient, target: HttpTarget, call: HttpCall, deadlineMs: number): Promise<CallOutcome> {
  const started = performance.now();
  client.write(head(target, call.method, call.path, call.body ? [`Content-Length: ${call.body.length}`] : []));
  if (call.body) client.write(call.body);
  const answer = await client.next(deadlineMs).catch((err: Error) => err);
  const ms = performance.now() - started;
  if (answer instanceof Error) return { ok: false, ms, reason: answer.message.split('\n')[0]! };
  if (!answer) return { ok: false, ms, reason: 'the connection closed before the answer' };
  const body = Buffer.from(answer.body, 'utf8');
  const wrong = mismatch(call, answer.status, body.length, sha256(body));
  return wrong === undefined ? { ok: true, ms } : { ok: false, ms, reason: wrong };
}

/** The part of an abrupt client before it leaves (abruptClient closes or resets the connection after it). */
async function misbehave(client: RawHttpClient, target: HttpTarget, kind: AbruptKind, options: AbruptOptions): Promise<void> {
  const { rng, routes, deadlineMs } = options;
  if (kind === 'mid-head') {
    const whole = head(target, 'GET', routes.fast.path);
    client.write(whole.slice(0, rng.int(1, whole.length - 3)));
    return sleep(rng.int(0, 30));
  }
  if (kind === 'before-answer') {
    client.write(head(target, 'GET', routes.slow));
    return sleep(rng.int(0, 100));
  }
  if (kind === 'cut-post') {
    const length = 256 * 1024;
    client.write(head(target, 'POST', routes.post, [`Content-Length: ${length}`, 'Content-Type: application/octet-stream']));
    client.write(Buffer.alloc(rng.int(0, length - 1), 'p'));
    return sleep(rng.int(0, 50));
  }
  // mid-body, and reset: leave while the answer comes (a reset also before a slow answer comes at all).
  if (kind === 'reset' && rng.chance(0.3)) {
    client.write(head(target, 'GET', routes.slow));
    return sleep(rng.int(0, 150));
  }
  client.write(head(target, 'GET', routes.large));
  const want = rng.int(1, 1024 * 1024);
  const started = performance.now();
  const bodyBytes = (unread: string) => {
    const end = unread.indexOf('\r\n\r\n');
    return end < 0 ? -1 : unread.length - end - 4;
  };
  if (!(await client.until((unread) => bodyBytes(unread) >= want, deadlineMs))) {
    // Waiting for the answer, the client was well-behaved: a stall here is a failure like any other.
    const got = `${Math.max(0, bodyBytes(client.unread))} of the ${want} body bytes (chunk framing included) it waited for`;
    const reason = client.ended ? `a ${kind} client's connection was closed by the server after ${got}` : `a ${kind} client got ${got} in ${deadlineMs} ms`;
    options.onOutcome({ ...routes.fast, name: `${kind} client` }, { ok: false, ms: performance.now() - started, reason });
  }
}
