/**
 * REST API of public links: create (POST /v1/links), list (GET /v1/links), revoke (DELETE /v1/links/:id). Who may
 * is the guard's `links.manage`; every lookup runs inside the caller's workspace, so another workspace's link
 * answers like a missing one. Revoking cuts the link's open streams on this hub at once.
 */

import { CreateLinkRequest } from '@private-connect/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MAX_SERVICE_NAME, parseMethods, parsePaths, type CreatedLink } from '@private-connect/protocol';
import { actorOf } from '../auth/actor.js';
import { notFound } from '../auth/guard.js';
import { principalFor } from '../auth/principal.js';
import type { AuthDeps } from '../auth/principal.js';
import type { Principal } from '../store/credentials.js';
import { findService } from '../store/services.js';
import { cutLinkStreams } from '../relay/cuts.js';
import type { SharingContext } from './context.js';
import { createLink, linkCache, linkTtl, listLinks, MAX_LINK_RATE, revokeLink, toLinkInfo } from './links.js';
import { linkUrls } from './link-http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function registerLinkRoutes(app: FastifyInstance, deps: AuthDeps, sharing: SharingContext): void {
  // Who is asking, and whether they may, is settled in onRequest, before the body is validated.
  const settled = new WeakMap<FastifyRequest, Principal>();
  const guard = {
    onRequest: async (request: FastifyRequest) => {
      settled.set(request, await principalFor(request, deps, 'links.manage'));
    },
  };

  app.post('/v1/links', { schema: { body: CreateLinkRequest }, ...guard }, async (request, reply): Promise<CreatedLink> => {
    const principal = settled.get(request)!;
    const body = request.body as CreateLinkRequest;
    const input = { service: body.service, ttlMs: linkTtl(body.expiresIn), methods: parseMethods(body.methods), paths: parsePaths(body.paths), rate: body.rate };
    const now = deps.clock.now();
    const { row, token } = await deps.db.withWorkspace(principal.workspaceId, async (tx) => {
      if (!(await findService(tx, input.service))) throw notFound('service', input.service);
      return createLink(tx, principal.workspaceId, input, { ...actorOf(principal, request), now });
    });
    void reply.status(201);
    return { link: toLinkInfo(row, now), token, ...linkUrls(sharing.config, token, `${request.protocol}://${request.host}`) };
  });

  app.get('/v1/links', guard, async (request) => {
    const principal = settled.get(request)!;
    const now = deps.clock.now();
    const rows = await deps.db.withWorkspace(principal.workspaceId, (tx) => listLinks(tx));
    return { links: rows.map((row) => toLinkInfo(row, now)) };
  });

  app.delete<{ Params: { id: string } }>('/v1/links/:id', guard, async (request, reply) => {
    const principal = settled.get(request)!;
    const id = request.params.id;
    const now = deps.clock.now();
    const row = UUID.test(id) ? await deps.db.withWorkspace(principal.workspaceId, (tx) => revokeLink(tx, principal.workspaceId, id, { ...actorOf(principal, request), now })) : undefined;
    if (!row) throw notFound('link', id);
    // New requests are refused from now on and open ones end now, on this hub and (told over NATS) on the others.
    linkCache(sharing).forget(id);
    cutLinkStreams(sharing.local, id);
    sharing.cluster?.revoked('link', id);
    return reply.status(204).send();
  });
}
