/**
 * A public link's connections to its app: tunnel streams used as HTTP/1.1 connections. Requests are written to the
 * stream as bytes and responses read back with ResponseReader (protocol/http1.ts), with no HTTP client, agent pool
 * or in-process Duplex pair between the proxy and the stream: per request that is a head written and a head read.
 *
 * An upstream belongs to one client connection at a time (link-proxy.ts binds it on the first request and keeps it
 * for the next ones), so one client's requests never share a connection with another client's, and a response can
 * only ever reach the client that asked. When the client goes away between requests, its upstream, still healthy,
 * waits in its link's idle pool for the next client (LIFO, bounded, closed after UPSTREAM_IDLE_MS). An upstream is
 * healthy until either side ends or resets the stream, the app says `Connection: close`, or a response cannot be
 * framed; it is then closed and forgotten at once, so nothing ever sends a request into a connection the app has
 * left (the stall of issue 21).
 */

import { EventEmitter } from 'node:events';
import { ConnectError, HttpFramingError, ResponseReader, type ResponseHead, type ResponseSink } from '@private-connect/protocol';
import type { StreamSocket, TunnelStream } from '@private-connect/tunnel';

/** What one request's response is handed to. */
export interface Exchange {
  head(head: ResponseHead): void;
  /** Body bytes; returns false when the client cannot take more now (then call `upstream.resume()` on its drain). */
  body(bytes: Buffer): boolean;
  done(): void;
  /**
   * The request got no complete response: the stream ended or was reset, or the response could not be framed.
   * `answered`: part of the response was already handed on.
   */
  failed(err: Error, answered: boolean): void;
  /** After a 101 (only for a request that offered an Upgrade): what the app sent after its head. */
  switched?(rest: Buffer): void;
}

/** Where the app's bytes go after a 101. */
export interface RawPipe {
  data(bytes: Buffer): boolean;
  end(): void;
  abort(): void;
}

/** Longest an idle upstream waits in its pool for the next client. */
export const UPSTREAM_IDLE_MS = 30_000;
/** Most idle upstreams kept per link. */
export const MAX_IDLE_PER_LINK = 32;

/**
 * The local end of one tunnel stream, as TunnelStream sees a socket: what the app sends arrives through `write`
 * (acknowledged once the client took it, which is what grants the app more credit); what we `send` leaves as
 * 'data'.
 */
class UpstreamSocket extends EventEmitter implements StreamSocket {
  destroyed = false;
  writableLength = 0;
  private paused = false;
  /** Acknowledgements of the app's bytes, held while the client cannot take more (in order). */
  private held: Array<() => void> = [];

  constructor(private readonly owner: LinkUpstream) {
    super();
  }

  write(chunk: Buffer, callback: () => void): boolean {
    if (this.destroyed) return false;
    if (this.owner.fromApp(chunk) && this.held.length === 0) callback();
    else this.held.push(callback);
    return true;
  }

  /** The client took what it was given: acknowledge the app's bytes. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }

  end(): void {
    this.owner.appEnded();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.held = [];
    this.owner.broken(new ConnectError('PEER_GONE', 'the connection to the app was cut'));
    this.emit('close');
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.emit('resume');
  }

  isPaused(): boolean {
    return this.paused;
  }
}

export class LinkUpstream implements ResponseSink {
  private readonly socket = new UpstreamSocket(this);
  private readonly reader = new ResponseReader(this);
  /** Exchanges waiting for their response, oldest first. */
  private readonly exchanges: Exchange[] = [];
  /** Part of the first waiting exchange's response was handed on. */
  private answering = false;
  /** A request body is still being sent. */
  private sending = false;
  /** No request may be sent any more (ended, broken, or the app said close). */
  private over = false;
  /** Requests sent on this stream so far. */
  requests = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** The last bytes from the app could not all be taken by the client now. */
  private congested = false;
  /** After a 101: where the app's bytes go, and what to do when the app ends its side. */
  private raw: RawPipe | undefined;
  /** Called once when the upstream is over (its pool forgets it). */
  onOver: (() => void) | undefined;

  constructor(private readonly stream: TunnelStream) {
    stream.attach(this.socket);
  }

  /**
   * Whether a request may be sent now: healthy, no response pending, and the last request's body all sent (an app
   * that answered before reading its whole body still counts the bytes to come as that body: another request sent
   * then would be read as part of it, or the rest of it as a request).
   */
  get ready(): boolean {
    return !this.over && this.exchanges.length === 0 && !this.sending;
  }

  /** Whether a request or its answer is in progress on a healthy stream (another request must wait, or use another stream). */
  get busy(): boolean {
    return !this.over && (this.exchanges.length > 0 || this.sending);
  }

  /** The request body being sent is complete. */
  bodySent(): void {
    this.sending = false;
    if (this.over && this.exchanges.length === 0) this.close();
  }

  /** Whether the stream's credit lets the request body go on now (else wait for `onResume`). */
  get writable(): boolean {
    return !this.socket.isPaused();
  }

  /**
   * Sends a request head (and registers who gets its response). `decode`: hand the body on without chunk framing.
   * `body`: a body follows, through `send`, until `bodySent`.
   */
  request(method: string, head: Buffer, exchange: Exchange, decode: boolean, body = false): void {
    this.cancelIdle();
    this.requests++;
    this.sending = body;
    this.exchanges.push(exchange);
    this.reader.expect(method, decode);
    this.socket.emit('data', head);
  }

  /** Request body bytes (or raw bytes after a 101); false when the stream has no credit (then wait for onResume). */
  send(bytes: Buffer): boolean {
    if (this.socket.destroyed) return false;
    this.socket.emit('data', bytes);
    return this.writable;
  }

  /** Called when the stream has credit again after `send` returned false. */
  onResume(listener: () => void): void {
    this.socket.once('resume', listener);
  }

  /** The client took the body bytes it could not take before: the app may send more. */
  resume(): void {
    this.socket.release();
  }

  /** Ends our side: the app sees the client's end of input (after a 101), or the connection closes. */
  finish(): void {
    this.socket.emit('end');
  }

  /** Closes the stream: no more requests; the app's side ends. Safe to call more than once. */
  close(): void {
    if (this.socket.destroyed) return;
    this.markOver();
    this.socket.emit('end');
    this.socket.destroy();
  }

  /** Waits in a pool: closed after `ms` unless taken. */
  idleFor(ms: number, onIdle: () => void): void {
    this.cancelIdle();
    this.idleTimer = setTimeout(onIdle, ms);
    this.idleTimer.unref();
  }

  cancelIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Bytes from the app; false to hold them back until `resume` (the client is slow). */
  fromApp(chunk: Buffer): boolean {
    this.congested = false;
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.broken(err instanceof HttpFramingError ? err : new HttpFramingError(String(err)));
      return true;
    }
    return !this.congested;
  }

  /** After a 101: the app's bytes from now on go to `raw.data`, its end to `raw.end`, a cut stream to `raw.abort`. */
  pipe(raw: RawPipe): void {
    this.raw = raw;
  }

  // ResponseSink: the reader's report of the first waiting exchange's response.
  head(head: ResponseHead): void {
    this.answering = true;
    if (head.close) this.markOver();
    this.exchanges[0]?.head(head);
  }

  body(bytes: Buffer): void {
    const taken = this.raw ? this.raw.data(bytes) : this.exchanges[0]?.body(bytes);
    if (taken === false) this.congested = true;
  }

  done(): void {
    this.answering = false;
    this.exchanges.shift()?.done();
    // The answer is complete: credit held back for its client is not held for the next one (a client that left
    // without draining would otherwise keep it for good, and stall whoever gets this stream next).
    this.socket.release();
    if (this.over && this.exchanges.length === 0) this.close();
  }

  switched(rest: Buffer): void {
    this.answering = false;
    this.markOver();
    this.exchanges.shift()?.switched?.(rest);
  }

  /** The app ended its side (TunnelStream: CLOSE from the agent). */
  appEnded(): void {
    if (this.raw) {
      this.raw.end();
      return this.close();
    }
    try {
      this.reader.end();
    } catch (err) {
      return this.broken(err as Error);
    }
    if (this.exchanges.length > 0) this.broken(new ConnectError('PEER_GONE', 'the app closed the connection before it answered'));
    else this.close();
  }

  /** The stream cannot be used any more: every waiting exchange fails, the stream is reset or closed. */
  broken(err: Error): void {
    this.markOver();
    this.raw?.abort();
    const failed = this.exchanges.splice(0);
    const answered = this.answering;
    this.answering = false;
    failed.forEach((exchange, i) => exchange.failed(err, i === 0 && answered));
    if (!this.socket.destroyed) {
      if (err instanceof HttpFramingError) this.stream.reset('PROTOCOL_ERROR', err.message);
      this.close();
    }
  }

  private markOver(): void {
    if (this.over) return;
    this.over = true;
    this.cancelIdle();
    const onOver = this.onOver;
    this.onOver = undefined;
    onOver?.();
  }
}

/** The idle upstreams of each link, most recently used first. */
export class UpstreamPools {
  private readonly idle = new Map<string, LinkUpstream[]>();

  /** An idle upstream of `linkId`, or undefined. */
  take(linkId: string): LinkUpstream | undefined {
    const list = this.idle.get(linkId);
    const upstream = list?.pop();
    if (list && list.length === 0) this.idle.delete(linkId);
    if (upstream) {
      upstream.cancelIdle();
      upstream.onOver = undefined;
    }
    return upstream;
  }

  /** Keeps a healthy upstream whose client left; closes it when it is not healthy or the pool is full. */
  give(linkId: string, upstream: LinkUpstream): void {
    if (!upstream.ready) return upstream.close();
    let list = this.idle.get(linkId);
    if (!list) this.idle.set(linkId, (list = []));
    if (list.length >= MAX_IDLE_PER_LINK) return upstream.close();
    list.push(upstream);
    const forget = () => {
      const at = list!.indexOf(upstream);
      if (at >= 0) list!.splice(at, 1);
      if (list!.length === 0 && this.idle.get(linkId) === list) this.idle.delete(linkId);
    };
    upstream.onOver = forget;
    upstream.idleFor(UPSTREAM_IDLE_MS, () => {
      forget();
      upstream.close();
    });
  }

  /** Idle upstreams over all links (the /metrics gauge). */
  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Closes every idle upstream (hub shutdown). */
  closeAll(): void {
    for (const list of this.idle.values()) for (const upstream of list.splice(0)) upstream.close();
    this.idle.clear();
  }
}
