/**
 * Authentication for HTTP routes, installed once on the hub's Fastify instance: the session cookie's name on the
 * wire, the CSRF rule of /v1 (auth/csrf.ts), and the caller of each request as `request.principal`.
 *
 * How a route uses it (new /v1 routes MUST follow this; the cross-workspace battery fails for a route without it):
 *
 *   app.delete('/v1/things/:id', { onRequest: requires('things.manage') }, async (request) => {
 *     const principal = callerOf(request);     // set by requires(); the workspace always comes from here
 *     ...
 *   });
 *
 * `requires` runs as an onRequest hook: who is asking, and whether they may, is settled before the body, query or
 * params are validated, so a stranger learns nothing about the schema (the rate limit's own onRequest hook, added
 * when the route is registered, still runs first). The same hook works as a preHandler. Routes that act in a
 * workspace named by the URL or body call `request.authenticate(workspace)` and authorize themselves.
 */

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import type { Principal } from '../store/credentials.js';
import { authorize, type Action } from './guard.js';
import { installCsrfGuard, type OriginPolicy } from './csrf.js';
import { principalOf, type AuthDeps } from './principal.js';
import { installSessionCookieName } from './session-cookie.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, once `requires(...)` or `authenticate()` has worked it out; null before. */
    principal: Principal | null;
    /**
     * Works out the caller (bearer credential or session cookie) and sets `principal`; a later call in the same
     * request answers from it. A signed-in user acts in `workspace` when given, else in the X-Workspace-Id header's,
     * else in their first workspace. Throws UNAUTHORIZED, TOKEN_EXPIRED or SESSION_EXPIRED.
     */
    authenticate(workspace?: string): Promise<Principal>;
  }
}

/** What the plugin needs of the hub. */
export interface AuthOptions extends AuthDeps {
  /** The hub's own origins: only their pages may change state with the session cookie. */
  origins: OriginPolicy;
  /** HUB_PUBLIC_URL is https://: the session cookie is `__Host-pc_session` whatever the request's scheme. */
  httpsPublicUrl: boolean;
}

/**
 * Installs the session cookie's naming, the CSRF rule and `request.principal` / `request.authenticate` on `app`.
 * Call it on the root instance, right after the cookie plugin and before any route.
 */
export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const deps: AuthDeps = { db: options.db, clock: options.clock, onAuthFailure: options.onAuthFailure };
  installSessionCookieName(app, { httpsPublicUrl: options.httpsPublicUrl });
  installCsrfGuard(app, options.origins);
  app.decorateRequest('principal', null);
  app.decorateRequest('authenticate', async function (this: FastifyRequest, workspace?: string): Promise<Principal> {
    // A credential answers for one workspace per request: reuse it unless another workspace is asked for.
    const known = this.principal;
    if (known && (workspace === undefined || workspace === known.workspaceId)) return known;
    const principal = await principalOf(this, deps, workspace);
    this.principal = principal;
    return principal;
  });
}

/**
 * A route hook that authenticates the caller and refuses (FORBIDDEN) unless it may perform every one of `actions`
 * (auth/guard.ts). Use it as the route's `onRequest`; read the caller in the handler with `callerOf(request)`.
 */
export function requires(...actions: [Action, ...Action[]]): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const principal = await request.authenticate();
    for (const action of actions) authorize(principal, action);
  };
}

/** The caller `requires` settled for this request; UNAUTHORIZED when the route has no `requires` hook. */
export function callerOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  if (!principal) throw new ConnectError('UNAUTHORIZED', 'missing credentials');
  return principal;
}
