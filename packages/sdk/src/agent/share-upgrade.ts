/**
 * An Upgrade request through a share, after the share's limits allowed it. It goes to the target with Node's HTTP
 * client, which tells a real switch (`101 Switching Protocols`, event 'upgrade') from any other answer ('response').
 * Only after a 101 do the two connections become a raw pipe. Any other answer is written back as an ordinary HTTP/1.1
 * response (Content-Length or chunked) and the connection goes back to the share filter's HTTP server, so every
 * later request on it is parsed, checked and reported like the others: an app that ignores Upgrade and answers 200
 * must not turn the rest of the connection into bytes nobody checks. An upgrade to h2c is never asked of the target
 * (the request goes without it, as to a server that ignores it): after that 101 the connection would carry any
 * number of HTTP/2 requests past the share's limits.
 */

import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HOP_BY_HOP, connectionTokens, upgradesToOffer, type Target } from '@private-connect/protocol';

/** A message's headers without the hop-by-hop ones. */
export function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: IncomingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(key) && !named.has(key)) out[key] = value;
  return out;
}

/** True when a request declares a body (its bytes would sit where the next request or the new protocol starts). */
export function declaresBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

export interface UpgradeRequest {
  /** The client's Upgrade request, as the filter's HTTP server parsed it. */
  req: IncomingMessage;
  /** The client's connection (the stream through the share). */
  socket: Duplex;
  /** Bytes the client sent after the request's head. */
  head: Buffer;
  target: Target;
  /** The checked target to send (path and query). */
  path: string;
}

export interface UpgradeOutcome {
  /** The target's status for this request (101 or another), for the access report. */
  status(code: number): void;
  /** The answer was not 101 and is written: serve the connection as HTTP again, `head` first. */
  resume(head: Buffer): void;
  /** The target could not be reached before it answered (`reason`: the error's code): refuse the request. */
  fail(reason: string): void;
}

/** Sends an allowed Upgrade request to the target and relays its answer (module comment). */
export function forwardUpgrade(up: UpgradeRequest, outcome: UpgradeOutcome): void {
  const { req, socket } = up;
  const offered = upgradesToOffer(req.headers.upgrade);
  const headers: OutgoingHttpHeaders = { ...endToEnd(req.headers), ...(offered.length > 0 ? { connection: 'Upgrade', upgrade: offered.join(', ') } : {}) };
  // agent: false: a connection of its own, which becomes the raw pipe after a 101 and is dropped otherwise.
  const upstream = httpRequest({ host: up.target.host, port: up.target.port, method: req.method, path: up.path, headers, agent: false });
  /** waiting: no answer yet; answered: relaying one; done: nothing more to do with `upstream`. */
  let state: 'waiting' | 'answered' | 'done' = 'waiting';
  // Node's HTTP server removed its own listeners from the socket when it handed it to us; these stand in for them
  // until the socket is a pipe or goes back to the server.
  const onGone = () => upstream.destroy();
  const onError = () => socket.destroy();
  socket.once('close', onGone);
  socket.on('error', onError);
  const release = () => {
    socket.off('close', onGone);
    socket.off('error', onError);
  };

  upstream.on('upgrade', (answer: IncomingMessage, piped: Socket, pipedHead: Buffer) => {
    state = 'done';
    if (offered.length === 0) {
      // A switch nobody asked for (only h2c was offered, and not passed on): end both rather than relay it.
      outcome.status(502);
      piped.destroy();
      return void socket.destroy();
    }
    outcome.status(answer.statusCode ?? 101);
    socket.write(rawHead(answer, answer.rawHeaders));
    if (pipedHead.length > 0) socket.write(pipedHead);
    if (up.head.length > 0) piped.write(up.head);
    piped.on('error', () => socket.destroy());
    piped.once('close', () => socket.destroy());
    socket.once('close', () => piped.destroy());
    socket.pipe(piped);
    piped.pipe(socket);
  });
  upstream.on('response', (answer: IncomingMessage) => {
    state = 'answered';
    outcome.status(answer.statusCode ?? 502);
    const keepOpen = req.httpVersion === '1.1' && !connectionTokens(req.headers.connection).has('close');
    writeAnswer(socket, answer, req.method === 'HEAD', keepOpen, () => {
      state = 'done';
      upstream.destroy();
      release();
      if (keepOpen) outcome.resume(up.head);
      else socket.end();
    });
  });
  upstream.on('error', (err: Error & { code?: string }) => {
    if (state === 'done') return;
    if (state === 'answered') return void socket.destroy();
    state = 'done';
    release();
    outcome.fail(err.code ?? err.message);
  });
  upstream.end();
}

/** A response's status line and the given raw header pairs. */
function rawHead(answer: IncomingMessage, rawHeaders: readonly string[]): string {
  const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`];
  for (let i = 0; i < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/**
 * Writes a non-101 answer to the client as its own HTTP/1.1 message: the target's end-to-end headers, its
 * Content-Length when it gave one, chunked otherwise (so the connection can carry the next request), or the body
 * up to the end of the connection when the client asked to close. `done` runs once the whole answer is written.
 */
function writeAnswer(socket: Duplex, answer: IncomingMessage, head: boolean, keepOpen: boolean, done: () => void): void {
  const status = answer.statusCode ?? 502;
  const bodiless = head || status === 204 || status === 304 || status < 200;
  const named = connectionTokens(answer.headers.connection);
  const length = answer.headers['transfer-encoding'] === undefined ? answer.headers['content-length'] : undefined;
  const pairs: string[] = [];
  for (let i = 0; i < answer.rawHeaders.length; i += 2) {
    const name = answer.rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name) || (name === 'content-length' && length === undefined)) continue;
    pairs.push(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!);
  }
  const chunked = !bodiless && keepOpen && length === undefined;
  if (chunked) pairs.push('Transfer-Encoding', 'chunked');
  if (!keepOpen) pairs.push('Connection', 'close');
  socket.write(rawHead(answer, pairs));
  answer.on('data', (chunk: Buffer) => {
    // An empty chunk would read as the chunked body's end.
    if (bodiless || chunk.length === 0) return;
    const framed = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
    if (!socket.write(framed)) {
      answer.pause();
      socket.once('drain', () => answer.resume());
    }
  });
  // A body cut short cannot be framed honestly any more: end the client's connection too.
  answer.once('aborted', () => socket.destroy());
  answer.once('error', () => socket.destroy());
  answer.once('end', () => {
    if (chunked) socket.write('0\r\n\r\n');
    done();
  });
}
