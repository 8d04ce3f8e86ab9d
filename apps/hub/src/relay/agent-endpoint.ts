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
  encodeJsonFrame,
} from '@private-connect/protocol';
import { authenticate, bearer } from '../store/credentials.js';
import { AgentConnection } from './agent-connection.js';
import type { RelayContext } from './relay-context.js';

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

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '/').split('?')[0];
    if (path !== AGENT_PATH) {
      return refuseUpgrade(socket, new ConnectError('NOT_FOUND', `no WebSocket endpoint at ${path}; agents connect to ${AGENT_PATH}`));
    }
    authenticate(ctx.db, bearer(req.headers.authorization), ctx.clock.now()).then(
      (principal) => {
        if (principal.kind !== 'agent') {
          ctx.stats.authFailures++;
          return refuseUpgrade(socket, new ConnectError('FORBIDDEN', 'an API key cannot connect as an agent; run `connect up --api-key ...` to enrol'));
        }
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          new AgentConnection(ws, ctx, principal, { ip: options.clientIp(req), userAgent: req.headers['user-agent'] });
        });
      },
      (err: unknown) => {
        ctx.stats.authFailures++;
        if (!(err instanceof ConnectError)) ctx.log.error({ err }, 'agent authentication failed');
        refuseUpgrade(socket, err instanceof ConnectError ? err : new ConnectError('INTERNAL'));
      },
    );
  };
  server.on('upgrade', onUpgrade);

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const conn of ctx.connections) {
      if (now - conn.lastReceivedAt > options.idleTimeoutMs) {
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
        conn.send(encodeJsonFrame(FrameType.GOAWAY, 0, { code: 'SHUTTING_DOWN', message: 'the hub is shutting down', reconnectMs: 500 }));
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
function refuseUpgrade(socket: Duplex, err: ConnectError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: err.toJSON() });
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error' };
