/**
 * Connections handed back to a server's own HTTP parsing, past the public links' fast path (link-fast.ts puts it in
 * front of each server; link-upgrade.ts hands back a connection whose Upgrade the app refused).
 */

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** Each server's own connection handling, as it was before the fast path was put in front of it (one per server). */
const serverOwn = new WeakMap<Server, (socket: Socket) => void>();

/** Remembers `server`'s own connection handling, which the fast path replaced. */
export function keepServerOwn(server: Server, own: (socket: Socket) => void): void {
  serverOwn.set(server, own);
}

/**
 * Gives `socket` to `server`'s own HTTP parsing (not through the fast path: a connection handed back after an
 * Upgrade the app refused has been read by Node's parser and stays with it).
 */
export function handToServer(server: Server, socket: Socket): void {
  const own = serverOwn.get(server);
  if (own) own(socket);
  else server.emit(socket instanceof TLSSocket ? 'secureConnection' : 'connection', socket);
}
