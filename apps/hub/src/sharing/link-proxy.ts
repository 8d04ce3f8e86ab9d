/**
 * Public links served by the hub as an HTTP reverse proxy through the tunnel. `matches` decides, before Fastify
 * routing, whether a request is for a link (`/l/<token>/...`, or a Host of `<token>.<PUBLIC_BASE_DOMAIN>`);
 * `handle` and `upgrade` serve what Node's HTTP server parsed, and the fast path (link-fast.ts) serves connections
 * that start with a plain link request without Node's server objects. Both go through `serve`, so every request is
 * checked, forwarded and audited the same way. No login: the token is the key. In order, a request is answered by
 * the hub with 404 (no such link), 410 (expired or revoked), 405 (method), 403 (path), 429 (rate, with Retry-After)
 * or 502 (the exposing agent is offline or refused the stream); otherwise it goes to the service over a tunnel
 * stream used as an HTTP/1.1 connection (link-upstream.ts), bodies streamed both ways with backpressure. A client
 * connection keeps its stream for its next requests; a stream whose client left waits in its link's idle pool.
 * An Upgrade (WebSocket) request passes the same checks and goes to the app on a stream of its own; only when the app
 * answers `101 Switching Protocols` are bytes piped both ways, otherwise the connection stays HTTP and its next
 * requests are checked like any other (link-upgrade.ts). Limits decide on the decoded, normalised path, and a
 * target the app could read as another path is refused with 400 AMBIGUOUS_PATH (`checkHttpRequest`). Every request
 * of a known link is written to the owner's audit log (`link.access`: ip, method, path as checked, status, refusal
 * code; batched off the request path by access-log.ts). A request with no bytes either way for
 * PUBLIC_LINK_IDLE_TIMEOUT is cut; slow headers and bodies are bounded by the server's headersTimeout and
 * requestTimeout (set in hub.ts; the fast path applies the same).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectError, HttpFramingError, canonicalTarget, checkHttpRequest, upgradesToOffer, type ResponseHead } from '@private-connect/protocol';
import type { StreamTarget } from '../relay/router.js';
import type { SharingContext } from './context.js';
import { cookieScope, linkAddress, refusal, requestHead, responseHeaders, switchingHead, type CookieScope, type LinkAddress } from './link-http.js';
import { exchangeOnSocket, type UpgradeExchange } from './link-upgrade.js';
import { LinkUpstream, UpstreamPools } from './link-upstream.js';
import { MAX_LINK_LOOKUPS_PER_MIN, isLinkToken, linkCache, linkState, type LinkRow } from './links.js';

/** What the proxy reads of a request: Node's IncomingMessage, or the fast path's own (link-fast.ts). */
export type LinkRequest = Pick<IncomingMessage, 'method' | 'url' | 'rawHeaders' | 'headers' | 'httpVersion'> & { socket: Socket };

/** The client side of one request: how its answer is written and its body read, per front end. */
export interface Reply {
  /** Whether the client connection is gone. */
  readonly closed: boolean;
  /** Body bytes handed to `body` decoded (chunk framing removed; the writer frames them) or as the app sent them. */
  readonly decode: boolean;
  /** An answer by the hub itself (a refusal, a redirect): complete, with its body. `last`: close the connection after. */
  answer(status: number, headers: Record<string, string>, body: Buffer | undefined, last?: boolean): void;
  /** The app's response head, its headers already rewritten. */
  head(head: ResponseHead, headers: string[]): void;
  /** Response body bytes; false when the client cannot take more now (then `onDrain`). */
  body(bytes: Buffer): boolean;
  onDrain(listener: () => void): void;
  end(): void;
  /** Cuts the client connection (a response that broke off after it began). */
  abort(): void;
  /** Once, when the exchange is over: `finished` when the whole answer was written. */
  onClose(listener: (finished: boolean) => void): void;
  /** Sends the request body to `upstream` (after the head), chunked when `chunked`; calls `sent` once it all left. */
  forwardBody(upstream: LinkUpstream, chunked: boolean): void;
  /** Cuts the client connection after `ms` with no bytes either way. */
  idle(ms: number): void;
}

export interface LinkProxy {
  /** Where a request points when it is for a link, else undefined (read once per request, then handed to serve). */
  addressOf(req: Pick<IncomingMessage, 'url' | 'headers'>): LinkAddress | undefined;
  handle(req: IncomingMessage, res: ServerResponse, address: LinkAddress): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, address: LinkAddress): void;
  /** Serves one request of a link (both front ends); a promise only when it has to wait (an unknown link, a new stream). */
  serve(req: LinkRequest, reply: Reply, address: LinkAddress): void | Promise<void>;
  /** Idle streams waiting in the links' pools. */
  readonly idleStreams: number;
  close(): void;
}

/** A request that passed every check: its link, the service's agent, the target to forward, the path checked. */
interface Admitted {
  row: LinkRow;
  conn: StreamTarget;
  target: string;
  path: string;
}

/** What `admit` answers: a pass, or a refusal (with the link and the decoded path when known, for the audit log). */
type Refusal = { ok: false; status: number; error: ConnectError; row?: LinkRow; path?: string; headers?: Record<string, string> };
type Verdict = { ok: true; admitted: Admitted } | Refusal;

const noop = () => undefined;

const NO_LINK = new ConnectError('NOT_FOUND', 'There is no public link at this address; check the URL you were given.');
const GONE = () => new ConnectError('PUBLIC_LINK_GONE', 'This public link was revoked by its owner.');

/** The stream a client connection keeps for its next requests to the same link. */
interface Binding {
  linkId: string;
  upstream: LinkUpstream;
}

export function createLinkProxy(sharing: SharingContext): LinkProxy {
  const { config, log } = sharing;
  const cache = linkCache(sharing);
  const idleMs = config.linkIdleTimeoutMs;
  const pools = new UpstreamPools();
  const bindings = new WeakMap<Socket, Binding>();

  /** The answer for a request whose stream could not be opened or broke before the response. */
  const failure = (row: LinkRow, err: unknown): Refusal => {
    if (cache.isGone(row.id)) return { ok: false, status: 410, row, error: GONE() };
    if (err instanceof HttpFramingError) return { ok: false, status: 502, row, error: new ConnectError('PROTOCOL_ERROR', `The service behind this link sent an answer that is not valid HTTP (${err.message}).`) };
    const code = err instanceof ConnectError ? err.code : undefined;
    if (code === 'OPEN_TIMEOUT') return { ok: false, status: 504, row, error: new ConnectError(code, 'The service behind this link did not accept the connection in time; try again later.') };
    if (code === 'TARGET_UNREACHABLE') return { ok: false, status: 502, row, error: new ConnectError(code, 'The machine that serves this link could not reach the service; it may be stopped.') };
    if (code === 'PEER_GONE' || code === undefined) return { ok: false, status: 502, row, error: new ConnectError('PEER_GONE', 'The service behind this link closed the connection before it answered.') };
    return { ok: false, status: 502, row, error: new ConnectError(code, 'The service behind this link did not accept the connection; try again later.') };
  };

  /** Runs every check of the module comment, in order, for a request to `address`. */
  const admit = async (req: LinkRequest, address: LinkAddress, ip: string | undefined): Promise<Verdict> => {
    if (!isLinkToken(address.token)) return { ok: false, status: 404, error: NO_LINK };
    if (!cache.has(address.token)) {
      // Guessing tokens costs the database a lookup each: bounded per client address.
      const wait = sharing.rates.take(`link-lookup:${ip}`, MAX_LINK_LOOKUPS_PER_MIN, Date.now());
      if (wait > 0) return { ok: false, status: 429, error: new ConnectError('RATE_LIMITED', `Too many requests for unknown links from your address; try again in ${wait} s.`), headers: { 'retry-after': String(wait) } };
    }
    const row = await cache.get(address.token);
    if (!row) return { ok: false, status: 404, error: NO_LINK };
    return judge(req, address, row);
  };

  /** The checks on a request of a known link (synchronous: a cached link costs no promise). */
  const judge = (req: LinkRequest, address: LinkAddress, row: LinkRow): Verdict => {
    const state = linkState(row, sharing.clock.now());
    if (state !== 'active') return { ok: false, status: 410, row, error: state === 'revoked' ? GONE() : new ConnectError('PUBLIC_LINK_GONE', 'This public link has expired; ask its owner for a new one.') };
    const check = checkHttpRequest({ methods: row.methods ?? undefined, paths: row.paths ?? undefined }, req.method ?? 'GET', address.target);
    if (!check.ok) {
      const headers: Record<string, string> = check.error.code === 'METHOD_NOT_ALLOWED' && row.methods ? { allow: row.methods.join(', ') } : {};
      return { ok: false, status: check.error.status, row, path: check.path, error: check.error, headers };
    }
    const path = check.path;
    if (row.rate_per_min) {
      const wait = sharing.rates.take(`link:${row.id}`, row.rate_per_min, Date.now());
      if (wait > 0) return { ok: false, status: 429, row, path, error: new ConnectError('RATE_LIMITED', `This link allows ${row.rate_per_min} requests a minute; try again in ${wait} s.`), headers: { 'retry-after': String(wait) } };
    }
    const conn = sharing.router.get(row.workspace_id, row.service_name);
    if (!conn || conn.state !== 'open') return { ok: false, status: 502, row, path, error: new ConnectError('SERVICE_OFFLINE', 'The machine that serves this link is not connected to the hub right now; try again later.') };
    return { ok: true, admitted: { row, conn, target: check.target, path } };
  };

  /** Opens a new stream to the link's service (tagged with the link, so revoking it cuts the stream). */
  const openUpstream = async (ip: string | undefined, admitted: Admitted): Promise<{ ok: true; upstream: LinkUpstream } | Refusal> => {
    const { row, conn } = admitted;
    const notice = { service: row.service_name, from: { agentId: 'hub', label: `public link ${row.token_prefix}`, ip } };
    try {
      const stream = await sharing.local.open(conn, notice, { linkId: row.id });
      const upstream = new LinkUpstream(stream);
      if (!cache.isGone(row.id)) return { ok: true, upstream };
      upstream.close(); // revoked while the stream opened
      return { ok: false, status: 410, row, error: GONE() };
    } catch (err) {
      if (!(err instanceof ConnectError)) log.error({ err, link: row.id }, 'opening a stream for a public link failed');
      return failure(row, err);
    }
  };

  /** Hands a client connection's stream back when the connection closes: to the pool while healthy. */
  const bind = (socket: Socket, linkId: string, upstream: LinkUpstream) => {
    if (socket.destroyed) return; // its 'close' has run: the caller gives the stream back
    const had = bindings.get(socket);
    bindings.set(socket, { linkId, upstream });
    if (had) return release(had);
    socket.once('close', () => {
      const binding = bindings.get(socket);
      bindings.delete(socket);
      if (binding) release(binding);
    });
  };
  const release = (binding: Binding) => {
    if (binding.upstream.ready) pools.give(binding.linkId, binding.upstream);
    else binding.upstream.close();
  };

  /**
   * The stream for the next request of a client connection: its own when it has one for this link and it is free,
   * else an idle one of the link's pool, else a new one. `fresh`: a new one in any case (a retry).
   */
  type Got = { ok: true; upstream: LinkUpstream; own: boolean } | Refusal;
  const upstreamFor = (req: LinkRequest, ip: string | undefined, admitted: Admitted, fresh: boolean): Got | Promise<Got> => {
    const bound = bindings.get(req.socket);
    if (!fresh && bound?.linkId === admitted.row.id && bound.upstream.ready) return { ok: true, upstream: bound.upstream, own: true };
    return borrow(req, ip, admitted, fresh);
  };
  const borrow = async (req: LinkRequest, ip: string | undefined, admitted: Admitted, fresh: boolean): Promise<Got> => {
    const socket = req.socket;
    const bound = bindings.get(socket);
    const pooled = fresh ? undefined : pools.take(admitted.row.id);
    const got = pooled ? { ok: true as const, upstream: pooled } : await openUpstream(ip, admitted);
    if (!got.ok) return got;
    // A connection whose stream is busy (a pipelined request through Node's server) borrows one for this request.
    const own = !(bound?.linkId === admitted.row.id && bound.upstream.busy);
    if (own) bind(socket, admitted.row.id, got.upstream);
    return { ok: true, upstream: got.upstream, own };
  };

  /**
   * Writes one `link.access` event for a request of a known link. `checked` is the decoded path the limits saw;
   * without it, the decoded path when the target reads as one, else the target's path as it was sent.
   */
  const audit = (row: LinkRow, req: LinkRequest, ip: string | undefined, address: LinkAddress, status: number, checked: string | undefined, extra: Record<string, unknown> = {}) => {
    let path = checked;
    if (path === undefined) {
      const raw = address.target.split('?')[0]!;
      const read = canonicalTarget(raw);
      path = read.ok ? read.path : raw;
    }
    path = path.slice(0, 512);
    sharing.access.record(row.workspace_id, {
      actorType: 'public',
      action: 'link.access',
      targetType: 'link',
      targetId: row.id,
      ip,
      userAgent: req.headers['user-agent'],
      metadata: { method: req.method, path, status, service: row.service_name, mode: address.mode, ...extra },
    });
  };

  const forwarding = (req: LinkRequest, ip: string | undefined, address: LinkAddress, upgrade: readonly string[] | undefined, cookies: CookieScope) => ({
    ip,
    proto: ('encrypted' in req.socket && req.socket.encrypted) || config.publicUrl?.startsWith('https:') ? ('https' as const) : ('http' as const),
    prefix: address.prefix,
    upgrade,
    cookies,
  });

  /**
   * Serves one request of a link. `upgrade` is there for a request that asks for Upgrade (its response lives on the
   * raw socket): it gets a stream of its own, and only a 101 from the app switches the connection to raw bytes.
   */
  const serve = (req: LinkRequest, reply: Reply, address: LinkAddress, upgrade?: UpgradeExchange): void | Promise<void> => {
    const ip = sharing.clientIp(req as IncomingMessage);
    // No bytes either way for idleMs (slow client, stalled body, silent service): the connection is cut.
    reply.idle(idleMs);
    // A cached link is served without a promise on the way; an unknown one waits for its lookup.
    const row = isLinkToken(address.token) ? cache.peek(address.token) : undefined;
    if (row) return forward(req, reply, upgrade, address, ip, judge(req, address, row));
    return admit(req, address, ip).then((verdict) => forward(req, reply, upgrade, address, ip, verdict));
  };

  /** The rest of `serve`, once the checks have spoken. */
  const forward = (req: LinkRequest, reply: Reply, upgrade: UpgradeExchange | undefined, address: LinkAddress, ip: string | undefined, verdict: Verdict): void | Promise<void> => {
    const marks = upgrade ? { upgrade: true } : {};
    const refuse = (refused: Refusal) => {
      const answer = refusal(req, refused.status, refused.error, refused.headers);
      if (refused.row) audit(refused.row, req, ip, address, refused.status, refused.path, { code: refused.error.code, ...marks });
      // A refused Upgrade request ends its connection: what the client sent after it is not read.
      reply.answer(answer.status, answer.headers, req.method === 'HEAD' ? undefined : answer.body, upgrade !== undefined);
    };
    if (!verdict.ok) return refuse(verdict);
    const { row, target, path } = verdict.admitted;
    if (address.bare && (req.method === 'GET' || req.method === 'HEAD')) {
      // `/l/<token>` → `/l/<token>/`, so that the app's relative URLs resolve under the link.
      audit(row, req, ip, address, 308, path, marks);
      return reply.answer(308, { location: `${address.prefix}${target}`, 'cache-control': 'no-store', 'content-length': '0' }, undefined);
    }
    if (reply.closed) return;
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const bodiless = !chunked && Number(req.headers['content-length'] ?? 0) === 0;
    // Node reads no body of an Upgrade request: its bytes could only be told from the next request by guessing.
    if (upgrade && !bodiless) return refuse({ ok: false, status: 400, row, path, error: new ConnectError('BAD_REQUEST', 'An Upgrade request with a body is not supported on a public link.') });
    const cookies = cookieScope(address);
    // What the app is offered of the client's Upgrade (never h2c); with nothing left it gets a plain request, and a
    // 101 it sends anyway is not relayed.
    const offered = upgrade ? upgradesToOffer(req.headers.upgrade) : undefined;
    const head = requestHead(req.method ?? 'GET', target, req, forwarding(req, ip, address, offered, cookies));
    let status = 0;
    let switched = false;
    let current: LinkUpstream | undefined;
    /** Waiting for the client's drain (once per stall, however many pieces arrive meanwhile). */
    let draining = false;
    reply.onClose((finished) => {
      if (switched) return;
      // A client that left in the middle of its answer: that stream cannot carry another request.
      if (!finished) current?.close();
      audit(row, req, ip, address, status, path, finished ? marks : { aborted: true, ...marks });
    });
    const attempt = (retry: boolean): void | Promise<void> => {
      const got = upgrade ? openUpstream(ip, verdict.admitted) : upstreamFor(req, ip, verdict.admitted, retry);
      return got instanceof Promise ? got.then((g) => send(g, retry)) : send(got, retry);
    };
    const send = (got: Got | { ok: true; upstream: LinkUpstream } | Refusal, retry: boolean): void => {
      if (!got.ok) return refuse(got);
      const upstream = got.upstream;
      if (reply.closed) {
        // The client left while its stream was found: the stream goes back to the pool, healthy, or is closed.
        if (bindings.get(req.socket)?.upstream === upstream) bindings.delete(req.socket);
        return pools.give(verdict.admitted.row.id, upstream);
      }
      current = upstream;
      // A request without a body on a stream that carried others may meet the app closing that stream just then: sent again once, on a new stream.
      const mayRetry = !retry && bodiless && upstream.requests > 0 && !upgrade;
      let answer: ResponseHead | undefined;
      upstream.request(req.method ?? 'GET', head, {
        head: (h) => {
          answer = h;
          if (h.status === 101) return;
          status = h.status;
          reply.head(h, responseHeaders(h.rawHeaders, cookies));
        },
        body: (bytes) => {
          if (reply.body(bytes)) return true;
          if (!draining) {
            draining = true;
            reply.onDrain(() => {
              draining = false;
              upstream.resume();
            });
          }
          return false;
        },
        done: () => {
          reply.end();
          if (upgrade || !('own' in got && got.own)) pools.give(row.id, upstream);
        },
        failed: (err, answered) => {
          // A client that left needs no answer, nor a retry (its leaving is what closed this stream).
          if (reply.closed) return;
          if (answered) return reply.abort();
          if (mayRetry && !(err instanceof HttpFramingError) && !cache.isGone(row.id)) return void attempt(true);
          const failed = failure(row, err);
          status = failed.status;
          const page = refusal(req, failed.status, failed.error);
          reply.answer(page.status, page.headers, req.method === 'HEAD' ? undefined : page.body, upgrade !== undefined);
        },
        switched: (rest) => {
          if (!upgrade || offered!.length === 0) {
            // A switch nobody asked for: its bytes would pass unread. Node emits 'upgrade' for any 101 it is given.
            upstream.close();
            status = 502;
            const refused = refusal(req, 502, new ConnectError('PROTOCOL_ERROR', 'The service behind this link switched protocols without being asked to; the connection was closed.'));
            return reply.answer(refused.status, refused.headers, refused.body, true);
          }
          switched = true;
          audit(row, req, ip, address, 101, path, marks);
          upgrade.switchProtocols(switchingHead(answer?.reason, answer?.rawHeaders ?? [], cookies), rest, (socket, early) => pipeRaw(socket, upstream, early));
        },
      }, reply.decode, !bodiless);
      if (!bodiless) reply.forwardBody(upstream, chunked);
    };
    return attempt(false);
  };

  /** After a 101: raw bytes both ways until either side ends or fails, or neither moves for idleMs. */
  const pipeRaw = (socket: Socket, upstream: LinkUpstream, early: Buffer) => {
    let draining = false;
    upstream.pipe({
      data: (bytes) => {
        if (socket.write(bytes)) return true;
        if (!draining) {
          draining = true;
          socket.once('drain', () => {
            draining = false;
            upstream.resume();
          });
        }
        return false;
      },
      end: () => socket.end(),
      abort: () => socket.destroy(),
    });
    if (early.length > 0) upstream.send(early);
    socket.on('data', (chunk: Buffer) => {
      if (upstream.send(chunk)) return;
      socket.pause();
      upstream.onResume(() => socket.resume());
    });
    socket.on('end', () => upstream.finish());
    socket.on('close', () => upstream.close());
    socket.setTimeout(idleMs, () => socket.destroy());
  };

  return {
    addressOf: (req) => linkAddress(req, config.publicBaseDomain),
    serve: (req, reply, address) => serve(req, reply, address),
    get idleStreams() {
      return pools.size;
    },
    close: () => pools.closeAll(),

    handle(req, res, address) {
      req.on('error', noop);
      res.on('error', noop);
      guarded(() => serve(req as LinkRequest, nodeReply(req, res), address), (err) => {
        log.error({ err }, 'public link request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end('internal error\n');
        else res.destroy();
      });
    },

    upgrade(req, socket, head, address) {
      socket.on('error', noop);
      req.on('error', noop);
      void (async () => {
        const exchange = await exchangeOnSocket(req, socket, head);
        if (!exchange) return;
        exchange.res.on('error', noop);
        await serve(req as LinkRequest, nodeReply(req, exchange.res), address, exchange);
      })().catch((err: unknown) => {
        log.error({ err }, 'public link upgrade failed');
        socket.destroy();
      });
    },
  };
}

/** Runs `run`, sending what it throws, now or from its promise, to `onError`. */
export function guarded(run: () => void | Promise<void>, onError: (err: unknown) => void): void {
  try {
    run()?.catch(onError);
  } catch (err) {
    onError(err);
  }
}

/** The client side of a request Node's HTTP server parsed: its ServerResponse, and the request as body source. */
function nodeReply(req: IncomingMessage, res: ServerResponse): Reply {
  return {
    get closed() {
      return res.destroyed;
    },
    decode: true,
    answer(status, headers, body, last) {
      if (last) res.shouldKeepAlive = false;
      res.writeHead(status, headers).end(body);
    },
    head(head, headers) {
      res.writeHead(head.status, head.reason, headers);
    },
    body: (bytes) => res.write(bytes),
    onDrain: (listener) => res.once('drain', listener),
    end: () => res.end(),
    abort: () => res.destroy(),
    onClose: (listener) => res.once('close', () => listener(res.writableFinished)),
    forwardBody(upstream, chunked) {
      req.on('data', (chunk: Buffer) => {
        const sent = chunked ? upstream.send(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF])) : upstream.send(chunk);
        if (sent) return;
        req.pause();
        upstream.onResume(() => req.resume());
      });
      req.on('end', () => {
        if (chunked) upstream.send(LAST_CHUNK);
        upstream.bodySent();
      });
    },
    idle: (ms) => void res.setTimeout(ms, () => req.socket.destroy()),
  };
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
