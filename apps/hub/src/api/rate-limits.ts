/**
 * Rate limits (@fastify/rate-limit stores, our hooks): every API request per credential; login / magic-link routes
 * per IP and per email; device-code routes per IP (and email when sent); refused agent WebSocket upgrades per IP.
 * An exceeded limit answers 429 with Retry-After and `{ error: { code: 'RATE_LIMITED', message } }`.
 *
 * Which routes get which limit is decided here, when the route is registered (so install this before any route):
 *   - every route but /healthz and /metrics: `api` per credential (API key, agent token or session, by hash
 *     prefix; the client IP when there is none);
 *   - LOGIN_ROUTE paths, or a route with `config: { limit: 'login' }`: also `loginPerIp` and `loginPerEmail`
 *     (body.email, so the check runs in preHandler, after the body is parsed);
 *   - DEVICE_ROUTE paths, or `config: { limit: 'device' }`: also `devicePerIp` (and `loginPerEmail` on body.email);
 *   - `config: { limit: 'none' }`: no limit at all (health checks only).
 * Failed credentials: a request answered UNAUTHORIZED, SESSION_EXPIRED or TOKEN_EXPIRED (missing, unknown, expired
 * or revoked credentials) counts against its client address (`authFailuresPerIp`); past that limit every limited
 * route answers that address 429 before looking at its credentials. Without it, a made-up bearer or cookie on each
 * request would buy a fresh `api` bucket every time and a flood would never be limited.
 */

import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import rateLimitPlugin from '@fastify/rate-limit';
import { ConnectError } from '@private-connect/protocol';
import type { RateLimit, RateLimits } from '../config.js';
import { createFailureLimiter } from '../auth/failure-limiter.js';

/** Per-route choice of limits, set as `config: { limit: ... }` in the route options. */
export type RouteLimit = 'login' | 'device' | 'none';

/** Paths that start a login or follow a magic link: limited per IP and per email. */
export const LOGIN_ROUTE = /^\/v1\/auth\/(login|magic|verify|callback|invite)/;
/** Device-code flow paths (`connect up` without credentials). */
export const DEVICE_ROUTE = /^\/v1\/(auth\/)?device(\/|$)/;
const UNLIMITED = new Set(['/healthz', '/metrics']);

type Check = (request: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; ttlInSeconds?: number; max?: number }>;

/** The key of the caller's credential: a hash prefix of the bearer secret or session cookie, else the IP. */
export function credentialKey(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  const secret = auth ? /^Bearer\s+(\S+)/i.exec(auth)?.[1] : undefined;
  if (secret) return `cred:${hashPrefix(secret)}`;
  const session = /(?:^|;\s*)pc_session=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
  if (session) return `session:${hashPrefix(session)}`;
  return `ip:${request.ip}`;
}

function hashPrefix(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 24);
}

function emailOf(request: FastifyRequest): string | undefined {
  const email = (request.body as { email?: unknown } | undefined)?.email;
  return typeof email === 'string' && email.length > 0 ? email.trim().toLowerCase() : undefined;
}

/** The 429 every limit answers with; Retry-After is set on the reply. */
function limited(reply: FastifyReply, retryAfterSeconds: number, what: string): ConnectError {
  const seconds = Math.max(1, retryAfterSeconds);
  void reply.header('retry-after', String(seconds));
  return new ConnectError('RATE_LIMITED', `too many ${what}; try again in ${seconds} s`);
}

/** Error codes of a request whose credentials were missing, unknown, expired or revoked. */
const AUTH_FAILURES = new Set(['UNAUTHORIZED', 'SESSION_EXPIRED', 'TOKEN_EXPIRED']);

/** Registers the plugin and the hook that attaches limits to each route registered afterwards. */
export async function installRateLimits(app: FastifyInstance, limits: RateLimits): Promise<void> {
  await app.register(rateLimitPlugin, { global: false });
  const make = (limit: RateLimit, keyGenerator: (request: FastifyRequest) => string): Check =>
    app.createRateLimit({ max: limit.max, timeWindow: limit.windowMs, keyGenerator }) as unknown as Check;

  const api = make(limits.api, credentialKey);
  const loginIp = make(limits.loginPerIp, (r) => r.ip);
  const loginEmail = make(limits.loginPerEmail, (r) => emailOf(r) ?? '');
  const deviceIp = make(limits.devicePerIp, (r) => r.ip);

  const run = async (request: FastifyRequest, reply: FastifyReply, check: Check, what: string): Promise<void> => {
    const result = await check(request);
    if (!result.isAllowed && result.isExceeded) throw limited(reply, result.ttlInSeconds ?? 1, what);
  };
  const authFailures = createFailureLimiter(limits.authFailuresPerIp);
  // Counted where every refusal passes (thrown by principalOf or a route's own check), by the address it came from.
  app.addHook('onError', async (request, _reply, err) => {
    if (AUTH_FAILURES.has(String((err as { code?: unknown }).code))) authFailures.fail(request.ip);
  });
  const apiHook = async (request: FastifyRequest, reply: FastifyReply) => {
    const wait = authFailures.retryAfter(request.ip);
    if (wait > 0) throw limited(reply, wait, 'requests with unknown or failed credentials from this address');
    await run(request, reply, api, 'requests with these credentials');
  };
  const loginHook = async (request: FastifyRequest, reply: FastifyReply) => {
    await run(request, reply, loginIp, 'sign-in attempts from this address');
    if (emailOf(request)) await run(request, reply, loginEmail, 'sign-in attempts for this email');
  };
  const deviceHook = async (request: FastifyRequest, reply: FastifyReply) => {
    await run(request, reply, deviceIp, 'device sign-in requests from this address');
    if (emailOf(request)) await run(request, reply, loginEmail, 'sign-in attempts for this email');
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    const choice = (route.config as { limit?: RouteLimit } | undefined)?.limit;
    if (choice === 'none' || UNLIMITED.has(route.url)) return;
    route.onRequest = [apiHook, ...toArray(route.onRequest)];
    const kind = choice ?? (LOGIN_ROUTE.test(route.url) ? 'login' : DEVICE_ROUTE.test(route.url) ? 'device' : undefined);
    if (kind === 'login') route.preHandler = [loginHook, ...toArray(route.preHandler)];
    if (kind === 'device') route.preHandler = [deviceHook, ...toArray(route.preHandler)];
  });
}

function toArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
