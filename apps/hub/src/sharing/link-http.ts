/**
 * The HTTP pieces of the public-link proxy: where a request points (path or subdomain mode), the headers passed on
 * each way (hop-by-hop dropped, X-Forwarded-* set, the hub's session cookie kept out of both directions), and
 * the refusal answered by the hub itself (a small HTML page, or JSON for clients that ask for it).
 */

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { ConnectError } from '@private-connect/protocol';
import type { HubConfig } from '../config.js';
import { html, page } from '../pages/html.js';
import { SESSION_COOKIE } from '../store/sessions.js';
import { isLinkToken } from './links.js';

/** Where a link request points: its token, the request target to forward, and the path prefix it came under. */
export interface LinkAddress {
  token: string;
  /** The request target to check and forward: in path mode what follows `/l/<token>`, starting with `/`. */
  target: string;
  /** Path mode without a `/` after the token (`/l/<token>` or `/l/<token>?q`): GET and HEAD are redirected. */
  bare?: boolean;
  mode: 'path' | 'subdomain';
  /** `/l/<token>` in path mode (stripped from the forwarded target, sent as X-Forwarded-Prefix). */
  prefix?: string;
}

/**
 * The link a request is for, or undefined when it is not for a link. A Host of `<token>.<PUBLIC_BASE_DOMAIN>`
 * wins (its whole path belongs to the app); otherwise a target starting with `/l/` is path mode, whatever follows.
 */
export function linkAddress(req: IncomingMessage, baseDomain: string | undefined): LinkAddress | undefined {
  const url = req.url ?? '';
  if (baseDomain) {
    const host = (req.headers.host ?? '').toLowerCase();
    const name = baseDomain.includes(':') ? host : host.replace(/:\d{1,5}$/, '');
    if (name.endsWith(`.${baseDomain}`)) {
      const label = name.slice(0, -baseDomain.length - 1);
      if (isLinkToken(label)) return { token: label, target: url, mode: 'subdomain' };
    }
  }
  if (!url.startsWith('/l/')) return undefined;
  const end = url.slice(3).search(/[/?]/);
  const token = end < 0 ? url.slice(3) : url.slice(3, 3 + end);
  const rest = end < 0 ? '' : url.slice(3 + end);
  const bare = !rest.startsWith('/');
  return { token, target: bare ? `/${rest}` : rest, mode: 'path', prefix: `/l/${token}`, ...(bare ? { bare } : {}) };
}

/** The URLs of a link: path mode on the hub's public URL (or `fallbackBase`), subdomain mode with PUBLIC_BASE_DOMAIN. */
export function linkUrls(config: Pick<HubConfig, 'publicUrl' | 'publicBaseDomain'>, token: string, fallbackBase: string): { url: string; subdomainUrl: string | null } {
  const base = (config.publicUrl ?? fallbackBase).replace(/\/+$/, '');
  const scheme = base.startsWith('https:') ? 'https' : 'http';
  return { url: `${base}/l/${token}/`, subdomainUrl: config.publicBaseDomain ? `${scheme}://${token}.${config.publicBaseDomain}/` : null };
}

/** Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection and are never passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** Request headers the proxy sets itself (a client's own values would be believed upstream). */
const SET_BY_PROXY = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-prefix', 'expect']);

/** Header names listed in Connection (also hop-by-hop). */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  return new Set([value ?? ''].flat().flatMap((v) => v.split(',')).map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** Removes the hub's session cookie from a Cookie header value; undefined when nothing is left. */
function withoutSessionCookie(value: string): string | undefined {
  const kept = value.split(';').filter((part) => part.trim().split('=')[0] !== SESSION_COOKIE);
  const out = kept.join(';').trim();
  return out === '' ? undefined : out;
}

export interface Forwarding {
  /** The client's address (appended to X-Forwarded-For). */
  ip: string | undefined;
  proto: 'http' | 'https';
  /** X-Forwarded-Prefix (path mode). */
  prefix?: string;
  /** Keep Connection/Upgrade: a WebSocket (or other Upgrade) request passes through. */
  upgrade?: boolean;
}

/** The request headers to send upstream, as a flat raw list (names keep their case, repeats stay). */
export function requestHeaders(req: IncomingMessage, fwd: Forwarding): string[] {
  const drop = connectionTokens(req.headers.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || (drop.has(lower) && !(fwd.upgrade && lower === 'upgrade'))) continue;
    if (lower === 'cookie') {
      const value = withoutSessionCookie(raw[i + 1]!);
      if (value !== undefined) out.push(name, value);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  if (fwd.upgrade) out.push('Connection', 'Upgrade', 'Upgrade', String(req.headers.upgrade ?? ''));
  // A chunked body stays chunked (the proxy re-frames it); a Content-Length body keeps its length.
  else if (req.headers['transfer-encoding'] !== undefined) out.push('Transfer-Encoding', 'chunked');
  const before = req.headers['x-forwarded-for'];
  const chain = [before ?? []].flat().join(', ');
  if (fwd.ip) out.push('X-Forwarded-For', chain ? `${chain}, ${fwd.ip}` : fwd.ip);
  out.push('X-Forwarded-Proto', fwd.proto);
  if (req.headers.host) out.push('X-Forwarded-Host', req.headers.host);
  if (fwd.prefix) out.push('X-Forwarded-Prefix', fwd.prefix);
  return out;
}

/**
 * The response headers to send back, as a flat raw list. In path mode the app shares the hub's origin: it may
 * not set the hub's session cookie, and its pages get a CSP sandbox (an opaque origin: scripts run, but cannot
 * act as the hub's signed-in user). Subdomain mode has its own origin and is passed through as it is.
 */
export function responseHeaders(rawHeaders: string[], connection: string | string[] | undefined, mode: LinkAddress['mode']): string[] {
  const drop = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower)) continue;
    if (mode === 'path' && lower === 'set-cookie' && rawHeaders[i + 1]!.trim().split('=')[0]!.trim() === SESSION_COOKIE) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  if (mode === 'path') out.push('Content-Security-Policy', PATH_MODE_SANDBOX);
  return out;
}

/** The sandbox path-mode pages run in: everything an app usually needs except the hub's origin. */
export const PATH_MODE_SANDBOX = 'sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-downloads allow-modals';

const TITLES: Record<number, string> = {
  400: 'Bad request',
  403: 'This path is not part of the link',
  404: 'There is no such link',
  405: 'This method is not allowed on the link',
  408: 'The request took too long',
  410: 'This link has expired or was revoked',
  429: 'Too many requests',
  500: 'Something went wrong',
  502: 'The service behind this link is not available',
  504: 'The service behind this link did not answer in time',
};

/** A refusal by the hub: status, headers and body; JSON when the client asks for `application/json`. */
export function refusal(req: IncomingMessage, status: number, error: ConnectError, extra: Record<string, string> = {}): { status: number; headers: Record<string, string>; body: Buffer } {
  const json = /application\/json/i.test(String(req.headers.accept ?? ''));
  const body = Buffer.from(
    json
      ? JSON.stringify({ error: error.toJSON() })
      : page(TITLES[status] ?? STATUS_CODES[status] ?? 'Error', html`<h1>${TITLES[status] ?? STATUS_CODES[status]}</h1><p class="error">${error.message}</p><p class="muted">${status} · ${error.code} · Private Connect public link</p>`),
  );
  return {
    status,
    headers: {
      'content-type': json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
      'content-length': String(body.length),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...extra,
    },
    body,
  };
}

/** A refusal as raw HTTP/1.1 bytes, for an Upgrade request (there is no ServerResponse for it). */
export function rawRefusal(answer: ReturnType<typeof refusal>): Buffer {
  const lines = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}`, ...Object.entries(answer.headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', ''];
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), answer.body]);
}
