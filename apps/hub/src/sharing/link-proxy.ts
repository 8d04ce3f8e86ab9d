/**
 * Public links served by the hub as an HTTP reverse proxy through the tunnel. `matches` decides, before Fastify
 * routing, whether a request is for a link (`/l/<token>/...`, or a Host of `<token>.<PUBLIC_BASE_DOMAIN>`);
 * `handle` and `upgrade` serve it. No login: the token is the key. In order, a request is answered by the hub
 * with 404 (no such link), 410 (expired or revoked), 405 (method), 403 (path), 429 (rate, with Retry-After) or
 * 502 (the exposing agent is offline or refused the stream); otherwise it goes to the service over a stream,
 * bodies streamed both ways with backpressure (pipe; nothing is buffered whole). Streams are kept alive and
 * reused between requests of the same link (one keep-alive pool per link, like any reverse proxy's upstream
 * pool), so a request costs a stream open only when no idle one is there. An Upgrade (WebSocket) request passes
 * the same checks and goes to the app on a stream of its own; only when the app answers `101 Switching Protocols`
 * are bytes piped both ways, otherwise the connection stays HTTP and its next requests are checked like any other
 * (link-upgrade.ts). Limits decide on the decoded, normalised path, and a target the app could read as another path
 * is refused with 400 AMBIGUOUS_PATH (`checkHttpRequest`). Every request of a known link is written to the
 * owner's audit log (`link.access`: ip, method, path as checked, status, refusal code). A request with no bytes
 * either way for PUBLIC_LINK_IDLE_TIMEOUT is cut; slow headers and bodies are bounded by the server's
 * headersTimeout and requestTimeout (set in hub.ts).
 */

import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ConnectError, canonicalTarget, checkHttpRequest, upgradesToOffer } from '@private-connect/protocol';
import type { StreamTarget } from '../relay/router.js';
import type { SharingContext } from './context.js';
import { cookieScope, linkAddress, refusal, requestHeaders, responseHeaders, switchingHead, type CookieScope, type LinkAddress } from './link-http.js';
import { exchangeOnSocket, type UpgradeExchange } from './link-upgrade.js';
import { MAX_LINK_LOOKUPS_PER_MIN, isLinkToken, linkCache, linkState, type LinkRow } from './links.js';


export interface LinkProxy {
  matches(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
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

/** Most links with a keep-alive pool at once; the oldest pool is closed past it. */
const MAX_POOLS = 512;

/**
 * The upstream keep-alive pool of one link: Node's HTTP agent, whose new connections are tunnel streams to the
 * service (opened asynchronously; an open that fails reaches the request as its 'error', with the ConnectError).
 */
class LinkPool extends HttpAgent {
  constructor(private readonly openStream: () => Promise<Duplex>) {
    super({ keepAlive: true, maxFreeSockets: 64, scheduling: 'lifo' });
  }

  override createConnection(_options: unknown, callback: (err: Error | null, stream?: Duplex) => void): undefined {
    this.openStream().then(
      (duplex) => callback(null, duplex),
      (err: Error) => callback(err),
    );
    return undefined;
  }
}
const NO_LINK = new ConnectError('NOT_FOUND', 'There is no public link at this address; check the URL you were given.');

export function createLinkProxy(sharing: SharingContext): LinkProxy {
  const { config, log } = sharing;
  const cache = linkCache(sharing);
  const idleMs = config.linkIdleTimeoutMs;
  const pools = new Map<string, LinkPool>();

  /** The keep-alive pool of a link; its streams are tagged with the link, so a revocation cuts them too. */
  const poolOf = (row: LinkRow): LinkPool => {
    let pool = pools.get(row.id);
    if (pool) return pool;
    pool = new LinkPool(async () => {
      const conn = sharing.router.get(row.workspace_id, row.service_name);
      if (!conn || conn.state !== 'open') throw new ConnectError('SERVICE_OFFLINE', 'the exposing agent is not connected');
      const notice = { service: row.service_name, from: { agentId: 'hub', label: `public link ${row.token_prefix}` } };
      const duplex = await sharing.local.openDuplex(conn, notice, { linkId: row.id });
      duplex.on('error', noop);
      // The app ended its side (an idle keep-alive connection it closed): end ours too, as a TCP socket would
      // without allowHalfOpen, so the stream closes and the pool forgets it instead of sending the next request
      // into a connection nobody reads.
      duplex.on('end', () => duplex.end());
      return duplex;
    });
    pools.set(row.id, pool);
    if (pools.size > MAX_POOLS) {
      const [oldest, old] = pools.entries().next().value!;
      pools.delete(oldest);
      old.destroy();
    }
    return pool;
  };

  /** The answer for a request whose stream could not be opened or broke before the response. */
  const upstreamFailure = (row: LinkRow, err: unknown): Refusal => {
    if (cache.isGone(row.id)) return { ok: false, status: 410, row, error: new ConnectError('PUBLIC_LINK_GONE', 'This public link was revoked by its owner.') };
    const code = err instanceof ConnectError ? err.code : undefined;
    if (code === 'OPEN_TIMEOUT') return { ok: false, status: 504, row, error: new ConnectError(code, 'The service behind this link did not accept the connection in time; try again later.') };
    if (code === 'TARGET_UNREACHABLE') return { ok: false, status: 502, row, error: new ConnectError(code, 'The machine that serves this link could not reach the service; it may be stopped.') };
    if (code) return { ok: false, status: 502, row, error: new ConnectError(code, 'The service behind this link did not accept the connection; try again later.') };
    return { ok: false, status: 502, row, error: new ConnectError('PEER_GONE', 'The service behind this link closed the connection before it answered.') };
  };

  /** Runs every check of the module comment, in order, for a request to `address`. */
  const admit = async (req: IncomingMessage, address: LinkAddress): Promise<Verdict> => {
    if (!isLinkToken(address.token)) return { ok: false, status: 404, error: NO_LINK };
    if (!cache.has(address.token)) {
      // Guessing tokens costs the database a lookup each: bounded per client address.
      const wait = sharing.rates.take(`link-lookup:${sharing.clientIp(req)}`, MAX_LINK_LOOKUPS_PER_MIN, Date.now());
      if (wait > 0) return { ok: false, status: 429, error: new ConnectError('RATE_LIMITED', `Too many requests for unknown links from your address; try again in ${wait} s.`), headers: { 'retry-after': String(wait) } };
    }
    const row = await cache.get(address.token);
    if (!row) return { ok: false, status: 404, error: NO_LINK };
    const state = linkState(row, sharing.clock.now());
    if (state !== 'active') return { ok: false, status: 410, row, error: new ConnectError('PUBLIC_LINK_GONE', state === 'revoked' ? 'This public link was revoked by its owner.' : 'This public link has expired; ask its owner for a new one.') };
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

  /** Opens the stream to the service for an admitted request, or the refusal when the agent does not take it. */
  const open = async (req: IncomingMessage, admitted: Admitted): Promise<{ ok: true; duplex: Duplex } | Refusal> => {
    const { row, conn } = admitted;
    const notice = { service: row.service_name, from: { agentId: 'hub', label: `public link ${row.token_prefix}`, ip: sharing.clientIp(req) } };
    try {
      const duplex = await sharing.local.openDuplex(conn, notice, { linkId: row.id });
      duplex.on('error', noop);
      if (!cache.isGone(row.id)) return { ok: true, duplex };
      duplex.destroy(); // revoked while the stream opened
      return { ok: false, status: 410, row, error: new ConnectError('PUBLIC_LINK_GONE', 'This public link was revoked by its owner.') };
    } catch (err) {
      const code = err instanceof ConnectError ? err.code : 'INTERNAL';
      if (code === 'INTERNAL') log.error({ err, link: row.id }, 'opening a stream for a public link failed');
      const status = code === 'OPEN_TIMEOUT' ? 504 : 502;
      const message = code === 'TARGET_UNREACHABLE' ? 'The machine that serves this link could not reach the service; it may be stopped.' : 'The service behind this link did not accept the connection; try again later.';
      return { ok: false, status, row, error: new ConnectError(code, message) };
    }
  };

  /**
   * Writes one `link.access` event for a request of a known link. `checked` is the decoded path the limits saw;
   * without it, the decoded path when the target reads as one, else the target's path as it was sent.
   */
  const audit = (row: LinkRow, req: IncomingMessage, address: LinkAddress, status: number, checked: string | undefined, extra: Record<string, unknown> = {}) => {
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
      ip: sharing.clientIp(req),
      userAgent: req.headers['user-agent'],
      metadata: { method: req.method, path, status, service: row.service_name, mode: address.mode, ...extra },
    });
  };

  const forwarding = (req: IncomingMessage, address: LinkAddress, upgrade: readonly string[] | undefined, cookies: CookieScope) => ({
    ip: sharing.clientIp(req),
    proto: ('encrypted' in req.socket && req.socket.encrypted) || config.publicUrl?.startsWith('https:') ? ('https' as const) : ('http' as const),
    prefix: address.prefix,
    upgrade,
    cookies,
  });

  /**
   * Serves one request of a link. `exchange` is there for a request that asks for Upgrade (its response lives on the
   * raw socket): it gets a stream of its own, and only a 101 from the app switches the connection to raw bytes.
   */
  const serve = async (req: IncomingMessage, res: ServerResponse, exchange?: UpgradeExchange): Promise<void> => {
    const address = linkAddress(req, config.publicBaseDomain)!;
    const marks = exchange ? { upgrade: true } : {};
    // No bytes either way for idleMs (slow client, stalled body, silent service): the connection is cut.
    res.setTimeout(idleMs, () => req.socket.destroy());
    const refuse = (refused: Refusal) => {
      const answer = refusal(req, refused.status, refused.error, refused.headers);
      if (refused.row) audit(refused.row, req, address, refused.status, refused.path, { code: refused.error.code, ...marks });
      // A refused Upgrade request ends its connection: what the client sent after it is not read.
      if (exchange) res.shouldKeepAlive = false;
      res.writeHead(answer.status, answer.headers).end(req.method === 'HEAD' ? undefined : answer.body);
    };
    const verdict = await admit(req, address);
    if (!verdict.ok) return refuse(verdict);
    const { row, target, path } = verdict.admitted;
    if (address.bare && (req.method === 'GET' || req.method === 'HEAD')) {
      // `/l/<token>` → `/l/<token>/`, so that the app's relative URLs resolve under the link.
      audit(row, req, address, 308, path, marks);
      res.writeHead(308, { location: `${address.prefix}${target}`, 'cache-control': 'no-store', 'content-length': '0' }).end();
      return;
    }
    if (res.destroyed) return;
    const bodiless = (req.method === 'GET' || req.method === 'HEAD') && !req.headers['content-length'] && !req.headers['transfer-encoding'];
    let duplex: Duplex | undefined;
    if (exchange) {
      // Node reads no body of an Upgrade request: its bytes could only be told from the next request by guessing.
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) !== 0) {
        return refuse({ ok: false, status: 400, row, path, error: new ConnectError('BAD_REQUEST', 'An Upgrade request with a body is not supported on a public link.') });
      }
      const opened = await open(req, verdict.admitted);
      if (!opened.ok) return refuse(opened);
      duplex = opened.duplex;
      if (res.destroyed) return void duplex.destroy();
    }
    const cookies = cookieScope(address);
    // What the app is offered of the client's Upgrade (never h2c); with nothing left it gets a plain request, and a
    // 101 it sends anyway is not relayed.
    const offered = exchange ? upgradesToOffer(req.headers.upgrade) : undefined;
    let status = 0;
    let switched = false;
    let upstream: ClientRequest;
    res.once('close', () => {
      if (switched) return;
      if (!res.writableFinished) upstream.destroy();
      duplex?.destroy();
      audit(row, req, address, status, path, res.writableFinished ? marks : { aborted: true, ...marks });
    });
    const send = (retried: boolean) => {
      const headers = requestHeaders(req, forwarding(req, address, offered, cookies));
      // Two literal shapes rather than a spread: this runs for every request of every link.
      upstream = duplex
        ? httpRequest({ createConnection: () => duplex, host: 'link', method: req.method, path: target, headers })
        : httpRequest({ agent: poolOf(row), host: 'link', method: req.method, path: target, headers });
      upstream.once('response', (answer) => {
        status = answer.statusCode ?? 502;
        res.writeHead(status, answer.statusMessage, responseHeaders(answer.rawHeaders, answer.headers.connection, cookies));
        // pipe, not pipeline: pipeline costs an AbortSignal (and a DOMException) per request on this hot path.
        answer.on('error', () => res.destroy());
        answer.pipe(res);
      });
      if (exchange) {
        upstream.once('upgrade', (answer, socket, head) => {
          if (offered!.length === 0) {
            // A switch nobody asked for: its bytes would pass unread. Node emits 'upgrade' for any 101 it is given.
            socket.destroy();
            status = 502;
            res.shouldKeepAlive = false;
            const refused = refusal(req, 502, new ConnectError('PROTOCOL_ERROR', 'The service behind this link switched protocols without being asked to; the connection was closed.'));
            return void res.writeHead(refused.status, refused.headers).end(refused.body);
          }
          switched = true;
          audit(row, req, address, 101, path, marks);
          exchange.switchProtocols(switchingHead(answer.statusMessage, answer.rawHeaders, cookies), socket, head, idleMs);
        });
      }
      upstream.on('error', (err) => {
        if (switched) return;
        if (res.headersSent) return void res.destroy();
        // A kept-alive stream the service closed just as it was reused: a request without a body is sent again once.
        if (!retried && bodiless && upstream.reusedSocket && !(err instanceof ConnectError) && !cache.isGone(row.id)) return send(true);
        const failed = upstreamFailure(row, err);
        status = failed.status;
        const answer = refusal(req, failed.status, failed.error);
        res.writeHead(answer.status, answer.headers).end(answer.body);
      });
      if (bodiless || exchange) {
        req.resume();
        upstream.end();
      }
      else {
        req.on('error', () => upstream.destroy());
        req.pipe(upstream);
      }
    };
    send(false);
  };

  /** An Upgrade request: answered on its own socket (link-upgrade.ts), then served like any other. */
  const serveUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const exchange = await exchangeOnSocket(req, socket, head);
    if (!exchange) return;
    exchange.res.on('error', noop);
    await serve(req, exchange.res, exchange);
  };

  return {
    matches: (req) => linkAddress(req, config.publicBaseDomain) !== undefined,

    handle(req, res) {
      req.on('error', noop);
      res.on('error', noop);
      serve(req, res).catch((err: unknown) => {
        log.error({ err }, 'public link request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end('internal error\n');
        else res.destroy();
      });
    },

    upgrade(req, socket, head) {
      socket.on('error', noop);
      req.on('error', noop);
      serveUpgrade(req, socket, head).catch((err: unknown) => {
        log.error({ err }, 'public link upgrade failed');
        socket.destroy();
      });
    },
  };
}
