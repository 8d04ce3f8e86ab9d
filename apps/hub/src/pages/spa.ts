/**
 * The dashboard (apps/web, a single-page app) served by the hub from its build folder (HubConfig.webDistDir):
 *   /assets/*         hashed bundles, cached for a year (immutable)
 *   index.html        `cache-control: no-store`, at / and for any other GET that accepts text/html and matches no
 *                     route, so that client-side routes (/agents, /services, /keys, ...) survive a reload
 * Without a build (a hub installed without apps/web/dist) / keeps the server-rendered page of pages.ts, and
 * unknown paths get the JSON 404. The server-rendered /login, /auth/verify, /device and /logout stay as they are.
 */

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';

/** Headers of every dashboard response: same-origin scripts, styles and API calls only, never in a frame. */
export const SPA_SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Paths that are never the dashboard's, whatever the Accept header says: a miss there is the JSON 404. */
const NOT_SPA = /^\/(v1|assets|metrics|healthz)(\/|$)/;

export interface Spa {
  /** Answers with index.html when the build exists; false (nothing sent) when it does not. */
  sendIndex(reply: FastifyReply): Promise<boolean>;
  /** True for a request the not-found handler should answer with index.html (a browser loading a client route). */
  wantsIndex(request: FastifyRequest): boolean;
}

export function createSpa(distDir: string): Spa {
  const indexPath = join(distDir, 'index.html');
  return {
    async sendIndex(reply) {
      let body: Buffer;
      try {
        if (!(await stat(indexPath)).isFile()) return false;
        body = await readFile(indexPath);
      } catch {
        return false;
      }
      void reply.headers({ ...SPA_SECURITY_HEADERS, 'cache-control': 'no-store', 'content-type': 'text/html; charset=utf-8' }).send(body);
      return true;
    },
    wantsIndex(request) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return false;
      if (!(request.headers.accept ?? '').includes('text/html')) return false;
      return !NOT_SPA.test(request.url.split('?')[0]!);
    },
  };
}

/** Registers GET /assets/* (missing files, or no build at all: the JSON 404). */
export async function registerSpaAssets(app: FastifyInstance, distDir: string): Promise<void> {
  await app.register(fastifyStatic, {
    root: join(distDir, 'assets'),
    prefix: '/assets/',
    wildcard: true,
    index: false,
    // The folder may not exist (no web build): then every asset is a 404, which is no reason to warn.
    suppressWarning: true,
    maxAge: '365d',
    immutable: true,
    setHeaders: (reply) => void reply.headers(SPA_SECURITY_HEADERS),
  });
}
