/**
 * The fast path of public links: a connection whose first request is a plain request for a link is served without
 * Node's HTTP server objects (IncomingMessage, ServerResponse, and their per-request streams, timers and header
 * maps), which cost more than everything else a link request does. Requests are read with readFastRequestHead
 * (protocol/http1.ts), served by the same `serve` as any other link request (link-proxy.ts: checks, audit, header
 * rewriting), and answered with the app's response as it came, its head rewritten, in one write where it fits.
 *
 * Only a strict subset of HTTP/1.1 is read here (see readFastRequestHead). A request outside it, or one that is not
 * for a link (the API, the dashboard, an agent's WebSocket), hands the connection to Node's HTTP server at that
 * request, with the bytes already read, and the connection stays there: Node's parser then decides what is
 * malformed (400), and serves or refuses the rest as it always did. So the fast path never widens what the hub
 * accepts, and request smuggling has nothing to play two parsers against: a message is read by exactly one.
 *
 * Requests on a connection are served one after another (pipelined bytes wait, bounded, until the answer before
 * them is complete). Timeouts are the server's: headersTimeout for a request head, requestTimeout for a whole
 * request, keepAliveTimeout between requests, and PUBLIC_LINK_IDLE_TIMEOUT with no bytes either way while the app
 * answers. As in Node's server, no timer is made per request: the deadlines are checked by one interval for all
 * connections, and inactivity by the socket's own timer, set once.
 */

import { STATUS_CODES, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { readFastRequestHead, type FastRequestHead } from '@private-connect/protocol';
import type { LinkUpstream } from './link-upstream.js';
import { guarded, type LinkProxy, type LinkRequest, type Reply } from './link-proxy.js';
import { keepServerOwn } from './server-handoff.js';

/** Bytes read ahead of the request being served (pipelining) before the connection stops reading. */
const MAX_READ_AHEAD = 64 * 1024;

const CONNECTION_CLOSE = 'Connection: close\r\n';

export interface FastPath {
  /** The server is closing: idle connections close now, busy ones after their current answer. */
  shutdown(): void;
}

/** The headers `serve` and its helpers read, from a fast request's raw list (repeats joined as Node joins them). */
function headersOf(head: FastRequestHead): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = { host: head.host };
  const raw = head.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    switch (name) {
      case 'user-agent':
      case 'accept':
      case 'content-length':
      case 'connection':
        headers[name] ??= value;
        break;
      case 'x-forwarded-for':
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        break;
      case 'cookie':
        headers.cookie = headers.cookie === undefined ? value : `${headers.cookie}; ${value}`;
        break;
    }
  }
  return headers;
}

/**
 * Puts the fast path in front of `server`'s own connection handling: each new connection is read here first, and
 * given to the server (with what was read) as soon as a request is not for this path.
 */
export function installFastPath(server: Server, proxy: LinkProxy, options: Options): FastPath {
  // An https.Server parses the TLS sockets it made ('secureConnection'); a plain one its TCP sockets.
  const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
  const node = server.listeners(event) as Array<(socket: Socket) => void>;
  server.removeAllListeners(event);
  const live = new Set<FastConnection>();
  let closing = false;

  const toNode = (socket: Socket) => {
    for (const listener of node) listener.call(server, socket);
  };
  keepServerOwn(server, toNode);

  // Deadlines (headersTimeout, requestTimeout) of every connection, checked as often as Node's server checks its own.
  const every = Math.max(10, Math.min(30_000, Math.floor(options.headersTimeoutMs / 2)));
  let checker: NodeJS.Timeout | undefined;

  server.on(event, (socket: Socket) => {
    if (closing) return void socket.destroy();
    const conn = new FastConnection(socket, proxy, options, server, toNode, () => closing);
    live.add(conn);
    checker ??= setInterval(() => {
      const now = Date.now();
      for (const c of live) c.checkDeadline(now);
      if (live.size === 0) {
        clearInterval(checker);
        checker = undefined;
      }
    }, every).unref();
    socket.once('close', () => live.delete(conn));
  });

  return {
    shutdown() {
      closing = true;
      for (const conn of live) conn.closeWhenIdle();
    },
  };
}

type Phase = 'head' | 'request' | 'node';
/** A deadline of the current request: its head (headersTimeout) or its body (requestTimeout). */
type Deadline = 'head' | 'request';
/** Where the current request's body goes: held in the buffer until `serve` says, to the app, or dropped. */
type BodyMode = 'wait' | 'forward' | 'drop';

interface Options {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** One client connection on the fast path. */
class FastConnection {
  private buf: Buffer = Buffer.alloc(0);
  private phase: Phase = 'head';
  private bodyLeft = 0;
  private bodyMode: BodyMode = 'wait';
  private bodyTo: LinkUpstream | undefined;
  /** Part of the answer to the current request was written. */
  private responding = false;
  /** The answer to the current request is complete. */
  private answered = false;
  /** Close the connection after the current answer. */
  private last = false;
  /** When the current request's head or body is due (0: none), checked by the FastPath's interval. */
  private deadline = 0;
  private deadlineKind: Deadline = 'head';
  /** When the current request's first byte arrived (its head and body are due within the server's timeouts). */
  private requestStart = 0;
  /** PUBLIC_LINK_IDLE_TIMEOUT, as `serve` gives it. */
  private idleMs = 0;
  /** The socket's inactivity timer: the server's keepAliveTimeout (or the link's idle timeout, if shorter). */
  private readonly quietMs: number;
  /** While an answer is awaited: how long nothing has moved, counted in quietMs steps, and the bytes seen then. */
  private silentMs = 0;
  private moved = 0;
  private exchangeDone: ((finished: boolean) => void) | undefined;
  private pendingHead: string | undefined;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onEnd = () => this.clientEnded();
  private readonly onTimeout = () => this.quiet();

  constructor(
    private readonly socket: Socket,
    private readonly proxy: LinkProxy,
    private readonly options: Options,
    private readonly server: Server,
    private readonly toNode: (socket: Socket) => void,
    private readonly closing: () => boolean,
  ) {
    socket.setNoDelay(true);
    // A failed write (the client reset) leaves a half-open socket errored but open: let it go, so its 'close' ends
    // the exchange and its stream.
    socket.on('error', () => socket.destroy());
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('timeout', this.onTimeout);
    socket.once('close', () => this.closed());
    this.quietMs = Math.min(server.keepAliveTimeout || options.headersTimeoutMs, options.headersTimeoutMs);
    socket.setTimeout(this.quietMs);
    // Until the first byte, and for the whole first head: the server's headersTimeout.
    this.startRequest();
  }

  /** The FastPath's interval: a head or body that is late. */
  checkDeadline(now: number): void {
    if (this.deadline !== 0 && now > this.deadline) {
      this.deadline = 0;
      this.late(this.deadlineKind);
    }
  }

  closeWhenIdle(): void {
    if (this.phase === 'head' && this.buf.length === 0) this.socket.destroy();
    else this.last = true;
  }

  private read(chunk: Buffer): void {
    if (this.phase === 'node') return;
    if (this.bodyLeft > 0 && this.bodyMode !== 'wait') {
      const n = Math.min(this.bodyLeft, chunk.length);
      this.body(n === chunk.length ? chunk : chunk.subarray(0, n));
      chunk = chunk.subarray(n);
      if (chunk.length === 0 || (this.phase as Phase) === 'node') return;
    }
    if (this.phase === 'head' && this.buf.length === 0 && this.deadline === 0) this.startRequest();
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.phase === 'head') this.next();
    else if (this.buf.length > MAX_READ_AHEAD) this.socket.pause();
  }

  private startRequest(): void {
    this.requestStart = Date.now();
    this.deadline = this.requestStart + this.options.headersTimeoutMs;
    this.deadlineKind = 'head';
  }

  /** Reads the next request from the buffer, if it is complete, and serves it. */
  private next(): void {
    const head = readFastRequestHead(this.buf);
    if (head === 'incomplete') return;
    if (head === 'other') return this.handOver();
    const address = this.proxy.addressOf({ url: head.target, headers: { host: head.host } });
    if (!address) return this.handOver();
    this.buf = this.buf.subarray(head.size);
    this.phase = 'request';
    this.responding = false;
    this.answered = false;
    if (head.close) this.last = true;
    this.bodyLeft = head.bodyLength;
    this.bodyMode = 'wait';
    this.bodyTo = undefined;
    // The rest of the request (its body) within requestTimeout of its first byte; then the link's idle timeout.
    this.silentMs = 0;
    if (this.bodyLeft > 0) {
      this.deadline = this.requestStart + this.options.requestTimeoutMs;
      this.deadlineKind = 'request';
    } else this.deadline = 0;
    const req: LinkRequest = { method: head.method, url: head.target, httpVersion: '1.1', rawHeaders: head.rawHeaders, headers: headersOf(head), socket: this.socket };
    guarded(() => this.proxy.serve(req, this.reply(), address), () => this.socket.destroy());
  }

  /** Not ours: the server's parser takes the connection from this request on, with what was read. */
  private handOver(): void {
    this.phase = 'node';
    this.deadline = 0;
    this.socket.setTimeout(0);
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('timeout', this.onTimeout);
    this.socket.unshift(this.buf);
    this.buf = Buffer.alloc(0);
    this.toNode(this.socket);
  }

  /** Body bytes of the current request: to the app, or dropped when the hub answered it. */
  private body(bytes: Buffer): void {
    this.bodyLeft -= bytes.length;
    const upstream = this.bodyTo;
    if (this.bodyMode === 'forward' && upstream && !upstream.send(bytes)) {
      this.socket.pause();
      upstream.onResume(() => this.socket.resume());
    }
    if (this.bodyLeft > 0) return;
    if (this.bodyMode === 'forward') upstream?.bodySent();
    if (this.answered) this.ready();
    else if (this.deadlineKind === 'request') this.deadline = 0;
  }

  private reply(): Reply {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const conn = this;
    const socket = this.socket;
    return {
      get closed() {
        return socket.destroyed;
      },
      decode: false,
      answer(status, headers, body, last) {
        if (last) conn.last = true;
        let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
        for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
        if (conn.last) text += CONNECTION_CLOSE;
        const head = Buffer.from(`${text}\r\n`, 'latin1');
        conn.responding = true;
        socket.write(body ? Buffer.concat([head, body]) : head);
        conn.finish();
      },
      head(head, headers) {
        let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
        for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
        if (head.framing === 'chunked') text += 'Transfer-Encoding: chunked\r\n';
        else if (head.framing === 'close') conn.last = true;
        if (conn.last) text += CONNECTION_CLOSE;
        conn.responding = true;
        conn.pendingHead = `${text}\r\n`;
      },
      body(bytes) {
        const head = conn.pendingHead;
        conn.pendingHead = undefined;
        return socket.write(head === undefined ? bytes : Buffer.concat([Buffer.from(head, 'latin1'), bytes]));
      },
      onDrain: (listener) => void socket.once('drain', listener),
      end() {
        const head = conn.pendingHead;
        conn.pendingHead = undefined;
        if (head !== undefined) socket.write(head, 'latin1');
        conn.finish();
      },
      abort: () => socket.destroy(),
      onClose: (listener) => {
        conn.exchangeDone = listener;
      },
      forwardBody(upstream) {
        conn.bodyMode = 'forward';
        conn.bodyTo = upstream;
        const n = Math.min(conn.bodyLeft, conn.buf.length);
        if (n > 0) {
          const bytes = conn.buf.subarray(0, n);
          conn.buf = conn.buf.subarray(n);
          conn.body(bytes);
        }
        if (conn.bodyLeft > 0 && socket.isPaused() && upstream.writable) socket.resume();
      },
      idle(ms) {
        conn.idleMs = ms;
      },
    };
  }

  /** The answer to the current request is complete (the app's, or the hub's own). */
  private finish(): void {
    if (this.answered) return;
    this.answered = true;
    const done = this.exchangeDone;
    this.exchangeDone = undefined;
    done?.(true);
    if (this.last || this.closing()) {
      this.deadline = 0;
      this.phase = 'node'; // nothing more is read
      // Ended and let go once written, as Node's server does: a client that keeps its side open holds nothing.
      return void this.socket.destroySoon();
    }
    if (this.bodyLeft > 0 && this.bodyMode !== 'forward') {
      // Answered before its body was read (a refusal): the rest of the body is read and dropped.
      this.bodyMode = 'drop';
      const n = Math.min(this.bodyLeft, this.buf.length);
      this.bodyLeft -= n;
      this.buf = this.buf.subarray(n);
      if (this.socket.isPaused()) this.socket.resume();
    }
    if (this.bodyLeft === 0) this.ready();
  }

  /** Ready for the next request: what was read ahead first, else wait with the server's keep-alive timeout. */
  private ready(): void {
    this.phase = 'head';
    if (this.socket.isPaused()) this.socket.resume();
    if (this.buf.length > 0) {
      this.startRequest();
      return this.next();
    }
    this.deadline = 0;
  }

  private clientEnded(): void {
    if (this.phase === 'request') {
      // A half-close after a whole request: its answer is still written, then the connection closes.
      if (this.bodyLeft > 0) return void this.socket.destroy();
      this.last = true;
      return;
    }
    this.deadline = 0;
    this.socket.destroySoon();
  }

  private closed(): void {
    this.deadline = 0;
    const done = this.exchangeDone;
    this.exchangeDone = undefined;
    if (!this.answered) done?.(false);
  }

  /** A head or body that did not arrive in time gets 408, as from Node's server, when no answer has begun. */
  private late(kind: Deadline): void {
    if (this.phase === 'node' || this.socket.destroyed) return;
    if ((kind === 'request' || this.buf.length > 0) && !this.responding) {
      this.last = true;
      this.phase = 'node'; // nothing more is read
      this.socket.write('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      this.socket.destroySoon();
      return;
    }
    this.socket.destroy();
  }

  /**
   * The socket saw no bytes either way for quietMs. Between requests that is the keep-alive timeout; while an answer
   * is awaited, the link's idle timeout counts on in quietMs steps (the socket's timer is not changed per request).
   */
  private quiet(): void {
    if (this.phase === 'node' || this.socket.destroyed) return;
    if (this.phase === 'head') {
      // A head in progress is the deadline's business.
      if (this.buf.length === 0) this.socket.destroy();
      return;
    }
    const moved = this.socket.bytesRead + this.socket.bytesWritten;
    if (moved !== this.moved) this.silentMs = 0;
    this.moved = moved;
    this.silentMs += this.quietMs;
    if (this.silentMs >= this.idleMs) return void this.socket.destroy();
    // A fired timer starts again with the next byte; with none, it is set again here.
    this.socket.setTimeout(this.quietMs);
  }
}
