/**
 * The agent WebSocket endpoint (`/v1/agent`): authenticates the upgrade by agent token before any WebSocket
 * exists, then hands the socket to an AgentConnection. Also runs the keepalive sweep over all connections.
 */

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import {
  ConnectError,
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_FRAME_PAYLOAD,
  encodeFrame,
} from '@private-connect/protocol';
import { authenticate, bearer } from '../store/credentials.js';
import { forbidden, isAllowed } from '../auth/guard.js';
import type { FailureLimiter } from '../auth/failure-limiter.js';
import { AgentConnection, type RelayContext } from './agent-connection.js';
import { goAwayFrame } from './drain.js';
import { countAuthFailure } from './relay-stats.js';
import { createTokenSockets } from './token-sockets.js';

export const AGENT_PATH = '/v1/agent';

export interface AgentEndpoint {
  /** Tells every agent to reconnect (GOAWAY), then closes all sockets. */
  close(): Promise<void>;
}

export interface AgentEndpointOptions {
  pingIntervalMs: number;
  idleTimeoutMs: number;
  /** Client address of a request (honours a trusted proxy when configured). */
  clientIp(req: IncomingMessage): string | undefined;
  /** Refused upgrades per client IP; past the limit, upgrades from that IP get 429 before authentication. */
  upgradeFailures?: FailureLimiter;
  /** False while the hub shuts down: new agent connections are refused with 503 SHUTTING_DOWN. */
  accepting?: () => boolean;
  /** Most WebSockets one agent token may hold open (HUB_MAX_SOCKETS_PER_AGENT_TOKEN); unlimited when omitted. */
  maxSocketsPerToken?: number;
  /** Offered every upgrade first; returns true when it took the request (public-link WebSockets). */
  otherUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
}

/** Attaches the agent endpoint to the hub's HTTP server. */
export function attachAgentEndpoint(server: Server, ctx: RelayContext, options: AgentEndpointOptions): AgentEndpoint {
  const wss = new WebSocketServer({
    noServer: true,
    // Slightly above the largest legal frame so that an oversized frame gets our FRAME_TOO_LARGE code;
    // anything far beyond is cut by ws itself (close 1009) without buffering it.
    maxPayload: FRAME_HEADER_SIZE + MAX_FRAME_PAYLOAD + 64 * 1024,
    perMessageDeflate: false,
    skipUTF8Validation: true,
  });
  /** Sockets between upgrade and handshake end are tracked by ws (wss.clients) until they close. */
  const tokenSockets = createTokenSockets({ max: options.maxSocketsPerToken ?? Infinity, silentAfterMs: 2 * options.pingIntervalMs });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    if (options.otherUpgrade?.(req, socket, head)) return;
    const ip = options.clientIp(req) ?? 'unknown';
    // Logged once, here, with the request: the logger redacts its credentials and masks its address.
    const refuse = (err: ConnectError, headers?: Record<string, string>) => {
      ctx.log.info({ req: { method: req.method, url: req.url, ip, headers: req.headers }, code: err.code, reason: err.message }, 'agent connection refused');
      refuseUpgrade(socket, err, headers);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path !== AGENT_PATH) {
      return refuse(new ConnectError('NOT_FOUND', `no WebSocket endpoint at ${path}; agents connect to ${AGENT_PATH}`));
    }
    if (options.accepting && !options.accepting()) {
      return refuse(new ConnectError('SHUTTING_DOWN', 'the hub is shutting down; reconnect'), { 'Retry-After': '1' });
    }
    const retryAfter = options.upgradeFailures?.retryAfter(ip) ?? 0;
    if (retryAfter > 0) {
      const err = new ConnectError('RATE_LIMITED', `too many refused connection attempts from this address; try again in ${retryAfter} s`);
      countAuthFailure(ctx.stats, err);
      return refuse(err, { 'Retry-After': String(retryAfter) });
    }
    authenticate(ctx.db, bearer(req.headers.authorization), ctx.clock.now()).then(
      (principal) => {
        if (!isAllowed(principal, 'agents.connect') || principal.kind !== 'agent') {
          const err = forbidden(principal, 'agents.connect');
          countAuthFailure(ctx.stats, err);
          options.upgradeFailures?.fail(ip);
          return refuse(err);
        }
        if (socket.destroyed) return;
        if (!tokenSockets.makeRoom(principal.tokenId)) return refuse(tokenSockets.refusal());
        // ws completes the upgrade synchronously (no verifyClient), so no other upgrade runs between the check above
        // and the count below.
        wss.handleUpgrade(req, socket, head, (ws) => {
          const conn = new AgentConnection(ws, ctx, principal, { ip, userAgent: req.headers['user-agent'] });
          tokenSockets.add(principal.tokenId, conn, (listener) => ws.once('close', listener));
        });
      },
      (err: unknown) => {
        countAuthFailure(ctx.stats, err);
        options.upgradeFailures?.fail(ip);
        if (!(err instanceof ConnectError)) ctx.log.error({ err }, 'agent authentication failed');
        refuse(err instanceof ConnectError ? err : new ConnectError('INTERNAL'));
      },
    );
  };
  server.on('upgrade', onUpgrade);

  const sweep = setInterval(() => {
    const now = Date.now();
    const hubNow = ctx.clock.now();
    for (const conn of ctx.connections) {
      if (conn.principal.validUntil <= hubNow) {
        // The token expired, or its rotation grace period ended, while the socket was open.
        conn.close('TOKEN_EXPIRED', 'the agent token of this connection is no longer valid; restart the agent (after `connect up --rotate-token`) or run `connect up` again');
      } else if (now - conn.lastReceivedAt > options.idleTimeoutMs) {
        conn.log.info('no traffic from the agent within the idle timeout; closing');
        conn.terminate();
      } else {
        conn.send(encodeFrame(FrameType.PING, 0, pingPayload(now)));
      }
    }
  }, options.pingIntervalMs);
  sweep.unref();

  return {
    async close() {
      clearInterval(sweep);
      server.off('upgrade', onUpgrade);
      for (const conn of ctx.connections) {
        conn.send(goAwayFrame());
        conn.close('SHUTTING_DOWN', 'the hub is shutting down', 1001);
      }
      await new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      });
    },
  };
}

function pingPayload(now: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeDoubleBE(now, 0);
  return buf;
}

/** Answers an upgrade request with an HTTP error and the JSON error body, then closes the socket. */
function refuseUpgrade(socket: Duplex, err: ConnectError, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: err.toJSON() });
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}\r\n` +
      Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('') +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };
