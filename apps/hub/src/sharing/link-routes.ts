/**
 * REST API of public links: create (POST /v1/links), list (GET /v1/links), revoke (DELETE /v1/links/:id). Who may
 * is the guard's `links.manage`; every lookup runs inside the caller's workspace, so another workspace's link
 * answers like a missing one. Revoking cuts the link's open streams on this hub at once.
 */

import { ROUTE_SCHEMAS } from '@private-connect/api';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { MAX_SERVICE_NAME, isUuid, parseMethods, parsePaths } from '@private-connect/protocol';
import { actorOf } from '../auth/actor.js';
import { notFound } from '../auth/guard.js';
import { callerOf, requires } from '../auth/auth-plugin.js';
import type { AuthDeps } from '../auth/principal.js';
import { findService } from '../store/services.js';
import { cutLinkStreams } from '../relay/cuts.js';
import type { SharingContext } from './context.js';
import { createLink, linkCache, linkTtl, listLinks, MAX_LINK_RATE, revokeLink, toLinkInfo } from './links.js';
import { linkUrls } from './link-http.js';

export function registerLinkRoutes(app: FastifyInstance, deps: AuthDeps, sharing: SharingContext): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  // Who is asking, and whether they may, is settled in onRequest (requires), before the body is validated.

  api.post('/v1/links', { schema: ROUTE_SCHEMAS['POST /v1/links'], onRequest: requires('links.manage') }, async (request, reply) => {
    const principal = callerOf(request);
    const body = request.body;
    const input = { service: body.service, ttlMs: linkTtl(body.expiresIn), methods: parseMethods(body.methods), paths: parsePaths(body.paths), rate: body.rate };
    const now = deps.clock.now();
    const { row, token } = await deps.db.withWorkspace(principal.workspaceId, async (tx) => {
      if (!(await findService(tx, input.service))) throw notFound('service', input.service);
      return createLink(tx, principal.workspaceId, input, { ...actorOf(principal, request), now });
    });
    void reply.status(201);
    return { link: toLinkInfo(row, now), token, ...linkUrls(sharing.config, token, `${request.protocol}://${request.host}`) };
  });

  api.get('/v1/links', { schema: ROUTE_SCHEMAS['GET /v1/links'], onRequest: requires('links.manage') }, async (request) => {
    const principal = callerOf(request);
    const now = deps.clock.now();
    const rows = await deps.db.withWorkspace(principal.workspaceId, (tx) => listLinks(tx));
    return { links: rows.map((row) => toLinkInfo(row, now)) };
  });

  api.delete('/v1/links/:id', { schema: ROUTE_SCHEMAS['DELETE /v1/links/:id'], onRequest: requires('links.manage') }, async (request, reply) => {
    const principal = callerOf(request);
    const id = request.params.id;
    const now = deps.clock.now();
    const row = isUuid(id) ? await deps.db.withWorkspace(principal.workspaceId, (tx) => revokeLink(tx, principal.workspaceId, id, { ...actorOf(principal, request), now })) : undefined;
    if (!row) throw notFound('link', id);
    // New requests are refused from now on and open ones end now, on this hub and (told over NATS) on the others.
    linkCache(sharing).forget(id);
    cutLinkStreams(sharing.local, id);
    sharing.cluster?.revoked('link', id);
    return reply.status(204).send(null);
  });
}
