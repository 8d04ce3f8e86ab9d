/**
 * How a server-rendered page is sent (pages/, and the error handler for a page route's errors): the pages' security
 * headers, the route config that marks a page, and the page an error becomes.
 */

import type { FastifyReply } from 'fastify';
import type { ConnectError } from '@private-connect/protocol';
import { html, page, type SafeHtml } from './html.js';

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  // Not no-referrer: with it a browser sends `Origin: null` on the pages' own form posts, which the CSRF rule refuses.
  // strict-origin never sends a path (a sign-in link's token) anywhere.
  'referrer-policy': 'strict-origin',
};

/** Route config of a page: the error handler answers its errors with a page instead of JSON. */
export const PAGE_CONFIG = { page: true } as const;

/** Sends a page with the pages' security headers. */
export function sendPage(reply: FastifyReply, status: number, title: string, body: SafeHtml): FastifyReply {
  return reply.status(status).headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(page(title, body));
}

/** The page an error becomes on a page route (see PAGE_CONFIG). */
export function errorPage(reply: FastifyReply, error: ConnectError): FastifyReply {
  return sendPage(reply, error.status, 'Something went wrong', html`<h1>That did not work</h1><p class="error">${error.message}</p><p><a href="/">Back</a></p>`);
}
