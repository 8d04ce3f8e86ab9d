/**
 * The HTTP pieces of the public-link proxy: where a request points (path or subdomain mode), the headers passed on
 * each way (hop-by-hop dropped; X-Forwarded-*, X-Real-IP and Forwarded set by the hub, never the client's; cookies
 * kept to their own link, see link-cookies.ts), and the refusal answered by the hub itself (a small HTML page, or
 * JSON for clients that ask for it).
 */

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { HOP_BY_HOP, connectionTokens, type ConnectError } from '@private-connect/protocol';
import type { HubConfig } from '../config.js';
import { html, page } from '../html.js';
import { cookiesForApp, linkCookiePrefix, pathModeSetCookie, subdomainSetCookie } from './link-cookies.js';
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

/** Where a link's cookies live: path mode, under the link's path with its name prefix; subdomain mode, its own host. */
export type CookieScope = { mode: 'path'; prefix: string; path: string } | { mode: 'subdomain' };

const SUBDOMAIN_SCOPE: CookieScope = { mode: 'subdomain' };

/** Cookie prefixes of the links seen lately, by token (a hash each; kept until there are too many). */
const prefixes = new Map<string, string>();

/** The cookie scope of a link request. */
export function cookieScope(address: LinkAddress): CookieScope {
  if (address.mode !== 'path') return SUBDOMAIN_SCOPE;
  let prefix = prefixes.get(address.token);
  if (prefix === undefined) {
    if (prefixes.size >= 4096) prefixes.clear();
    prefixes.set(address.token, (prefix = linkCookiePrefix(address.token)));
  }
  return { mode: 'path', path: `${address.prefix}/`, prefix };
}

/**
 * The link a request is for, or undefined when it is not for a link. A Host of `<token>.<PUBLIC_BASE_DOMAIN>`
 * wins (its whole path belongs to the app); otherwise a target starting with `/l/` is path mode, whatever follows.
 */
export function linkAddress(req: Pick<IncomingMessage, 'url' | 'headers'>, baseDomain: string | undefined): LinkAddress | undefined {
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

/** Request headers the proxy sets itself (a client's own values would be believed upstream). */
const SET_BY_PROXY = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-prefix', 'x-real-ip', 'forwarded', 'expect']);

/** A Forwarded parameter value (RFC 7239 4): a token as it is, anything else as a quoted-string. */
function forwardedValue(value: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value) ? value : `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/** The Forwarded header the hub sends (RFC 7239): `for` (an IPv6 address in brackets, quoted), `proto`, `host`. */
export function forwardedHeader(ip: string | undefined, proto: 'http' | 'https', host: string | undefined): string {
  const node = ip === undefined ? 'unknown' : ip.includes(':') ? `[${ip}]` : ip;
  return [`for=${forwardedValue(node)}`, `proto=${proto}`, ...(host ? [`host=${forwardedValue(host)}`] : [])].join(';');
}

export interface Forwarding {
  /** The client's address (appended to X-Forwarded-For). */
  ip: string | undefined;
  proto: 'http' | 'https';
  /** X-Forwarded-Prefix (path mode). */
  prefix?: string;
  /** The Upgrade protocols offered to the app (`upgradesToOffer`): set, the request goes with Connection: Upgrade. */
  upgrade?: readonly string[];
  /** Which of the client's cookies the app may see. */
  cookies: CookieScope;
}

/** What the request head is made of: Node's IncomingMessage, or the fast path's request (link-fast.ts). */
type HeadSource = Pick<IncomingMessage, 'rawHeaders' | 'headers'>;

/** The request head to send upstream: request line and headers (requestHeaders) as HTTP/1.1 bytes. */
export function requestHead(method: string, target: string, req: HeadSource, fwd: Forwarding): Buffer {
  const headers = requestHeaders(req, fwd);
  let text = `${method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** The request headers to send upstream, as a flat raw list (names keep their case, repeats stay). */
export function requestHeaders(req: HeadSource, fwd: Forwarding): string[] {
  const drop = connectionTokens(req.headers.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || drop.has(lower)) continue;
    if (lower === 'cookie') {
      const value = cookiesForApp(raw[i + 1]!, fwd.cookies.mode === 'path' ? fwd.cookies.prefix : undefined);
      if (value !== undefined) out.push(name, value);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  if (fwd.upgrade?.length) out.push('Connection', 'Upgrade', 'Upgrade', fwd.upgrade.join(', '));
  // A chunked body stays chunked (the proxy re-frames it); a Content-Length body keeps its length.
  else if (req.headers['transfer-encoding'] !== undefined) out.push('Transfer-Encoding', 'chunked');
  const before = req.headers['x-forwarded-for'];
  const chain = [before ?? []].flat().join(', ');
  if (fwd.ip) out.push('X-Forwarded-For', chain ? `${chain}, ${fwd.ip}` : fwd.ip, 'X-Real-IP', fwd.ip);
  out.push('X-Forwarded-Proto', fwd.proto);
  if (req.headers.host) out.push('X-Forwarded-Host', req.headers.host);
  if (fwd.prefix) out.push('X-Forwarded-Prefix', fwd.prefix);
  out.push('Forwarded', forwardedHeader(fwd.ip, fwd.proto, req.headers.host));
  return out;
}

/** A Set-Cookie value as the client may get it from a link's app (link-cookies.ts); undefined to drop it. */
function scopedSetCookie(value: string, scope: CookieScope): string | undefined {
  return scope.mode === 'path' ? pathModeSetCookie(value, scope.prefix, scope.path) : subdomainSetCookie(value);
}

/**
 * The response headers to send back, as a flat raw list. In path mode the app shares the hub's origin: its cookies
 * are kept to its link (link-cookies.ts), and its pages get a CSP sandbox (an opaque origin: scripts run, but cannot
 * act as the hub's signed-in user). Subdomain mode has its own origin: passed through but for cookies that would
 * reach the hub or other links.
 */
export function responseHeaders(rawHeaders: string[], cookies: CookieScope): string[] {
  const drop = connectionTokens(connectionOf(rawHeaders));
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower)) continue;
    if (lower === 'set-cookie') {
      const value = scopedSetCookie(rawHeaders[i + 1]!, cookies);
      if (value !== undefined) out.push(name, value);
      continue;
    }
    out.push(name, rawHeaders[i + 1]!);
  }
  if (cookies.mode === 'path') out.push('Content-Security-Policy', PATH_MODE_SANDBOX);
  return out;
}

/** The Connection header values of a raw header list. */
function connectionOf(rawHeaders: string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === 10 && rawHeaders[i]!.toLowerCase() === 'connection') values.push(rawHeaders[i + 1]!);
  return values;
}

/** The head of an app's `101 Switching Protocols` as raw bytes: its headers as they are (Connection and Upgrade included), cookies scoped. */
export function switchingHead(statusMessage: string | undefined, rawHeaders: string[], cookies: CookieScope): Buffer {
  const lines = [`HTTP/1.1 101 ${statusMessage || 'Switching Protocols'}`];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const value = rawHeaders[i]!.toLowerCase() === 'set-cookie' ? scopedSetCookie(rawHeaders[i + 1]!, cookies) : rawHeaders[i + 1]!;
    if (value !== undefined) lines.push(`${rawHeaders[i]}: ${value}`);
  }
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
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
export function refusal(req: Pick<IncomingMessage, 'headers'>, status: number, error: ConnectError, extra: Record<string, string> = {}): { status: number; headers: Record<string, string>; body: Buffer } {
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
