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
import { authenticateRequest, type Principal } from '../store/credentials.js';
import { SESSION_COOKIE } from '../store/sessions.js';
import { authorize, type Action } from './guard.js';
import { enrolAgent, listAgents } from '../store/agents.js';
import { listServices } from '../store/services.js';
import { recordAgentTokenUse } from '../store/agent-tokens.js';
import { touchApiKey } from '../store/api-keys.js';
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

/**
 * Authenticates the request; every /v1 route calls this first. A signed-in user acts in the workspace named by
 * `workspace` (routes under /v1/workspaces/:id) or the X-Workspace-Id header, else in their first workspace.
 */
export async function principalOf(request: FastifyRequest, deps: ApiDeps, workspace?: string): Promise<Principal> {
  try {
    const workspaceHeader = workspace ?? request.headers['x-workspace-id'];
    const creds = { authorization: request.headers.authorization, sessionCookie: request.cookies?.[SESSION_COOKIE], workspaceHeader };
    const principal = await authenticateRequest(deps.db, creds, deps.clock.now());
    await recordCredentialUse(deps, principal, request);
    return principal;
  } catch (err) {
    deps.onAuthFailure(err);
    throw err;
  }
}

/** Every use of an agent token or API key is recorded (IP, user agent; see store/agent-tokens.ts for the audit). */
async function recordCredentialUse(deps: ApiDeps, principal: Principal, request: FastifyRequest): Promise<void> {
  const now = deps.clock.now();
  if (principal.kind === 'agent') {
    const use = { ip: request.ip, userAgent: request.headers['user-agent'], via: 'http' as const, now };
    await deps.db.withWorkspace(principal.workspaceId, (tx) => recordAgentTokenUse(tx, principal.workspaceId, principal.agentId, principal.tokenId, use));
  } else if (principal.kind === 'api_key') {
    await deps.db.withWorkspace(principal.workspaceId, (tx) => touchApiKey(tx, principal.keyId, now));
  }
}

/**
 * Authenticates, then asks the guard (see the rules at the top of api/guard.ts) whether the principal may perform
 * `action`. Every /v1 route, here or in another route file, starts with this.
 */
export async function principalFor(request: FastifyRequest, deps: ApiDeps, action: Action): Promise<Principal> {
  const principal = await principalOf(request, deps);
  authorize(principal, action);
  return principal;
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
