/**
 * The app behind the public-link soak (e2e/test/link-soak.test.ts): a small Node HTTP server with a quick answer, a
 * slow one, a large streamed one and a POST echo, which closes idle connections the way nginx does (no Keep-Alive
 * hint, so a client cannot tell when). The requests it serves, with the answer each must get, are `SOAK_CALLS`.
 */

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { closeHttpServer } from './http-backends.js';
import { sha256, type HttpCall } from './http-load.js';
import type { Rng } from './soak-traffic.js';

const MiB = 1024 * 1024;
const FAST_BODY = Buffer.from('0123456789abcdef'.repeat(4));
const SLOW_BODY = Buffer.from('the slow answer\n');
/** How long /slow waits before it answers. */
export const SLOW_MS = 200;
const LARGE_BODY = randomBytes(3 * MiB);
const ECHO_BODIES = [1, 100, 1_500, 16 * 1024, 64 * 1024, 256 * 1024].map((n) => randomBytes(n));

const expectOk = (body: Buffer) => ({ status: 200, length: body.length, sha256: sha256(body) });

/** GET /fast (64 B), GET /slow (after SLOW_MS), GET /large (3 MiB, chunked), POST /echo of a few sizes up to 256 KiB. */
export const SOAK_CALLS = {
  fast: { name: 'GET /fast', method: 'GET', path: '/fast', expect: expectOk(FAST_BODY) } satisfies HttpCall,
  slow: { name: 'GET /slow', method: 'GET', path: '/slow', expect: expectOk(SLOW_BODY) } satisfies HttpCall,
  large: { name: 'GET /large', method: 'GET', path: '/large', expect: expectOk(LARGE_BODY) } satisfies HttpCall,
  echo: ECHO_BODIES.map((body): HttpCall => ({ name: `POST /echo (${body.length} B)`, method: 'POST', path: '/echo', body, expect: expectOk(body) })),
};

/** A request as a busy client mixes them: 70% fast, 10% slow, 5% large, 15% echo. */
export function nextSoakCall(rng: Rng): HttpCall {
  const r = rng.next();
  if (r < 0.7) return SOAK_CALLS.fast;
  if (r < 0.8) return SOAK_CALLS.slow;
  if (r < 0.85) return SOAK_CALLS.large;
  return rng.pick(SOAK_CALLS.echo);
}

/**
 * Closes a connection once it has had no request for `ms`, without the Keep-Alive hint that Node's own
 * keepAliveTimeout sends (nginx's default, and any app behind a load balancer): a client cannot know when its idle
 * connection goes, the case in which links once sent requests into streams the app had closed. Node's HTTP client
 * keeps no idle socket at all when the hint is under its 1 s margin, so a 1 s keepAliveTimeout would not test it.
 */
function closeIdleConnections(server: http.Server, ms: number): void {
  /** One timer per open connection; the socket's 'close' deletes its entry. */
  const timers = new Map<Socket, NodeJS.Timeout>();
  const arm = (socket: Socket) => {
    clearTimeout(timers.get(socket));
    if (!socket.destroyed) timers.set(socket, setTimeout(() => socket.destroy(), ms));
  };
  server.keepAliveTimeout = 0; // no timer of Node's own and no Keep-Alive header
  server.on('connection', (socket: Socket) => {
    arm(socket);
    socket.once('close', () => {
      clearTimeout(timers.get(socket));
      timers.delete(socket);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    clearTimeout(timers.get(req.socket));
    res.once('close', () => arm(req.socket));
  });
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === 'GET' && req.url === '/fast') return void res.writeHead(200, { 'content-type': 'text/plain', 'content-length': FAST_BODY.length }).end(FAST_BODY);
  if (req.method === 'GET' && req.url === '/slow') {
    const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SLOW_BODY.length }).end(SLOW_BODY), SLOW_MS);
    return void res.once('close', () => clearTimeout(timer));
  }
  if (req.method === 'GET' && req.url === '/large') {
    // No Content-Length: chunked, written 64 KiB at a time as the client takes it.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let at = 0;
    const pump = () => {
      while (at < LARGE_BODY.length) {
        const chunk = LARGE_BODY.subarray(at, (at += 64 * 1024));
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  if (req.method === 'POST' && req.url === '/echo') {
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    return void req.on('end', () => {
      const body = Buffer.concat(parts);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
    });
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('no such route\n');
}

/** Starts the app on 127.0.0.1 (a free port); it closes connections idle for `idleCloseMs`. */
export async function startSoakApp(idleCloseMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handle);
  closeIdleConnections(server, idleCloseMs);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => closeHttpServer(server),
  };
}
