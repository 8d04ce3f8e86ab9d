/**
 * The exposing agent's side of a share over an HTTP service. The hub relays bytes it does not read, so the agent
 * that exposes the service applies the share's limits to every request: requests per minute over the whole share,
 * allowed methods, allowed path prefixes (decided on the percent-decoded path with `.` segments removed; a path the
 * service could read as another one is refused, see `canonicalTarget`). A refusal is a small JSON body
 * `{error: {code, message}}`: 429 with Retry-After, 405, 403, 400 AMBIGUOUS_PATH. Allowed requests are proxied to the
 * local target with both bodies streaming. An Upgrade request becomes a raw pipe only once the target answered 101
 * (share-upgrade.ts); otherwise the connection stays HTTP and every later request on it is checked too. Every
 * request, allowed or not, is reported to the hub (control op `access`) for the owner's audit log.
 *
 * Streams come in through duplexPair and are handed to one HTTP server per agent that never listens.
 */

import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ConnectError, MAX_ACCESS_REPORT_COUNT, RateBuckets, checkHttpRequest, type AccessReport, type SharePolicy, type Target } from '@private-connect/protocol';
import { declaresBody, endToEnd, forwardUpgrade } from './share-upgrade.js';

/** Socket events whose listeners Node's HTTP server does not remove when it gives a socket to an 'upgrade' handler. */
const SERVER_LEFTOVERS = ['pause', 'resume'];

/** Longest path sent in an access report (the hub takes up to 2048 characters). */
const MAX_REPORTED_PATH = 1024;

/** One stream through a share, as the OPEN notice described it. */
export interface SharedStream {
  policy: SharePolicy;
  /** The exposed service's name. */
  service: string;
  target: Target;
  /** Address of the reaching agent (from the hub), for the report. */
  ip?: string;
}

export interface ShareFilter {
  /** Serves HTTP on `socket` (the agent's end of the stream) under the share's limits. */
  serve(socket: Duplex, stream: SharedStream): void;
  /** Drops idle connections to local targets. */
  close(): void;
}

type Verdict = { ok: true; target: string; path: string } | { ok: false; error: ConnectError; path: string; retryAfter?: number };

/** `report` gets one entry per request; `now` is the clock of the rate buckets. */
export function createShareFilter(report: (access: AccessReport) => void, now: () => number = Date.now): ShareFilter {
  /** What each served socket is for; entries go with their socket (WeakMap). */
  const streams = new WeakMap<object, SharedStream>();
  const rates = new RateBuckets();
  const upstreamAgent = new HttpAgent({ keepAlive: true, maxFreeSockets: 16 });
  let server: Server | undefined;
  /** Per connection: responses not finished yet, and what waits for them; entries go with their socket (WeakMap). */
  const open = new WeakMap<object, { count: number; waiting: Array<() => void> }>();

  /**
   * Per connection: the 'pause'/'resume' listeners Node's HTTP server added when it last took the socket. It leaves
   * them behind when it hands the socket to an 'upgrade' handler; they go before it takes the socket again, so a
   * client that asks for Upgrade over and over does not pile them up. Entries go with their socket (WeakMap).
   */
  const leftBehind = new WeakMap<object, Array<[string, Array<(...args: unknown[]) => void>]>>();

  /** Hands `socket` to the HTTP server (again, after an Upgrade that did not switch protocols). */
  const attach = (socket: Duplex): void => {
    for (const [event, listeners] of leftBehind.get(socket) ?? []) for (const listener of listeners) socket.off(event, listener);
    const before = new Map(SERVER_LEFTOVERS.map((event) => [event, new Set(socket.listeners(event))]));
    server!.emit('connection', socket);
    leftBehind.set(
      socket,
      SERVER_LEFTOVERS.map((event) => [event, socket.listeners(event).filter((l) => !before.get(event)!.has(l)) as Array<(...args: unknown[]) => void>]),
    );
  };

  /** Counts a response that has started on `socket`; the returned function marks it finished (once). */
  const unanswered = (socket: object): (() => void) => {
    let entry = open.get(socket);
    if (!entry) open.set(socket, (entry = { count: 0, waiting: [] }));
    const counted = entry;
    counted.count++;
    let finished = false;
    return () => {
      if (finished) return;
      finished = true;
      if (--counted.count === 0) for (const run of counted.waiting.splice(0)) run();
    };
  };

  /** Runs `fn` once every response started on `socket` has finished (at once when none has). */
  const whenAnswered = (socket: object, fn: () => void): void => {
    const entry = open.get(socket);
    if (!entry || entry.count === 0) return fn();
    entry.waiting.push(fn);
  };

  const check = (stream: SharedStream, method: string, url: string): Verdict => {
    const rules = checkHttpRequest(stream.policy, method, url);
    const path = reportedPath(rules.path, url);
    const rate = stream.policy.ratePerMin;
    if (rate !== undefined) {
      const wait = rates.take(stream.policy.id, rate, now());
      if (wait > 0) return { ok: false, error: new ConnectError('RATE_LIMITED', `this share allows ${rate} requests a minute; try again in ${wait} s`), path, retryAfter: wait };
    }
    return rules.ok ? { ok: true, target: rules.target, path } : { ok: false, error: rules.error, path };
  };

  const reportOnce = (stream: SharedStream, method: string, path: string) => {
    let sent = false;
    return (status: number) => {
      if (sent) return;
      sent = true;
      report({ shareId: stream.policy.id, service: stream.service, method, path, status, ...(stream.ip ? { ip: stream.ip } : {}) });
    };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const stream = streams.get(req.socket);
    if (!stream) return void res.destroy();
    const method = req.method ?? 'GET';
    const verdict = check(stream, method, req.url ?? '');
    const done = reportOnce(stream, method, verdict.path);
    const answered = unanswered(req.socket);
    // 499: the client went away before an answer (as nginx logs it).
    res.once('close', () => {
      done(res.headersSent ? res.statusCode : 499);
      answered();
    });
    if (!verdict.ok) return refuse(res, verdict.error, verdict.retryAfter, verdict.error.code === 'METHOD_NOT_ALLOWED' ? stream.policy.methods : undefined);
    const upstream = httpRequest({ host: stream.target.host, port: stream.target.port, method, path: verdict.target, headers: endToEnd(req.headers), agent: upstreamAgent });
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
      answer.pipe(res);
    });
    upstream.on('error', (err: Error & { code?: string }) => {
      if (res.headersSent) return void res.destroy();
      refuse(res, new ConnectError('TARGET_UNREACHABLE', `the agent exposing "${stream.service}" could not reach its target: ${err.code ?? err.message}`));
    });
    // The client went away (or the share was revoked): stop the request to the target too.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const stream = streams.get(socket);
    if (!stream) return void socket.destroy();
    const method = req.method ?? 'GET';
    const verdict = check(stream, method, req.url ?? '');
    const done = reportOnce(stream, method, verdict.path);
    // Node's server stopped watching the socket for errors when it handed it over; closing it is all that is left.
    const quiet = () => socket.destroy();
    socket.on('error', quiet);
    // Requests pipelined before this one are answered first: nothing is written on the socket until they are.
    whenAnswered(socket, () => {
      socket.off('error', quiet);
      if (socket.destroyed) return done(499);
      if (!verdict.ok || declaresBody(req)) {
        const error = verdict.ok ? new ConnectError('BAD_REQUEST', 'an Upgrade request with a body is not supported through a share') : verdict.error;
        done(error.status);
        socket.on('error', quiet);
        return void socket.end(rawRefusal(error, verdict.ok ? undefined : verdict.retryAfter));
      }
      forwardUpgrade(
        { req, socket, head, target: stream.target, path: verdict.target },
        {
          status: done,
          resume(rest) {
            // The target did not switch protocols: the connection carries HTTP on, and the server checks what comes next.
            if (rest.length > 0) socket.unshift(rest);
            attach(socket);
          },
          fail(reason) {
            const error = new ConnectError('TARGET_UNREACHABLE', `the agent exposing "${stream.service}" could not reach its target: ${reason}`);
            done(error.status);
            socket.on('error', quiet);
            socket.end(rawRefusal(error));
          },
        },
      );
    });
  };

  return {
    serve(socket, stream) {
      if (!server) {
        server = createServer();
        server.on('request', onRequest);
        server.on('upgrade', onUpgrade);
      }
      streams.set(socket, stream);
      attach(socket);
    },
    close() {
      upstreamAgent.destroy();
    },
  };
}

/**
 * The path an access report names: the decoded, normalised path the limits were checked on when the target was
 * readable, else the raw path as sent; never the query (it may hold secrets); cut to MAX_REPORTED_PATH characters
 * without splitting a surrogate pair (a lone one is not valid in PostgreSQL's jsonb).
 */
function reportedPath(decoded: string | undefined, raw: string): string {
  const path = decoded ?? raw.split('?')[0]!;
  if (path.length <= MAX_REPORTED_PATH) return path;
  const cut = path.slice(0, MAX_REPORTED_PATH);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

function errorBody(error: ConnectError): string {
  return JSON.stringify({ error: error.toJSON() });
}

function refuse(res: ServerResponse, error: ConnectError, retryAfter?: number, allow?: readonly string[]): void {
  const body = errorBody(error);
  res.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {}),
    ...(allow ? { allow: allow.join(', ') } : {}),
  });
  res.end(body);
}

/** A refusal written on a raw socket (an upgrade request has no ServerResponse). */
function rawRefusal(error: ConnectError, retryAfter?: number): string {
  const body = errorBody(error);
  const head = [`HTTP/1.1 ${error.status} ${error.code}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close'];
  if (retryAfter !== undefined) head.push(`retry-after: ${retryAfter}`);
  return head.join('\r\n') + '\r\n\r\n' + body;
}

/**
 * Sends access reports to the hub with at most `maxInFlight` waiting for a reply (the hub closes a connection
 * with too many pending control requests); beyond `maxQueued` waiting reports, new ones are dropped and counted.
 */
export function createAccessReporter(send: (access: AccessReport) => Promise<unknown>, options: { maxInFlight?: number; maxQueued?: number } = {}) {
  const maxInFlight = options.maxInFlight ?? 8;
  const maxQueued = options.maxQueued ?? 10_000;
  /**
   * Reports not sent yet; taken from the front as replies come back. A report identical to one still queued is
   * merged into it (its count goes up), so a flood of the same request is never dropped, only counted: the queue
   * bound (and the drops) apply to distinct reports.
   */
  const queue: AccessReport[] = [];
  const queued = new Map<string, AccessReport>();
  const keyOf = (a: AccessReport) => JSON.stringify([a.shareId, a.service, a.method, a.path, a.status, a.ip ?? null]);
  let inFlight = 0;
  const state = { dropped: 0, failed: 0 };
  const pump = () => {
    while (inFlight < maxInFlight && queue.length > 0) {
      inFlight++;
      const next = queue.shift()!;
      queued.delete(keyOf(next));
      send(next)
        .catch(() => state.failed++)
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };
  return {
    report(access: AccessReport): void {
      const key = keyOf(access);
      const same = queued.get(key);
      if (same && (same.count ?? 1) < MAX_ACCESS_REPORT_COUNT) {
        same.count = (same.count ?? 1) + 1;
        return;
      }
      if (queue.length >= maxQueued) {
        state.dropped++;
        return;
      }
      const entry = { ...access, count: 1 };
      queue.push(entry);
      queued.set(key, entry);
      pump();
    },
    /** Reports dropped because the queue was full, and reports the hub refused or never answered. */
    get dropped() {
      return state.dropped;
    },
    get failed() {
      return state.failed;
    },
  };
}
