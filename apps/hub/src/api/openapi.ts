/**
 * The OpenAPI document of the REST API, served at GET /openapi.json. It is built by @fastify/swagger from the routes
 * as they are registered, from the same JSON schemas Fastify validates requests with: one description of each
 * route, not a second copy kept by hand. Pages, web assets and the public-link proxy are not part of it.
 */

import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { AGENT_VERSION } from '@private-connect/sdk';
import { SESSION_COOKIE } from '../store/sessions.js';

/** Paths documented: the versioned API and the operations endpoints. */
const documented = (url: string): boolean => url.startsWith('/v1/') || ['/healthz', '/readyz', '/metrics'].includes(url);

/** Registers the generator; call before any route, so it sees them all. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Private Connect hub API',
        version: AGENT_VERSION,
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
    transform: ({ schema, url }) => {
      const tag = url.split('/')[2] ?? 'ops';
      return { schema: documented(url) ? { ...schema, tags: [url.startsWith('/v1/') ? tag : 'ops'] } : { ...schema, hide: true }, url };
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
