/**
 * The session cookie's name on the wire. Over https (TLS on the hub, a trusted proxy's X-Forwarded-Proto, or an https
 * PUBLIC_URL) it is `__Host-pc_session`: browsers take that name only with Secure, Path=/ and no Domain from the hub's
 * own host, so no sibling host (a subdomain-mode public link, any other site under the same domain) can set, replace
 * or shadow the hub's session (cookie tossing, session fixation). Plain http (a hub on localhost) cannot have the
 * prefix and keeps `pc_session`. The routes read and set SESSION_COOKIE; these two hooks rename at the edge.
 */

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SECURE_SESSION_COOKIE, SESSION_COOKIE } from '../store/sessions.js';

/**
 * Installs the renaming; call it right after the cookie plugin, before anything that reads the session cookie.
 * Over https only the `__Host-` cookie is the session: a plain `pc_session` there is dropped, whoever set it.
 */
export function installSessionCookieName(app: FastifyInstance, options: { httpsPublicUrl: boolean }): void {
  const https = (request: FastifyRequest) => options.httpsPublicUrl || request.protocol === 'https';

  app.addHook('onRequest', async (request) => {
    const cookies = request.cookies as Record<string, string | undefined> | undefined;
    if (!cookies || !https(request)) return;
    const session = cookies[SECURE_SESSION_COOKIE];
    if (session === undefined) delete cookies[SESSION_COOKIE];
    else cookies[SESSION_COOKIE] = session;
  });

  // Runs after the cookie plugin's own onSend, which writes the Set-Cookie header.
  app.addHook('onSend', async (request, reply, payload) => {
    const header = reply.getHeader('set-cookie');
    if (header === undefined || !https(request)) return payload;
    const lines = [header].flat().map(String);
    if (!lines.some((line) => line.startsWith(`${SESSION_COOKIE}=`))) return payload;
    reply.removeHeader('set-cookie');
    reply.header('set-cookie', lines.map(secureName));
    return payload;
  });
}

/** A Set-Cookie line of the session cookie under its https name, with the Secure a `__Host-` cookie needs. */
function secureName(line: string): string {
  if (!line.startsWith(`${SESSION_COOKIE}=`)) return line;
  const renamed = SECURE_SESSION_COOKIE + line.slice(SESSION_COOKIE.length);
  return /;\s*secure\s*(;|$)/i.test(renamed) ? renamed : `${renamed}; Secure`;
}
