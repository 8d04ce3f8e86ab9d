/**
 * The web port (WEB_PORT, default 3000): a second HTTP server that hands every request and upgrade to the hub's
 * own server, so it serves EXACTLY the same application as HUB_PORT (API, pages, dashboard, public links, agent
 * WebSocket). The dashboard opened on :3000 and its API then share an origin and the session cookie.
 */

import type { Server, ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { createHubServer } from './tls.js';

export interface WebPort {
  port: number;
  /** The listening server (its certificate is swapped on a TLS reload). */
  server: Server;
  url: string;
  /** Stops listening and cuts idle keep-alive connections; resolves once every connection is gone (see `finish`). */
  close(): Promise<void>;
  /** Cuts the connections still open (call after the app itself closed). */
  finish(): void;
}

/**
 * Listens on `port` (0 = any free port) at `host` and forwards everything to `main`; HTTPS when `tls` is given.
 * `prepare` sees the server before it listens (the public links' fast path installs itself on it).
 */
export async function listenWebPort(
  main: Server,
  port: number,
  host: string,
  timeouts: ServerOptions,
  tls?: SecureContextOptions,
  prepare?: (server: Server) => void,
): Promise<WebPort> {
  const server = createHubServer(tls, undefined, timeouts);
  prepare?.(server);
  // The main server's own listeners (Fastify's router, the link proxy, the agent endpoint) run unchanged.
  server.on('request', (req, res) => main.emit('request', req, res));
  server.on('upgrade', (req, socket, head) => main.emit('upgrade', req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let closed: Promise<void> | undefined;
  return {
    port: bound,
    server,
    url: `${tls ? 'https' : 'http'}://${shown.includes(':') ? `[${shown}]` : shown}:${bound}`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closed;
    },
    finish() {
      server.closeAllConnections();
    },
  };
}
