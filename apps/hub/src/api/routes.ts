/** The REST API under /v1: enrolment, services, agents, identity. Every route authenticates in one place. */

import { ROUTE_SCHEMAS, type AgentSummary, type MeAnswer } from '@private-connect/api';
import type { FastifyInstance } from 'fastify';
import { ConnectError, MAX_LABEL, keyFingerprint } from '@private-connect/protocol';
import { maskIp, redactSecrets } from '../logger.js';
import { callerOf, requires } from '../auth/auth-plugin.js';
import { enrolAgent, listAgents } from '../store/agents.js';
import { listServices } from '../store/services.js';
import { registerCredentialRoutes, tokenTiming } from './credential-routes.js';
import { registerDiagnosticsRoutes } from './diagnostics-routes.js';
import { latestDiagnostics } from '../store/diagnostics.js';
import type { ApiDeps } from './deps.js';
import type { AgentConnection, KnownPath } from '../relay/agent-connection.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

export function registerRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  api.get('/healthz', { schema: ROUTE_SCHEMAS['GET /healthz'] }, async () => ({ ok: true }));
  registerCredentialRoutes(app, deps);
  registerDiagnosticsRoutes(app, deps);

  api.post('/v1/agents/enroll', { schema: ROUTE_SCHEMAS['POST /v1/agents/enroll'], onRequest: requires('agents.enrol') }, async (request, reply) => {
    const principal = callerOf(request);
    if (principal.kind !== 'api_key') throw new ConnectError('UNAUTHORIZED', 'missing credentials');
    const body = request.body ?? {};
    const label = body.label ?? body.hostname ?? 'agent';
    const enrolled = await deps.db.withWorkspace(principal.workspaceId, (tx) =>
      enrolAgent(tx, principal.workspaceId, {
        label,
        hostname: body.hostname,
        platform: body.platform,
        ttlMs: deps.agentTokenTtlMs,
        now: deps.clock.now(),
        keyId: principal.keyId,
        ip: request.ip,
        userAgent: request.headers['user-agent'],
      }),
    );
    void reply.status(201);
    return { agentId: enrolled.agentId, workspaceId: enrolled.workspaceId, label: enrolled.label, token: enrolled.token, expiresAt: enrolled.expiresAt.toISOString() };
  });

  api.get('/v1/me', { schema: ROUTE_SCHEMAS['GET /v1/me'], onRequest: requires('me.read') }, async (request): Promise<MeAnswer> => {
    const principal = callerOf(request);
    if (principal.kind === 'agent') {
      // expiresAt: when this token stops working (expiry or end of a rotation grace period), by the hub's clock.
      const timing = tokenTiming(principal.validUntil, deps.clock.now());
      return { kind: 'agent', workspaceId: principal.workspaceId, agentId: principal.agentId, label: principal.label, expiresAt: principal.validUntil.toISOString(), ...timing };
    }
    if (principal.kind === 'user') {
      return { kind: 'user', workspaceId: principal.workspaceId, userId: principal.userId, email: principal.email, role: principal.role };
    }
    return { kind: 'api_key', workspaceId: principal.workspaceId, keyId: principal.keyId };
  });

  api.get('/v1/services', { schema: ROUTE_SCHEMAS['GET /v1/services'], onRequest: requires('services.list') }, async (request) => {
    const principal = callerOf(request);
    const [rows, health] = await deps.db.withWorkspace(principal.workspaceId, async (tx) => [await listServices(tx), await latestDiagnostics(tx)] as const);
    // Open streams and bytes since the hub started, from the relay's counters (relay/service-traffic.ts).
    const traffic = deps.traffic;
    return {
      services: rows.map((row) => {
        // The latest report of its exposing agent (store/diagnostics.ts), when there is one.
        const latest = health.get(String(row.id));
        return { ...deps.router.describe(principal.workspaceId, row), ...traffic.get(principal.workspaceId, row.name), ...(latest ? { health: latest } : {}) };
      }),
    };
  });

  api.get('/v1/agents', { schema: ROUTE_SCHEMAS['GET /v1/agents'], onRequest: requires('agents.list') }, async (request) => {
    const principal = callerOf(request);
    const rows = await deps.db.withWorkspace(principal.workspaceId, (tx) => listAgents(tx));
    const online = new Set<string>();
    for (const conn of deps.connections) if (conn.workspaceId === principal.workspaceId) online.add(conn.agentId);
    for (const agentId of deps.cluster?.remoteAgents(principal.workspaceId) ?? []) online.add(agentId);
    const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
    const agents: AgentSummary[] = rows.map((row) => ({
      id: row.id,
      label: row.label,
      hostname: row.hostname,
      platform: row.platform,
      version: row.version,
      online: online.has(row.id),
      lastSeenAt: iso(row.last_seen_at),
      // The dashboard shows a masked address only, the same masking as the logs.
      lastIp: maskIp(row.last_ip ?? undefined) ?? null,
      tokenExpiresAt: iso(row.token_expires_at),
      createdAt: iso(row.created_at)!,
      identityKey: row.identity_key,
      fingerprint: row.identity_key ? keyFingerprint(row.identity_key) : null,
      staticKey: row.static_key,
      enrolledBy: row.enrolled_by,
      paths: pathsOf(deps.connections, principal.workspaceId, row.id),
    }));
    return { agents };
  });
}

/**
 * The paths agent `agentId`'s connections to this hub said their reached services take (op `path`), newest per
 * service. An agent connected to another hub of a cluster shows none here. Addresses in `via` and `reason` are
 * masked as in the logs and `lastIp` (`10.0.x.x:7000`): the API never shows an agent's whole address.
 */
function pathsOf(connections: Iterable<AgentConnection>, workspaceId: string, agentId: string): AgentSummary['paths'] {
  const byName = new Map<string, KnownPath>();
  for (const conn of connections) {
    if (conn.workspaceId !== workspaceId || conn.agentId !== agentId) continue;
    for (const path of conn.paths.values()) {
      const known = byName.get(path.name);
      if (!known || known.at < path.at) byName.set(path.name, path);
    }
  }
  return [...byName.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(({ at, via, reason, ...path }) => ({
      ...path,
      ...(via !== undefined ? { via: redactSecrets(via) } : {}),
      ...(reason !== undefined ? { reason: redactSecrets(reason) } : {}),
      at: at.toISOString(),
    }));
}
