/**
 * An Upgrade request to a public link stays plain HTTP until the app really switches protocols. Node hands a request
 * that asks for Upgrade to 'upgrade' listeners with the raw socket, taken off the HTTP server: nothing parses what
 * the client sends next. `exchangeOnSocket` gives that request an ordinary ServerResponse on the socket, so the proxy
 * answers it like any other request; only when the app answers `101 Switching Protocols` does `switchProtocols`
 * relay raw bytes both ways. Any other answer ends with the socket handed back to the server that accepted it (the
 * bytes already read first), so every later request on the connection (keep-alive, pipelined) is parsed, checked,
 * rewritten and audited again.
 */

import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import { handToServer } from './server-handoff.js';

/** The response to an Upgrade request on its own socket. */
export interface UpgradeExchange {
  res: ServerResponse;
  /**
   * After a 101: takes the socket from `res` (nothing more is written through it), writes `responseHead` and what
   * the app sent after its 101, and hands the socket to `connect` with what the client sent after its request.
   */
  switchProtocols(responseHead: Buffer, upstreamHead: Buffer, connect: (socket: Socket, early: Buffer) => void): void;
}

/** Node's fields used here (stable since Node 0.x, not in its typings): the response a socket is writing, and its end. */
type ServerSocket = Socket & { _httpMessage?: ServerResponse | null; server?: Server | TlsServer };

/** Resolves once the responses to earlier pipelined requests on the socket have been written. */
async function socketFree(socket: ServerSocket): Promise<void> {
  while (socket._httpMessage && !socket.destroyed) {
    const pending = socket._httpMessage;
    await new Promise<void>((done) => {
      pending.once('finish', () => setImmediate(done));
      pending.once('close', () => setImmediate(done));
    });
  }
}

/** Whether the client keeps the connection after this request (HTTP/1.1 without `Connection: close`). */
function keepsAlive(req: IncomingMessage): boolean {
  const connection = [req.headers.connection ?? ''].flat().join(',').toLowerCase();
  return req.httpVersion === '1.1' && !/(^|,)\s*close\s*(,|$)/.test(connection);
}

/**
 * The response of an Upgrade request, on its socket; undefined when the socket closed first. `head` is what the
 * client sent after the request head: protocol bytes after a 101, the next requests otherwise.
 */
export async function exchangeOnSocket(req: IncomingMessage, duplex: Duplex, head: Buffer): Promise<UpgradeExchange | undefined> {
  const socket = duplex as ServerSocket;
  await socketFree(socket);
  if (socket.destroyed) return undefined;
  const res = new ServerResponse(req);
  res.shouldKeepAlive = keepsAlive(req);
  res.assignSocket(socket);
  // The server turns a socket's 'timeout' into the response's; this socket has left the server.
  const onTimeout = () => {
    if (!res.emit('timeout', socket)) socket.destroy();
  };
  socket.on('timeout', onTimeout);
  let switched = false;
  const release = () => {
    socket.off('timeout', onTimeout);
    res.detachSocket(socket);
  };
  res.once('finish', () => {
    if (switched) return;
    release();
    process.nextTick(() => res.emit('close'));
    const last = !res.shouldKeepAlive || (res as unknown as { _last?: boolean })._last === true;
    if (last || socket.destroyed) return void socket.destroySoon();
    giveBack(socket, head);
  });
  return {
    res,
    switchProtocols(responseHead, upstreamHead, connect) {
      switched = true;
      release();
      socket.write(upstreamHead.length > 0 ? Buffer.concat([responseHead, upstreamHead]) : responseHead);
      connect(socket, head);
    },
  };
}

/** Hands a socket back to the HTTP server that accepted it, with `head` (bytes already read) to be parsed first. */
function giveBack(socket: ServerSocket, head: Buffer): void {
  const server = socket.server as Server | undefined;
  if (!server) return void socket.destroy();
  if (head.length > 0) socket.unshift(head);
  handToServer(server, socket);
  // Until the next request arrives, the server's keep-alive timeout, as after any response; the server clears it
  // only for connections it timed itself, so the first bytes of that request clear it here.
  socket.setTimeout(server.keepAliveTimeout);
  socket.once('data', () => socket.setTimeout(server.timeout));
}
