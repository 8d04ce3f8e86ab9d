/**
 * The OpenAPI document of the REST API, served at GET /openapi.json. It is built by @fastify/swagger from the routes
 * as they are registered, from the same JSON schemas Fastify validates requests and serialises answers with
 * (ROUTE_SCHEMAS in @private-connect/api): one description of each route, not a second copy kept by hand. Pages, web assets and the public-link proxy are not part of it.
 */

import { readFileSync } from 'node:fs';
import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { SESSION_COOKIE } from '../store/sessions.js';

/** The hub's release, from its package.json (dist/src/api/ is three levels below it). */
const HUB_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Paths documented: the versioned API and the operations endpoints. */
const documented = (url: string): boolean => url.startsWith('/v1/') || ['/healthz', '/readyz', '/metrics'].includes(url);

/**
 * One line per route for the reference (docs/api.md). The routes and their schemas come from the code; these lines
 * are the only hand-written part, and a test fails when a documented route has none.
 */
export const ROUTE_SUMMARIES: Readonly<Record<string, string>> = {
  'GET /healthz': 'Liveness: 200 while the process serves requests (no database call).',
  'GET /readyz': 'Readiness: 200 when the database answers and the hub takes agents, 503 while starting or draining.',
  'GET /metrics': 'Prometheus metrics (METRICS_TOKEN bearer, or loopback only).',
  'GET /v1/me': 'Who the credential is: an agent (with its token expiry), an API key or a user session.',
  'GET /v1/agents': 'Agents of the workspace: online or not, services, identity fingerprint, token expiry, the member each belongs to (`enrolledBy`).',
  'POST /v1/agents/enroll': 'Enrols an agent with an API key: returns its agent id and token (shown once).',
  'POST /v1/agents/me/rotate-token': 'An agent replaces its own token; the old one keeps working for 24 hours.',
  'POST /v1/agents/:id/rotate-token': 'An admin rotates a connected agent\'s token; the new token goes to the agent over its connection.',
  'DELETE /v1/agents/:id': 'Revokes an agent: its tokens stop working and its connection is closed.',
  'GET /v1/services': 'Services exposed in the workspace (and shared into it), with traffic, health and encryption.',
  'GET /v1/services/:id/diagnostics': 'The latest diagnostics report of a service from its exposing agent.',
  'GET /v1/events': 'Server-sent events: agents and services coming and going, traffic counters, health.',
  'GET /v1/api-keys': 'API keys of the workspace (never the secret).',
  'POST /v1/api-keys': 'Creates an API key; the secret is in this answer only.',
  'DELETE /v1/api-keys/:id': 'Revokes an API key.',
  'GET /v1/audit': 'The audit log, newest first, filtered and paged (cursor: nextBefore).',
  'POST /v1/auth/login': 'Sends a magic sign-in link to an email address.',
  'GET /v1/auth/verify': 'Leads a magic link to the sign-in page (303), whose button signs in; a GET never opens a session.',
  'POST /v1/auth/verify': "Opens a session from a magic-link token (the session cookie is set); from a browser, only on the hub's own origin.",
  'POST /v1/auth/logout': 'Ends the session of the cookie sent.',
  'POST /v1/device/code': 'Starts a device login (`connect login`): a user code to approve in the browser.',
  'POST /v1/device/approve': 'A signed-in user approves a device code for one of their workspaces.',
  'POST /v1/device/token': 'The device polls for its credential once the code is approved.',
  'GET /v1/workspaces': 'Workspaces the signed-in user belongs to.',
  'POST /v1/workspaces': 'Creates a workspace; the signed-in user becomes its admin.',
  'GET /v1/workspaces/:id': 'One workspace the user belongs to.',
  'PATCH /v1/workspaces/:id': "Changes the workspace's settings: direct paths between agents on or off (owners and admins, or an API key).",

  'POST /v1/workspaces/:id/invites': 'Invites a person by email (a magic link that joins them to the workspace).',
  'GET /v1/workspaces/:id/invitations': 'Pending invitations of a workspace (admins and API keys).',
  'DELETE /v1/workspaces/:id/invitations/:invitationId': 'Revokes a pending invitation: its link answers INVITATION_REVOKED (410).',
  'GET /v1/workspaces/:id/members': 'Members of a workspace and their roles.',
  'DELETE /v1/workspaces/:id/members/:userId':
    'An admin removes a member: their pending invitations are revoked, and so are the agents they enrolled by device login (`enrolledBy`), whose connections and direct streams end at once. Agents enrolled with an API key are the workspace\'s and stay.',
  'GET /v1/shares': 'Shares this workspace gave and joined.',
  'POST /v1/shares': 'Shares services with another workspace: a share code, with an expiry and limits.',
  'POST /v1/shares/join': 'Joins a share by its code: its services become reachable from this workspace.',
  'DELETE /v1/shares/:id': 'Revokes a share: its open streams are cut.',
  'GET /v1/links': 'Public links of the workspace, with their use.',
  'POST /v1/links': 'Creates a public HTTP link to a service, with an expiry, a request limit and optional methods and paths.',
  'DELETE /v1/links/:id': 'Revokes a public link: it answers 410 from then on.',
};

/** Registers the generator; call before any route, so it sees them all. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Private Connect hub API',
        version: HUB_VERSION,
        description:
          'Agents, services, shares, public links, API keys, members and the audit log of a workspace. Errors are ' +
          '{"error":{"code","message"}} with a stable code (docs/protocol.md, Errors).',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API key (pc_…) or an agent token.' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The dashboard session after a magic-link login.' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: ({ schema, url, route }) => {
      if (!documented(url)) return { schema: { ...schema, hide: true }, url };
      const method = [route.method].flat()[0];
      const summary = ROUTE_SUMMARIES[`${method} ${url}`];
      return { schema: { ...schema, tags: [url.startsWith('/v1/') ? url.split('/')[2]! : 'ops'], ...(summary ? { summary } : {}) }, url };
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
