/**
 * Public links served by the hub as an HTTP reverse proxy through the tunnel (OWNED BY THE PUBLIC-LINKS WORK).
 * `matches` decides, before Fastify routing, whether a request is for a link (`/l/<token>/...`, or a Host of
 * `<token>.<PUBLIC_BASE_DOMAIN>`); `handle` and `upgrade` serve it.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SharingContext } from './context.js';

export interface LinkProxy {
  matches(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export function createLinkProxy(_sharing: SharingContext): LinkProxy {
  return {
    matches: () => false,
    handle: (_req, res) => res.writeHead(404).end(),
    upgrade: (_req, socket) => socket.destroy(),
  };
}
