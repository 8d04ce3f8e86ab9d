/**
 * Sign-in by magic link: POST /v1/auth/login mails a single-use link, POST /v1/auth/verify turns it into a session
 * cookie (creating the user and a personal workspace on first sign-in, or joining an invited workspace),
 * POST /v1/auth/logout ends the session. A GET never signs in (login CSRF: another site could make a browser open
 * the attacker's own link): GET /v1/auth/verify only leads to the sign-in page, whose button posts the token.
 */

import { ROUTE_SCHEMAS, type LoginLinkSent } from '@private-connect/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import type { Mailer } from '../mailer.js';
import { recordAudit } from '../store/audit.js';
import { createMagicLink, MAX_LINK_TOKEN } from '../store/magic-links.js';
import { listUserWorkspaces } from '../store/members.js';
import { revokeSession, SESSION_COOKIE, SESSION_IDLE_MS } from '../store/sessions.js';
import { signInWithLink } from '../store/sign-in.js';
import { MAX_EMAIL, normalizeEmail, type RequestMeta } from '../store/users.js';
import type { ApiDeps } from './deps.js';
import { checkOrigin, type OriginPolicy } from '../auth/csrf.js';
import { endSessionEventStreams } from './event-routes.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

export interface IdentityDeps extends ApiDeps {
  mailer: Mailer;
  /** Base URL links point at: HUB_PUBLIC_URL, else the URL the hub listens on. */
  linkBase(): string;
  /** Whether the hub is served over TLS (HUB_PUBLIC_URL is https://): cookies get Secure. */
  tlsPublicUrl: boolean;
  /** The hub's own origins: only their pages may open a session or change state with the session cookie. */
  origins: OriginPolicy;
}

/**
 * The link a sign-in or invitation mail carries: the hub's /auth/verify page, which signs in on a button press (a
 * mail scanner that fetches the link does not use it up). `next` is where the browser goes afterwards.
 */
export function verifyLink(deps: IdentityDeps, token: string, next?: string): string {
  const after = next && next !== '/' ? `&next=${encodeURIComponent(next)}` : '';
  return `${deps.linkBase().replace(/\/+$/, '')}/auth/verify?token=${encodeURIComponent(token)}${after}`;
}

/** Only a path on this hub may follow sign-in (no `//host`, no scheme): anything else becomes `/`. */
export function safeNext(value: unknown): string {
  if (typeof value !== 'string' || value.length > 512) return '/';
  return /^\/(?![\/\\])[^\s\\]*$/.test(value) ? value : '/';
}

/** Creates a single-use sign-in link for `email` and mails it (or prints it, without SMTP). */
export async function sendLoginLink(deps: IdentityDeps, rawEmail: unknown, next?: string): Promise<{ email: string; expiresAt: Date }> {
  const email = normalizeEmail(rawEmail);
  const { token, expiresAt } = await createMagicLink(deps.db, { email, purpose: 'login' }, deps.clock.now());
  await deps.mailer.send({ to: email, subject: 'Sign in to Private Connect', intro: 'Open this link to sign in. It works once, for 15 minutes.', link: verifyLink(deps, token, next) });
  return { email, expiresAt };
}

/** Uses a sign-in link and sets the session cookie on the reply. */
export async function openSession(deps: IdentityDeps, token: unknown, request: FastifyRequest, reply: FastifyReply): Promise<SignedIn> {
  if (typeof token !== 'string' || token === '' || token.length > MAX_LINK_TOKEN) throw new ConnectError('UNAUTHORIZED', 'this sign-in link is not valid; ask for a new one');
  const result = await signIn(deps, token, requestMeta(request));
  void reply.setCookie(SESSION_COOKIE, result.session, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: deps.tlsPublicUrl || request.protocol === 'https',
    maxAge: Math.floor(SESSION_IDLE_MS / 1000),
  });
  return result;
}

export function requestMeta(request: FastifyRequest): RequestMeta {
  return { ip: request.ip, userAgent: request.headers['user-agent'] };
}

/** A `token` in a JSON body, the other way to hand POST /v1/auth/verify its token. */
const tokenOf = (body: unknown): unknown => (typeof body === 'object' && body !== null && 'token' in body ? body.token : undefined);

export function registerAuthRoutes(app: FastifyInstance, deps: IdentityDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  // 202 whether or not the address has an account: the answer never tells who is a user.
  api.post('/v1/auth/login', { schema: ROUTE_SCHEMAS['POST /v1/auth/login'] }, async (request, reply): Promise<LoginLinkSent> => {
    const { email, expiresAt } = await sendLoginLink(deps, request.body.email);
    void reply.status(202);
    return { sent: true, expiresAt: expiresAt.toISOString(), message: `if ${email} can sign in, a link is on its way` };
  });

  // Links mailed before the sign-in page existed pointed here: the page, with its button, and the link stays unused.
  api.get('/v1/auth/verify', { schema: ROUTE_SCHEMAS['GET /v1/auth/verify'] }, async (request, reply) => {
    const token = request.query.token ?? '';
    return reply.redirect(`/auth/verify?token=${encodeURIComponent(token)}`, 303);
  });

  api.post('/v1/auth/verify', { schema: ROUTE_SCHEMAS['POST /v1/auth/verify'] }, async (request, reply) => {
    // A script (the SDK's signIn) sends no browser headers; a browser must be on one of the hub's own pages.
    checkOrigin(request, deps.origins, 'script-allowed');
    const { session: _session, ...answer } = await openSession(deps, request.query.token ?? tokenOf(request.body), request, reply);
    return answer;
  });

  api.post('/v1/auth/logout', { schema: ROUTE_SCHEMAS['POST /v1/auth/logout'] }, async (request, reply) => {
    const cookie = request.cookies[SESSION_COOKIE];
    if (cookie) await revokeSession(deps.db, cookie, deps.clock.now());
    if (cookie) endSessionEventStreams(deps.events, cookie);
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    void reply.status(204);
  });
}

export interface SignedIn {
  session: string;
  userId: string;
  email: string;
  workspaceId: string;
  newUser: boolean;
}

/** Uses the link and opens a session, all in one transaction: a failure leaves the link unused. */
async function signIn(deps: IdentityDeps, token: string, meta: RequestMeta): Promise<SignedIn> {
  const now = deps.clock.now();
  const signedIn = await signInWithLink(deps.db, token, now, meta);
  const workspaces = await listUserWorkspaces(deps.db, signedIn.userId);
  const workspaceId = signedIn.workspaceId ?? workspaces[0]?.id;
  if (!workspaceId) throw new ConnectError('INTERNAL', 'the user has no workspace');
  await deps.db.withWorkspace(workspaceId, (tx) =>
    recordAudit(tx, workspaceId, { actorType: 'user', actorId: signedIn.userId, action: 'login', targetType: 'user', targetId: signedIn.userId, ...meta }),
  );
  return { ...signedIn, workspaceId };
}
