/**
 * Public links served by the hub as an HTTP reverse proxy through the tunnel. `matches` decides, before Fastify
 * routing, whether a request is for a link (`/l/<token>/...`, or a Host of `<token>.<PUBLIC_BASE_DOMAIN>`);
 * `handle` and `upgrade` serve it. No login: the token is the key. In order, a request is answered by the hub
 * with 404 (no such link), 410 (expired or revoked), 405 (method), 403 (path), 429 (rate, with Retry-After) or
 * 502 (the exposing agent is offline or refused the stream); otherwise it goes to the service over a stream,
 * bodies streamed both ways with backpressure (pipe; nothing is buffered whole). Streams are kept alive and
 * reused between requests of the same link (one keep-alive pool per link, like any reverse proxy's upstream
 * pool), so a request costs a stream open only when no idle one is there. An Upgrade (WebSocket)
 * passes the same checks, then its bytes are piped both ways. Every request of a known link is written to the
 * owner's audit log (`link.access`: ip, method, path, status). A request with no bytes either way for
 * PUBLIC_LINK_IDLE_TIMEOUT is cut; slow headers and bodies are bounded by the server's headersTimeout and
 * requestTimeout (set in hub.ts).
 */

import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import { ConnectError, checkHttpRequest, normalizePath } from '@private-connect/protocol';
import type { StreamTarget } from '../relay/router.js';
import type { SharingContext } from './context.js';
import { linkAddress, rawRefusal, refusal, requestHeaders, responseHeaders, type LinkAddress } from './link-http.js';
import { MAX_LINK_LOOKUPS_PER_MIN, isLinkToken, linkCache, linkState, type LinkRow } from './links.js';


export interface LinkProxy {
  matches(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** A request that passed every check: its link, the service's agent, the target to forward. */
interface Admitted {
  row: LinkRow;
  conn: StreamTarget;
  target: string;
}

/** What `admit` answers: a pass, or a refusal (with the link when there is one, for the audit log). */
type Refusal = { ok: false; status: number; error: ConnectError; row?: LinkRow; headers?: Record<string, string> };
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
      return { ok: false, status: check.error.status, row, error: check.error, headers };
    }
    if (row.rate_per_min) {
      const wait = sharing.rates.take(`link:${row.id}`, row.rate_per_min, Date.now());
      if (wait > 0) return { ok: false, status: 429, row, error: new ConnectError('RATE_LIMITED', `This link allows ${row.rate_per_min} requests a minute; try again in ${wait} s.`), headers: { 'retry-after': String(wait) } };
    }
    const conn = sharing.router.get(row.workspace_id, row.service_name);
    if (!conn || conn.state !== 'open') return { ok: false, status: 502, row, error: new ConnectError('SERVICE_OFFLINE', 'The machine that serves this link is not connected to the hub right now; try again later.') };
    return { ok: true, admitted: { row, conn, target: check.target } };
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

  /** Writes one `link.access` event for a request of a known link. */
  const audit = (row: LinkRow, req: IncomingMessage, address: LinkAddress, status: number, extra: Record<string, unknown> = {}) => {
    const raw = address.target.split('?')[0]!;
    const path = (normalizePath(raw) ?? raw).slice(0, 512);
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

  const forwarding = (req: IncomingMessage, address: LinkAddress, upgrade: boolean) => ({
    ip: sharing.clientIp(req),
    proto: ('encrypted' in req.socket && req.socket.encrypted) || config.publicUrl?.startsWith('https:') ? ('https' as const) : ('http' as const),
    prefix: address.prefix,
    upgrade,
  });

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const address = linkAddress(req, config.publicBaseDomain)!;
    // No bytes either way for idleMs (slow client, stalled body, silent service): the connection is cut.
    res.setTimeout(idleMs, () => req.socket.destroy());
    const refuse = (refused: Refusal) => {
      const answer = refusal(req, refused.status, refused.error, refused.headers);
      if (refused.row) audit(refused.row, req, address, refused.status, { code: refused.error.code });
      res.writeHead(answer.status, answer.headers).end(req.method === 'HEAD' ? undefined : answer.body);
    };
    const verdict = await admit(req, address);
    if (!verdict.ok) return refuse(verdict);
    const { row, target } = verdict.admitted;
    if (address.bare && (req.method === 'GET' || req.method === 'HEAD')) {
      // `/l/<token>` → `/l/<token>/`, so that the app's relative URLs resolve under the link.
      audit(row, req, address, 308);
      res.writeHead(308, { location: `${address.prefix}${target}`, 'cache-control': 'no-store', 'content-length': '0' }).end();
      return;
    }
    if (res.destroyed) return;
    const bodiless = (req.method === 'GET' || req.method === 'HEAD') && !req.headers['content-length'] && !req.headers['transfer-encoding'];
    let status = 0;
    let upstream: ClientRequest;
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
      audit(row, req, address, status, res.writableFinished ? {} : { aborted: true });
    });
    const send = (retried: boolean) => {
      upstream = httpRequest({ agent: poolOf(row), host: 'link', method: req.method, path: target, headers: requestHeaders(req, forwarding(req, address, false)) });
      upstream.once('response', (answer) => {
        status = answer.statusCode ?? 502;
        res.writeHead(status, answer.statusMessage, responseHeaders(answer.rawHeaders, answer.headers.connection, address.mode));
        // pipe, not pipeline: pipeline costs an AbortSignal (and a DOMException) per request on this hot path.
        answer.on('error', () => res.destroy());
        answer.pipe(res);
      });
      upstream.on('error', (err) => {
        if (res.headersSent) return void res.destroy();
        // A kept-alive stream the service closed just as it was reused: a request without a body is sent again once.
        if (!retried && bodiless && upstream.reusedSocket && !(err instanceof ConnectError) && !cache.isGone(row.id)) return send(true);
        const failed = upstreamFailure(row, err);
        status = failed.status;
        const answer = refusal(req, failed.status, failed.error);
        res.writeHead(answer.status, answer.headers).end(answer.body);
      });
      if (bodiless) {
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

  const serveUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const address = linkAddress(req, config.publicBaseDomain)!;
    const refuse = (refused: Refusal) => {
      if (refused.row) audit(refused.row, req, address, refused.status, { code: refused.error.code, upgrade: true });
      socket.end(rawRefusal(refusal(req, refused.status, refused.error, refused.headers)));
    };
    const verdict = await admit(req, address);
    if (!verdict.ok) return refuse(verdict);
    const opened = await open(req, verdict.admitted);
    if (!opened.ok) return refuse(opened);
    const duplex = opened.duplex;
    if (socket.destroyed) return void duplex.destroy();
    const { row, target } = verdict.admitted;

    // The request head as the client sent it (minus what the proxy replaces), then the bytes of both sides as they come.
    const headers = requestHeaders(req, forwarding(req, address, true));
    const lines = [`${req.method} ${target} HTTP/1.1`];
    for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
    duplex.write(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'));
    if (head.length > 0) duplex.write(head);
    duplex.once('data', (chunk: Buffer) => {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.subarray(0, 16).toString('latin1'));
      audit(row, req, address, status ? Number(status[1]) : 0, { upgrade: true });
    });
    // Either side failing (or the link revoked) ends both; each direction ends on its own otherwise.
    let done = 0;
    const finished = (err?: Error | null) => {
      if (err || ++done === 2) {
        socket.destroy();
        duplex.destroy();
      }
    };
    (socket as Socket).setTimeout?.(idleMs, () => finished(new Error('idle')));
    pipeline(socket, duplex, finished);
    pipeline(duplex, socket, finished);
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
      serveUpgrade(req, socket, head).catch((err: unknown) => {
        log.error({ err }, 'public link upgrade failed');
        socket.destroy();
      });
    },
  };
}
