/**
 * An HTTP app for tests of a proxy in front of it (public links): one route per way a response can be framed
 * (Content-Length, chunked, until close, HEAD, 204, 304), echoes of what the app received (body length and SHA-256,
 * headers), a large download, a slow answer and a WebSocket echo. It records every request it parses, so that a
 * test can prove a request never reached it (a smuggled `GET /admin` inside a body), and which requests went away
 * before their answer.
 */

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { closeHttpServer } from './http-backends.js';
import { chunks } from './tcp.js';

/** The body of /app/fast: 64 bytes. */
export const FAST_BODY = 'fast answer from the probe app, sixty-four bytes long, exactly.\n';
/** The pieces /app/chunked and /app/close write, in order. */
export const PIECES = ['first piece; ', 'second piece; ', 'third piece.'];
/** The seed of /app/big/<bytes> (tcp.ts `chunks`). */
export const BIG_SEED = 11;

export interface ProbeApp {
  port: number;
  /** Every request the app parsed, as `METHOD target`, in order. */
  seen: string[];
  /** Requests to /app/slow whose connection closed before the answer was written. */
  abandoned: string[];
  /** Connections the app accepted, and how many of them are open now. */
  connections: { accepted: number; open: number };
  close(): Promise<void>;
}

type Route = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void;

const json = (res: http.ServerResponse, value: unknown) => {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
};

const ROUTES: Record<string, Route> = {
  // Answers at once, without reading a body (Node then reads and drops it, keeping the connection).
  '/app/fast': (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '64' }).end(FAST_BODY),
  '/app/chunked': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }); // no length: chunked
    res.write(PIECES[0]);
    setTimeout(() => res.write(PIECES[1]), 10);
    setTimeout(() => res.end(PIECES[2]), 20);
  },
  // Neither Content-Length nor chunked: the body ends when the app closes the connection.
  '/app/close': (_req, res) => {
    res.removeHeader('transfer-encoding');
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    res.write(PIECES[0]);
    setTimeout(() => res.write(PIECES[1]), 10);
    setTimeout(() => res.end(PIECES[2]), 20);
  },
  '/app/204': (_req, res) => void res.writeHead(204, { 'x-probe': 'no content' }).end(),
  '/app/304': (_req, res) => void res.writeHead(304, { etag: '"probe"', 'x-probe': 'not modified' }).end(),
  '/app/echo': (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    req.on('end', () => json(res, { length, sha256: hash.digest('hex') }));
  },
  '/app/headers': (req, res, url) => json(res, { method: req.method, url: url.pathname + url.search, headers: req.headers, rawHeaders: req.rawHeaders }),
};

/** /app/big/<bytes>: that many deterministic bytes (BIG_SEED), with Content-Length, honouring backpressure. */
function big(res: http.ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  const source = chunks(total, BIG_SEED);
  const pump = () => {
    for (let next = source.next(); !next.done; next = source.next()) if (!res.write(next.value)) return void res.once('drain', pump);
    res.end();
  };
  pump();
}

/** /app/slow/<ms>: answers after that long, unless the connection closes first (recorded in `abandoned`). */
function slow(req: http.IncomingMessage, res: http.ServerResponse, ms: number, abandoned: string[]): void {
  const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('slow\n'), ms);
  res.once('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) abandoned.push(req.url ?? '');
  });
}

/** Starts the app on 127.0.0.1 (a free port). */
export async function startProbeApp(): Promise<ProbeApp> {
  const seen: string[] = [];
  const abandoned: string[] = [];
  const connections = { accepted: 0, open: 0 };
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://app');
    const route = ROUTES[url.pathname];
    if (route) return route(req, res, url);
    const big_ = /^\/app\/big\/(\d+)$/.exec(url.pathname);
    if (big_) return big(res, Number(big_[1]));
    const slow_ = /^\/app\/slow\/(\d+)$/.exec(url.pathname);
    if (slow_) return slow(req, res, Number(slow_[1]), abandoned);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such page in the probe app\n');
  });
  server.on('connection', (socket) => {
    connections.accepted++;
    connections.open++;
    socket.once('close', () => connections.open--);
  });
  // Upgrade requests are parsed too: recorded like any other.
  server.on('upgrade', (req) => seen.push(`${req.method} ${req.url}`));
  const wss = new WebSocketServer({ server, path: '/app/ws' });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    abandoned,
    connections,
    close: () => closeHttpServer(server, wss),
  };
}
