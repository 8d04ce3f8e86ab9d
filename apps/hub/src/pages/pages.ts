/**
 * The hub's server-rendered pages, for what must work in a browser before (and without) the dashboard:
 *   /login          ask for a sign-in link
 *   /auth/verify    the page a sign-in link opens; signing in takes a button press, so a mail scanner that
 *                   fetches the link does not use it up
 *   /setup          the first start's one-time setup link: sign in to own the hub's first workspace (setup-page.ts)
 *   /device         approve `connect up` on another machine (device-code flow): shows which machine asks, and
 *                   lets the member pick the workspace it joins
 *   /               who is signed in, and sign out; only without a dashboard build (spa.ts serves it otherwise)
 * No scripts; forms post to the same origin. Session cookies are SameSite=Lax (a cross-site form post carries no
 * cookie), and every form post must come from one of the hub's own origins (auth/csrf.ts: Sec-Fetch-Site
 * same-origin, or the hub's Origin; a same-site public link's page is refused too), so that no other page can sign
 * a browser in, out, or approve a device. The pages may not be framed. Form bodies are parsed here only: the
 * pages are registered in their own plugin context, and /v1 takes JSON alone.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import { ConnectError } from '@private-connect/protocol';
import { openSession, requestMeta, safeNext, sendLoginLink, type IdentityDeps } from '../api/auth-routes.js';
import { authorize } from '../auth/guard.js';
import { checkOrigin as checkCsrfOrigin } from '../auth/csrf.js';
import { endSessionEventStreams } from '../api/event-routes.js';
import { approveDeviceCode, findPendingDeviceCode, normalizeUserCode } from '../store/device-codes.js';
import { listUserWorkspaces } from '../store/members.js';
import { authenticateSession, revokeSession, SESSION_COOKIE, type UserPrincipal } from '../store/sessions.js';
import { html, type SafeHtml } from '../html.js';
import { PAGE_CONFIG, sendPage } from '../page-reply.js';
import { registerSetupPage } from './setup-page.js';
import type { Spa } from './spa.js';

/** The signed-in user (in `workspace` when given), or undefined when there is no valid session. */
async function currentUser(deps: IdentityDeps, request: FastifyRequest, workspace?: string): Promise<UserPrincipal | undefined> {
  const cookie = request.cookies[SESSION_COOKIE];
  if (!cookie) return undefined;
  try {
    return await authenticateSession(deps.db, cookie, workspace, deps.clock.now());
  } catch (err) {
    if (err instanceof ConnectError && (err.code === 'UNAUTHORIZED' || err.code === 'SESSION_EXPIRED')) return undefined;
    throw err;
  }
}

function toLogin(reply: FastifyReply, next: string): FastifyReply {
  return reply.redirect(`/login?next=${encodeURIComponent(next)}`, 303);
}

export async function registerPages(parent: FastifyInstance, deps: IdentityDeps, spa?: Spa): Promise<void> {
  // A context of their own: the form parser registered in it serves these routes and no /v1 route.
  await parent.register(async (app) => {
    await app.register(formbody, { bodyLimit: 8 * 1024 });
    pageRoutes(app, deps, spa);
    registerSetupPage(app, deps, spa);
  });
}

/** A form post of a page: refused (CSRF) unless it comes from one of the hub's own origins. */
function checkOrigin(request: FastifyRequest, deps: IdentityDeps): void {
  checkCsrfOrigin(request, deps.origins, 'browser');
}

function pageRoutes(app: FastifyInstance, deps: IdentityDeps, spa?: Spa): void {
  const config = PAGE_CONFIG;

  app.get('/', { config }, async (request, reply) => {
    if (spa && (await spa.sendIndex(reply))) return reply;
    const user = await currentUser(deps, request);
    if (!user) return sendPage(reply, 200, 'Private Connect', html`<h1>Private Connect</h1><p>This hub connects services across machines.</p><p><a href="/login">Sign in</a></p>`);
    const workspaces = await listUserWorkspaces(deps.db, user.userId);
    return sendPage(
      reply,
      200,
      'Signed in',
      html`<h1>Signed in as ${user.email}</h1>
        <p>Your workspaces:</p><ul>${workspaces.map((w) => html`<li>${w.name} <span class="muted">(${w.role})</span></li>`)}</ul>
        <p class="muted">Enrol a machine with <code>connect up --hub ${deps.linkBase()}</code> and approve it here.</p>
        <form method="post" action="/logout"><button type="submit">Sign out</button></form>`,
    );
  });

  app.get('/login', { config }, async (request, reply) => {
    const next = safeNext((request.query as { next?: unknown }).next);
    return sendPage(reply, 200, 'Sign in', loginForm(next));
  });

  app.post('/login', { config: { ...config, limit: 'login' } }, async (request, reply) => {
    checkOrigin(request, deps);
    const body = (request.body ?? {}) as { email?: unknown; next?: unknown };
    const next = safeNext(body.next);
    try {
      const { email } = await sendLoginLink(deps, body.email, next);
      return sendPage(
        reply,
        202,
        'Check your email',
        html`<h1>Check your email</h1><p class="ok">If ${email} can sign in, a link is on its way. It works once, for 15 minutes.</p>
          <p class="muted">No mail? On a hub without SMTP the link is printed in the hub's output, for its operator.</p>`,
      );
    } catch (err) {
      if (err instanceof ConnectError && err.code === 'BAD_REQUEST') return sendPage(reply, 400, 'Sign in', loginForm(next, err.message));
      throw err;
    }
  });

  app.get('/auth/verify', { config }, async (request, reply) => {
    const query = request.query as { token?: unknown; next?: unknown };
    const token = typeof query.token === 'string' ? query.token : '';
    const next = safeNext(query.next);
    return sendPage(
      reply,
      200,
      'Sign in',
      html`<h1>Sign in to Private Connect</h1>
        <form method="post" action="/auth/verify">
          <input type="hidden" name="token" value="${token}"><input type="hidden" name="next" value="${next}">
          <button type="submit" autofocus>Sign in</button>
        </form>`,
    );
  });

  app.post('/auth/verify', { config: { ...config, limit: 'login' } }, async (request, reply) => {
    checkOrigin(request, deps);
    const body = (request.body ?? {}) as { token?: unknown; next?: unknown };
    try {
      await openSession(deps, body.token, request, reply);
    } catch (err) {
      if (!(err instanceof ConnectError) || err.status !== 401) throw err;
      return sendPage(reply, 401, 'Sign in', html`<h1>This link does not work</h1><p class="error">${err.message}</p><p><a href="/login?next=${encodeURIComponent(safeNext(body.next))}">Ask for a new link</a></p>`);
    }
    return reply.redirect(safeNext(body.next), 303);
  });

  app.post('/logout', { config }, async (request, reply) => {
    checkOrigin(request, deps);
    const cookie = request.cookies[SESSION_COOKIE];
    if (cookie) await revokeSession(deps.db, cookie, deps.clock.now());
    if (cookie) endSessionEventStreams(deps.events, cookie);
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/', 303);
  });

  app.get('/device', { config }, async (request, reply) => {
    const typed = (request.query as { code?: unknown }).code;
    const user = await currentUser(deps, request);
    const here = typeof typed === 'string' && typed !== '' ? `/device?code=${encodeURIComponent(typed.slice(0, 32))}` : '/device';
    if (!user) return toLogin(reply, here);
    return sendPage(reply, 200, 'Approve a device', await deviceForm(deps, user, typed));
  });

  app.post('/device', { config: { ...config, limit: 'device' } }, async (request, reply) => {
    checkOrigin(request, deps);
    const body = (request.body ?? {}) as { user_code?: unknown; workspace_id?: unknown };
    const workspaceId = typeof body.workspace_id === 'string' && body.workspace_id !== '' ? body.workspace_id : undefined;
    const user = await currentUser(deps, request);
    if (!user) return toLogin(reply, '/device');
    const userCode = normalizeUserCode(body.user_code);
    try {
      // Membership of the chosen workspace is checked like any request's (NOT_FOUND for one the user is not in).
      const member = await authenticateSession(deps.db, request.cookies[SESSION_COOKIE]!, workspaceId, deps.clock.now());
      authorize(member, 'agents.enrol');
      const device = userCode ? await findPendingDeviceCode(deps.db, userCode, deps.clock.now()) : undefined;
      const approved = userCode && device && (await approveDeviceCode(deps.db, userCode, member.userId, member.workspaceId, deps.clock.now(), requestMeta(request)));
      if (!approved) throw new ConnectError('NOT_FOUND', 'This code is unknown, expired or already approved. Run `connect up` again for a new one.');
      const workspace = (await listUserWorkspaces(deps.db, member.userId)).find((w) => w.id === member.workspaceId);
      return sendPage(
        reply,
        200,
        'Device approved',
        html`<h1>Device approved</h1><p class="ok">${device.label ?? device.hostname ?? 'The agent'} joins ${workspace?.name ?? 'the workspace'}.</p><p>You can close this tab: the terminal carries on by itself.</p>`,
      );
    } catch (err) {
      if (!(err instanceof ConnectError) || err.status >= 500) throw err;
      return sendPage(reply, err.status, 'Approve a device', await deviceForm(deps, user, body.user_code, err.message));
    }
  });
}

function loginForm(next: string, error?: string): SafeHtml {
  return html`<h1>Sign in</h1>${error ? html`<p class="error">${error}</p>` : ''}
    <form method="post" action="/login">
      <label for="email">Email</label><input id="email" name="email" type="email" required autocomplete="email" autofocus>
      <input type="hidden" name="next" value="${next}">
      <button type="submit">Send me a sign-in link</button>
    </form>`;
}

async function deviceForm(deps: IdentityDeps, user: UserPrincipal, typed: unknown, error?: string): Promise<SafeHtml> {
  const userCode = normalizeUserCode(typed);
  const device = userCode ? await findPendingDeviceCode(deps.db, userCode, deps.clock.now()) : undefined;
  const workspaces = await listUserWorkspaces(deps.db, user.userId);
  const unknown = typed !== undefined && typed !== '' && !device && !error;
  return html`<h1>Approve a device</h1>
    <p class="muted">Signed in as ${user.email}. Approve only a code you started yourself with <code>connect up</code>.</p>
    ${error ? html`<p class="error">${error}</p>` : ''}
    ${unknown ? html`<p class="error">This code is unknown, expired or already approved. Run <code>connect up</code> again for a new one.</p>` : ''}
    ${device
      ? html`<dl><dt>Machine</dt><dd>${device.hostname ?? 'unknown'}</dd><dt>Label</dt><dd>${device.label ?? '(none)'}</dd><dt>Platform</dt><dd>${device.platform ?? 'unknown'}</dd><dt>Asked at</dt><dd>${device.createdAt.toISOString()}</dd></dl>`
      : ''}
    <form method="post" action="/device">
      <label for="user_code">Code shown in the terminal</label>
      <input id="user_code" name="user_code" class="code" required maxlength="32" autocomplete="off" value="${userCode ?? (typeof typed === 'string' ? typed.slice(0, 32) : '')}">
      <label for="workspace_id">Workspace it joins</label>
      <select id="workspace_id" name="workspace_id">${workspaces.map((w) => html`<option value="${w.id}">${w.name} (${w.role})</option>`)}</select>
      <button type="submit">Approve this device</button>
    </form>`;
}
