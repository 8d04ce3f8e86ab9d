/**
 * Cross-site request forgery: a browser sends the session cookie with a request whatever page makes it, so a page
 * of another site, or of the hub's own site (a public link served as `<token>.<PUBLIC_BASE_DOMAIN>`), could make a
 * signed-in admin create keys, shares, links and invitations. The rules:
 *   - /v1 takes JSON bodies only, for every credential: a form or text/plain body (what a cross-site <form> can
 *     send without a CORS preflight) is refused with 400 BAD_REQUEST;
 *   - a /v1 request that changes state (any method but GET, HEAD, OPTIONS) and rides on the session cookie must say
 *     `Content-Type: application/json` (which no cross-origin page can send without a preflight the hub never
 *     grants) and come from one of the hub's own origins (`Sec-Fetch-Site: same-origin`, or an Origin that is the
 *     API port's, the web port's, HUB_PUBLIC_URL's or the one the browser reached this hub at); otherwise 403 CSRF;
 *   - a request that opens a session (POST /v1/auth/verify, the sign-in page's button) passes the same Origin rule,
 *     so that another site cannot sign a browser into the attacker's account (login CSRF).
 * Bearer credentials (API keys, agent tokens) are never sent by a browser on its own: they are not checked here.
 */

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import { bearer } from '../store/credentials.js';
import { SESSION_COOKIE } from '../store/sessions.js';

/** Methods that never change state (the hub keeps it that way): no check. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The hub's own origins, known from its configuration and its listening addresses. */
export interface OriginPolicy {
  /** HUB_PUBLIC_URL, the API port's URL and the web port's URL (read at request time: ports are known after listen). */
  configured(): ReadonlyArray<string | undefined>;
  /** PUBLIC_BASE_DOMAIN: a Host under it is a public link's, never the hub's own origin. */
  publicBaseDomain?: string;
}

/** How strictly a request without Origin and Sec-Fetch-Site is treated. */
export type OriginMode =
  /** Refused: a browser request riding on the session cookie (browsers send Origin with every POST). */
  | 'browser'
  /** Let through: no browser header at all is a script (the SDK's signIn), which no other site can drive. */
  | 'script-allowed';

/** The origin of a URL, or undefined when it is not one. */
function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** The hub's own origins for this request: the configured ones and the scheme and Host the browser used. */
export function ownOrigins(request: FastifyRequest, policy: OriginPolicy): Set<string> {
  const origins = new Set<string>();
  for (const url of policy.configured()) {
    const origin = originOf(url);
    if (origin) origins.add(origin);
  }
  // Host, or X-Forwarded-Host from a proxy TRUST_PROXY trusts (as the scheme comes from X-Forwarded-Proto then).
  const host = request.host || undefined;
  const hostname = host?.toLowerCase().replace(/:\d{1,5}$/, '');
  // A link's subdomain is on the hub's site but is not the hub: its pages must not count as the hub's own.
  const linkHost = policy.publicBaseDomain !== undefined && hostname !== undefined && hostname.endsWith(`.${policy.publicBaseDomain.replace(/:\d+$/, '')}`);
  const served = host && !linkHost ? originOf(`${request.protocol}://${host}`) : undefined;
  if (served) origins.add(served);
  return origins;
}

function refuse(message: string): ConnectError {
  return new ConnectError('CSRF', message);
}

/**
 * Throws CSRF unless the request comes from one of the hub's own pages: `Sec-Fetch-Site: same-origin`, or an
 * Origin among `ownOrigins`. `mode` says what a request carrying neither header is.
 */
export function checkOrigin(request: FastifyRequest, policy: OriginPolicy, mode: OriginMode): void {
  const site = header(request, 'sec-fetch-site');
  const origin = header(request, 'origin');
  if (site === 'same-origin') return;
  if (site === 'cross-site') {
    throw refuse(`this request was sent by a page of another site${origin ? ` (${origin.slice(0, 200)})` : ''}, not by the hub's own pages; it was refused to protect your session`);
  }
  if (origin === undefined) {
    if (mode === 'script-allowed' && site === undefined) return;
    throw refuse("this signed-in request did not say which page sent it (no Origin header), so it was refused to protect your session; use the hub's own pages, or an API key (Authorization: Bearer) in scripts");
  }
  if (!ownOrigins(request, policy).has(origin)) {
    throw refuse(`this request was sent by a page of another site (${origin.slice(0, 200)}), not by the hub's own pages; it was refused to protect your session`);
  }
}

/** True when the request's credential is the session cookie (a bearer, when present, is what authenticates). */
export function ridesOnCookie(request: FastifyRequest): boolean {
  return request.cookies?.[SESSION_COOKIE] !== undefined && bearer(request.headers.authorization) === undefined;
}

/** The media type of the request's Content-Type, lower case, without parameters; undefined without one. */
function mediaType(request: FastifyRequest): string | undefined {
  const value = request.headers['content-type'];
  return value === undefined ? undefined : value.split(';')[0]!.trim().toLowerCase();
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Installs the /v1 rules above as one onRequest hook (before authentication and before any body is read), and a
 * JSON parser that takes an empty body as no body, so that a body-less state change (DELETE, sign-out) can say
 * `Content-Type: application/json` as the cookie rule asks.
 */
export function installCsrfGuard(app: FastifyInstance, policy: OriginPolicy): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    return json(request, body as string, done);
  });

  app.addHook('onRequest', async (request) => {
    // The route's pattern when one matched (what the router decided), else the raw path (a 404 to be).
    const path = request.routeOptions.url ?? request.url;
    if (!path.startsWith('/v1/') || SAFE_METHODS.has(request.method)) return;
    const type = mediaType(request);
    const cookie = ridesOnCookie(request);
    if (cookie) {
      checkOrigin(request, policy, 'browser');
      if (type !== 'application/json') {
        throw refuse('a signed-in request that changes something must be sent as JSON (Content-Type: application/json), as the hub\'s own pages do; forms are refused to protect your session');
      }
    } else if ((type !== undefined || hasBody(request)) && type !== 'application/json') {
      throw new ConnectError('BAD_REQUEST', `the API takes JSON bodies only: send Content-Type: application/json (got ${type ? `"${type.slice(0, 100)}"` : 'none'})`);
    }
  });
}
