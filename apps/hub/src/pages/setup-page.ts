/**
 * /setup: the page the first start's setup link opens (store/setup-links.ts). It asks for an email address and mails
 * (or, without SMTP, prints) a sign-in link of purpose `setup`; signing in through it makes that person owner of
 * the workspace the first start made, and uses the setup link up. Opening the page uses nothing, so a mail or chat
 * scanner that fetches the link does not spend it. A used, expired or unknown setup link gets a page with its error
 * code and what to do instead.
 */

import type { FastifyInstance, FastifyReply } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import { verifyLink, type IdentityDeps } from '../api/auth-routes.js';
import { checkOrigin } from '../auth/csrf.js';
import { createMagicLink } from '../store/magic-links.js';
import { lookupSetupLink, SETUP_PATH, type OpenSetupLink } from '../store/setup-links.js';
import { normalizeEmail } from '../store/users.js';
import { html, type SafeHtml } from '../html.js';
import { PAGE_CONFIG, sendPage } from '../page-reply.js';
import type { Spa } from './spa.js';

/** Where the browser lands after a setup sign-in: the dashboard, with the owned workspace chosen (apps/web welcome.ts). */
export const WELCOME_PATH = '/welcome';

export function afterSetup(workspaceId: string): string {
  return `${WELCOME_PATH}?workspace=${encodeURIComponent(workspaceId)}`;
}

export function registerSetupPage(app: FastifyInstance, deps: IdentityDeps, spa?: Spa): void {
  const config = PAGE_CONFIG;

  // The dashboard reads the workspace from the address; a hub without the dashboard build shows its own home.
  app.get(WELCOME_PATH, { config }, async (_request, reply) => {
    if (spa && (await spa.sendIndex(reply))) return reply;
    return reply.redirect('/', 303);
  });

  app.get(SETUP_PATH, { config }, async (request, reply) => {
    const token = (request.query as { token?: unknown }).token;
    const link = await open(deps, token, reply);
    if (!link) return reply;
    return sendPage(reply, 200, 'Set up this hub', setupForm(link, String(token)));
  });

  app.post(SETUP_PATH, { config: { ...config, limit: 'login' } }, async (request, reply) => {
    checkOrigin(request, deps.origins, 'browser');
    const body = (request.body ?? {}) as { token?: unknown; email?: unknown };
    const link = await open(deps, body.token, reply);
    if (!link) return reply;
    let email: string;
    try {
      email = normalizeEmail(body.email);
    } catch (err) {
      if (err instanceof ConnectError) return sendPage(reply, 400, 'Set up this hub', setupForm(link, String(body.token), err.message));
      throw err;
    }
    const { token } = await createMagicLink(deps.db, { email, purpose: 'setup', setupLinkId: link.id }, deps.clock.now());
    await deps.mailer.send({
      to: email,
      subject: 'Set up your Private Connect hub',
      intro: `Open this link to sign in and become owner of the workspace "${link.workspaceName}". It works once, for 15 minutes.`,
      link: verifyLink(deps, token, afterSetup(link.workspaceId)),
    });
    return sendPage(
      reply,
      202,
      'Check your email',
      html`<h1>Check your email</h1><p class="ok">A sign-in link for ${email} is on its way. It works once, for 15 minutes.</p>
        <p class="muted">No mail? On a hub without SMTP the link is printed in the hub's output: the terminal where the hub runs (<code>npm start</code>).</p>`,
    );
  });
}

/** The setup link if it still works; otherwise sends the page saying why (and returns undefined). */
async function open(deps: IdentityDeps, token: unknown, reply: FastifyReply): Promise<OpenSetupLink | undefined> {
  try {
    return await lookupSetupLink(deps.db, token, deps.clock.now());
  } catch (err) {
    if (!(err instanceof ConnectError) || err.status >= 500) throw err;
    void sendPage(
      reply,
      err.status,
      'Setup link refused',
      html`<h1>This setup link does not work</h1><p class="error">${err.message}</p>
        <p class="muted">Error code: <code data-code="${err.code}">${err.code}</code></p>
        <p><a href="/login">Sign in</a> if you already have an account on this hub.</p>`,
    );
    return undefined;
  }
}

function setupForm(link: OpenSetupLink, token: string, error?: string): SafeHtml {
  return html`<h1>Set up this hub</h1>
    <p>Sign in to become the <strong>owner</strong> of the workspace <strong>${link.workspaceName}</strong> that the hub's first start made:
      you will see its agents and services in the dashboard, and can invite others.</p>
    <p class="muted">This setup link works once, until ${link.expiresAt.toISOString().replace('T', ' ').slice(0, 16)} UTC.</p>
    ${error ? html`<p class="error">${error}</p>` : ''}
    <form method="post" action="${SETUP_PATH}">
      <label for="email">Your email</label><input id="email" name="email" type="email" required autocomplete="email" autofocus>
      <input type="hidden" name="token" value="${token}">
      <button type="submit">Send me a sign-in link</button>
    </form>`;
}
