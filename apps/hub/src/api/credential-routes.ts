/**
 * Credential and audit routes: agent token rotation, agent revocation, API keys, the audit log. Who may do what is
 * decided by the guard (auth/guard.ts: agents.rotate_own_token, agents.revoke, api_keys.manage, audit.read).
 */

import { ROUTE_SCHEMAS, type AuditEntry } from '@private-connect/api';
import type { FastifyInstance } from 'fastify';
import { ConnectError, TOKEN_EXPIRY_WARNING_MS, isUuid } from '@private-connect/protocol';
import { revokeAgent, rotateAgentToken } from '../store/agent-tokens.js';
import { agentExists } from '../store/agents.js';
import { createWorkspaceApiKey, listApiKeys, revokeApiKey } from '../store/api-keys.js';
import { hasAuditEvent, listAudit, MAX_AUDIT_PAGE } from '../store/audit.js';
import { notFound } from '../auth/guard.js';
import { callerOf, requires } from '../auth/auth-plugin.js';
import type { ApiDeps } from './deps.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { actorOf } from '../auth/actor.js';
import { cutRevokedAgent } from '../relay/cuts.js';

/** Milliseconds until an agent principal's token stops working, by the hub's clock, and whether to warn. */
export function tokenTiming(validUntil: Date, now: Date): { expiresInMs: number; expiring: boolean } {
  const expiresInMs = validUntil.getTime() - now.getTime();
  return { expiresInMs, expiring: expiresInMs < TOKEN_EXPIRY_WARNING_MS };
}

export function registerCredentialRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  // Who is asking, and whether they may, is settled in onRequest (requires), before the body or query is validated.

  api.post('/v1/agents/me/rotate-token', { schema: ROUTE_SCHEMAS['POST /v1/agents/me/rotate-token'], onRequest: requires('agents.rotate_own_token') }, async (request, reply) => {
    const principal = callerOf(request);
    if (principal.kind !== 'agent') throw new ConnectError('FORBIDDEN');
    const rotated = await deps.db.withWorkspace(principal.workspaceId, (tx) =>
      rotateAgentToken(tx, principal.workspaceId, principal.agentId, principal.tokenId, {
        now: deps.clock.now(),
        ttlMs: deps.agentTokenTtlMs,
        ip: request.ip,
        userAgent: request.headers['user-agent'],
      }),
    );
    void reply.status(201);
    return { agentId: principal.agentId, token: rotated.token, expiresAt: rotated.expiresAt.toISOString(), previousTokenValidUntil: rotated.previousValidUntil.toISOString() };
  });

  api.delete('/v1/agents/:id', { schema: ROUTE_SCHEMAS['DELETE /v1/agents/:id'], onRequest: requires('agents.revoke') }, async (request, reply) => {
    const principal = callerOf(request);
    const id = request.params.id;
    const now = deps.clock.now();
    const revoked = isUuid(id) && (await deps.db.withWorkspace(principal.workspaceId, (tx) => revokeAgent(tx, principal.workspaceId, id, { ...actorOf(principal, request), now })));
    if (!revoked) throw notFound('agent', id);
    // Its live connections end now, on this hub and on the others.
    cutRevokedAgent(deps, principal.workspaceId, id);
    deps.cluster?.revokeAgent(principal.workspaceId, id);
    return reply.status(204).send(null);
  });

  // An admin rotates a connected agent's token (dashboard, API): the hub issues it and hands it over the agent's own
  // connection, which is authenticated and encrypted like the HTTPS answer `connect up --rotate-token` gets.
  api.post('/v1/agents/:id/rotate-token', { schema: ROUTE_SCHEMAS['POST /v1/agents/:id/rotate-token'], onRequest: requires('agents.rotate') }, async (request) => {
    const principal = callerOf(request);
    const id = request.params.id;
    const live = isUuid(id) ? [...deps.connections].filter((c) => c.workspaceId === principal.workspaceId && c.agentId === id) : [];
    if (live.length === 0) {
      const known = isUuid(id) && (await deps.db.withWorkspace(principal.workspaceId, (tx) => agentExists(tx, id)));
      if (!known) throw notFound('agent', id);
      throw new ConnectError('AGENT_OFFLINE', 'the agent is offline; rotate when it is connected, or run `connect up --rotate-token` on its machine');
    }
    // Its processes may stand on different tokens (one restarted after a rotation): rotate the newest.
    const newest = live.reduce((a, b) => (b.principal.validUntil > a.principal.validUntil ? b : a));
    const actor = actorOf(principal, request);
    const rotated = await deps.db.withWorkspace(principal.workspaceId, (tx) =>
      rotateAgentToken(tx, principal.workspaceId, id, newest.principal.tokenId, {
        now: deps.clock.now(),
        ttlMs: deps.agentTokenTtlMs,
        ip: actor.ip,
        userAgent: actor.userAgent,
        actor: { type: actor.type, id: actor.id },
      }),
    );
    for (const conn of live) conn.adoptToken(rotated);
    deps.events.publish(principal.workspaceId, {
      event: 'agent',
      data: { id, label: newest.label, online: true, at: deps.clock.now().toISOString(), tokenExpiresAt: rotated.expiresAt.toISOString() },
    });
    return { agentId: id, expiresAt: rotated.expiresAt.toISOString(), previousTokenValidUntil: rotated.previousValidUntil.toISOString(), connections: live.length };
  });

  api.post('/v1/api-keys', { schema: ROUTE_SCHEMAS['POST /v1/api-keys'], onRequest: requires('api_keys.manage') }, async (request, reply) => {
    const principal = callerOf(request);
    const { name } = request.body;
    const created = await deps.db.withWorkspace(principal.workspaceId, (tx) => createWorkspaceApiKey(tx, principal.workspaceId, name, actorOf(principal, request)));
    void reply.status(201);
    return { ...created.info, key: created.key };
  });

  api.get('/v1/api-keys', { schema: ROUTE_SCHEMAS['GET /v1/api-keys'], onRequest: requires('api_keys.manage') }, async (request) => {
    const principal = callerOf(request);
    return { apiKeys: await deps.db.withWorkspace(principal.workspaceId, (tx) => listApiKeys(tx)) };
  });

  api.delete('/v1/api-keys/:id', { schema: ROUTE_SCHEMAS['DELETE /v1/api-keys/:id'], onRequest: requires('api_keys.manage') }, async (request, reply) => {
    const principal = callerOf(request);
    const id = request.params.id;
    const now = deps.clock.now();
    const revoked = isUuid(id) && (await deps.db.withWorkspace(principal.workspaceId, (tx) => revokeApiKey(tx, principal.workspaceId, id, { ...actorOf(principal, request), now })));
    if (!revoked) throw notFound('api_key', id);
    return reply.status(204).send(null);
  });

  api.get('/v1/audit', { schema: ROUTE_SCHEMAS['GET /v1/audit'], onRequest: requires('audit.read') }, async (request) => {
    const principal = callerOf(request);
    const q = request.query;
    const limit = q.limit ?? 100;
    const rows = await deps.db.withWorkspace(principal.workspaceId, async (tx) => {
      // Another workspace's event id answers exactly like a made-up one: neither is an event of this log.
      if (q.before !== undefined && !(await hasAuditEvent(tx, q.before))) {
        throw new ConnectError('BAD_REQUEST', `before=${q.before} is not an event of this audit log; pass the nextBefore of the previous page`);
      }
      return listAudit(tx, {
        action: q.action,
        actorType: q.actor_type,
        targetType: q.target_type,
        agentId: q.agent,
        since: q.since ? new Date(q.since) : undefined,
        until: q.until ? new Date(q.until) : undefined,
        before: q.before,
        limit,
      });
    });
    const events = rows.map((r): AuditEntry => ({
      id: r.id,
      at: new Date(r.at).toISOString(),
      actorType: r.actor_type,
      actorId: r.actor_id,
      action: r.action,
      targetType: r.target_type,
      targetId: r.target_id,
      ip: r.ip,
      userAgent: r.user_agent,
      metadata: typeof r.metadata === 'string' ? (JSON.parse(r.metadata) as Record<string, unknown>) : r.metadata,
    }));
    return { events, nextBefore: events.length === limit ? events[events.length - 1]!.id : null };
  });
}
