/**
 * The exposing agent's side of a share over an HTTP service. The hub relays bytes it does not read, so the agent
 * that exposes the service applies the share's limits to every request: requests per minute over the whole share,
 * allowed methods, allowed path prefixes (checked on the normalised path, which is also what is forwarded). A
 * refusal is a small JSON body `{error: {code, message}}`: 429 with Retry-After, 405, 403. Allowed requests are
 * proxied to the local target with both bodies streaming; WebSocket upgrades pass through once checked. Every
 * request, allowed or not, is reported to the hub (control op `access`) for the owner's audit log.
 *
 * Streams come in through duplexPair and are handed to one HTTP server per agent that never listens.
 */

import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectError, RateBuckets, checkHttpRequest, normalizeTarget, type AccessReport, type SharePolicy, type Target } from '@private-connect/protocol';

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

/** Headers that describe one connection, not the message: never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase());
  const out: IncomingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(key) && !named.includes(key)) out[key] = value;
  return out;
}

type Verdict = { ok: true; target: string; path: string } | { ok: false; error: ConnectError; path: string; retryAfter?: number };

/** `report` gets one entry per request; `now` is the clock of the rate buckets. */
export function createShareFilter(report: (access: AccessReport) => void, now: () => number = Date.now): ShareFilter {
  /** What each served socket is for; entries go with their socket (WeakMap). */
  const streams = new WeakMap<object, SharedStream>();
  const rates = new RateBuckets();
  const upstreamAgent = new HttpAgent({ keepAlive: true, maxFreeSockets: 16 });
  let server: Server | undefined;

  const check = (stream: SharedStream, method: string, url: string): Verdict => {
    const rules = checkHttpRequest(stream.policy, method, url);
    // What is reported: the normalised path (what the rules saw), without the query (it may hold secrets).
    const path = (normalizeTarget(url) ?? url).split('?')[0]!.slice(0, 1024);
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
    // 499: the client went away before an answer (as nginx logs it).
    res.once('close', () => done(res.headersSent ? res.statusCode : 499));
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
    const stream = streams.get(req.socket);
    if (!stream) return void socket.destroy();
    const method = req.method ?? 'GET';
    const verdict = check(stream, method, req.url ?? '');
    const done = reportOnce(stream, method, verdict.path);
    if (!verdict.ok) {
      done(verdict.error.status);
      return void socket.end(rawRefusal(verdict.error, verdict.retryAfter));
    }
    const upstream = netConnect({ host: stream.target.host, port: stream.target.port });
    let answered = false;
    const fail = () => {
      done(502);
      socket.destroy();
    };
    upstream.on('error', fail);
    upstream.once('close', () => !answered && fail());
    socket.on('error', () => upstream.destroy());
    socket.once('close', () => upstream.destroy());
    upstream.once('connect', () => {
      const lines = [`${method} ${verdict.target} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      // The target's status line says how the upgrade went (101, or a refusal of its own).
      upstream.once('data', (first: Buffer) => {
        answered = true;
        done(Number(/^HTTP\/\d\.\d (\d{3})/.exec(first.toString('latin1', 0, 16))?.[1] ?? 502));
        socket.write(first);
        upstream.pipe(socket);
      });
      socket.pipe(upstream);
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
      server.emit('connection', socket);
    },
    close() {
      upstreamAgent.destroy();
    },
  };
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
  /** Reports not sent yet; taken from the front as replies come back. */
  const queue: AccessReport[] = [];
  let inFlight = 0;
  const state = { dropped: 0, failed: 0 };
  const pump = () => {
    while (inFlight < maxInFlight && queue.length > 0) {
      inFlight++;
      send(queue.shift()!)
        .catch(() => state.failed++)
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };
  return {
    report(access: AccessReport): void {
      if (queue.length >= maxQueued) {
        state.dropped++;
        return;
      }
      queue.push(access);
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
