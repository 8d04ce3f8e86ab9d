/** The REST API under /v1: enrolment, services, agents, identity. Every route authenticates in one place. */

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError, MAX_LABEL } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import type { Clock } from '../clock.js';
import type { ServiceRouter } from '../relay/router.js';
import type { AgentConnection } from '../relay/agent-connection.js';
import { authenticate, bearer, type Principal } from '../store/credentials.js';
import { enrolAgent, listAgents } from '../store/agents.js';
import { listServices, toServiceInfo } from '../store/services.js';

export interface ApiDeps {
  db: Database;
  clock: Clock;
  router: ServiceRouter;
  connections: Set<AgentConnection>;
  agentTokenTtlMs: number;
  onAuthFailure(): void;
}

/** Authenticates the request; every /v1 route calls this first. */
async function principalOf(request: FastifyRequest, deps: ApiDeps): Promise<Principal> {
  try {
    return await authenticate(deps.db, bearer(request.headers.authorization), deps.clock.now());
  } catch (err) {
    deps.onAuthFailure();
    throw err;
  }
}

const enrolSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      label: { type: 'string', minLength: 1, maxLength: MAX_LABEL },
      hostname: { type: 'string', maxLength: MAX_LABEL },
      platform: { type: 'string', maxLength: 64 },
    },
  },
} as const;

export function registerRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/healthz', async () => ({ ok: true }));

  // Who is asking is settled before the body is validated: a stranger learns nothing about the schema.
  const enrolPrincipals = new WeakMap<FastifyRequest, Principal>();
  const enrolAuth = async (request: FastifyRequest) => {
    const principal = await principalOf(request, deps);
    if (principal.kind !== 'api_key') {
      throw new ConnectError('FORBIDDEN', 'enrolling an agent needs an API key (pc_...), not an agent token');
    }
    enrolPrincipals.set(request, principal);
  };

  app.post('/v1/agents/enroll', { schema: enrolSchema, onRequest: enrolAuth }, async (request, reply) => {
    const principal = enrolPrincipals.get(request);
    if (principal?.kind !== 'api_key') throw new ConnectError('UNAUTHORIZED', 'missing credentials');
    const body = (request.body ?? {}) as { label?: string; hostname?: string; platform?: string };
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

  app.get('/v1/me', async (request) => {
    const principal = await principalOf(request, deps);
    if (principal.kind === 'agent') {
      return { kind: 'agent', workspaceId: principal.workspaceId, agentId: principal.agentId, label: principal.label, expiresAt: principal.expiresAt.toISOString() };
    }
    return { kind: 'api_key', workspaceId: principal.workspaceId, keyId: principal.keyId };
  });

  app.get('/v1/services', async (request) => {
    const principal = await principalOf(request, deps);
    const rows = await deps.db.withWorkspace(principal.workspaceId, (tx) => listServices(tx));
    return { services: rows.map((row) => toServiceInfo(row, deps.router.isOnline(principal.workspaceId, row.name))) };
  });

  app.get('/v1/agents', async (request) => {
    const principal = await principalOf(request, deps);
    const rows = await deps.db.withWorkspace(principal.workspaceId, (tx) => listAgents(tx));
    const online = new Set<string>();
    for (const conn of deps.connections) if (conn.workspaceId === principal.workspaceId) online.add(conn.agentId);
    return {
      agents: rows.map((row) => ({
        id: row.id,
        label: row.label,
        hostname: row.hostname,
        version: row.version,
        online: online.has(row.id),
        lastSeenAt: row.last_seen_at ? new Date(row.last_seen_at).toISOString() : null,
      })),
    };
  });
}
