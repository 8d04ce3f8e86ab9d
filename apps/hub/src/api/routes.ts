/** The REST API under /v1: enrolment, services, agents, identity. Every route authenticates in one place. */

import type { EnrolledAgent, MeAnswer } from '@private-connect/protocol';
import { EnrolRequest } from '@private-connect/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError, MAX_LABEL, keyFingerprint, type AgentSummary } from '@private-connect/protocol';
import { maskIp } from '../logger.js';
import type { Database } from '../db/index.js';
import type { Clock } from '../clock.js';
import type { ServiceRouter } from '../relay/router.js';
import type { AgentConnection } from '../relay/agent-connection.js';
import type { ServiceTraffic } from '../relay/service-traffic.js';
import type { Principal } from '../store/credentials.js';
import { principalFor, principalOf } from '../auth/principal.js';
import { enrolAgent, listAgents } from '../store/agents.js';
import { listServices } from '../store/services.js';
import { registerCredentialRoutes, tokenTiming } from './credential-routes.js';
import { registerDiagnosticsRoutes } from './diagnostics-routes.js';
import { latestDiagnostics } from '../store/diagnostics.js';
import type { EventBus } from '../events.js';
import type { Cluster } from '../cluster/cluster.js';

export interface ApiDeps {
  db: Database;
  clock: Clock;
  router: ServiceRouter;
  connections: Set<AgentConnection>;
  /** Per-service open streams and bytes (GET /v1/services). */
  traffic: ServiceTraffic;
  agentTokenTtlMs: number;
  /** Live events of each workspace (GET /v1/events). */
  events: EventBus;
  /** Counts a refused credential (by the error's reason, for /metrics). */
  onAuthFailure(err: unknown): void;
  /** The other hubs, when this hub is one of several (NATS_URL). */
  cluster?: Pick<Cluster, 'remoteAgents' | 'revokeAgent'>;
}

export function registerRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/healthz', async () => ({ ok: true }));
  registerCredentialRoutes(app, deps, (request) => principalOf(request, deps));
  registerDiagnosticsRoutes(app, deps);

  // Who is asking is settled before the body is validated: a stranger learns nothing about the schema.
  const enrolPrincipals = new WeakMap<FastifyRequest, Principal>();
  const enrolAuth = async (request: FastifyRequest) => {
    enrolPrincipals.set(request, await principalFor(request, deps, 'agents.enrol'));
  };

  app.post('/v1/agents/enroll', { schema: { body: EnrolRequest }, onRequest: enrolAuth }, async (request, reply): Promise<EnrolledAgent> => {
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

  app.get('/v1/me', async (request): Promise<MeAnswer> => {
    const principal = await principalFor(request, deps, 'me.read');
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

  app.get('/v1/services', async (request) => {
    const principal = await principalFor(request, deps, 'services.list');
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

  app.get('/v1/agents', async (request) => {
    const principal = await principalFor(request, deps, 'agents.list');
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
    }));
    return { agents };
  });
}
