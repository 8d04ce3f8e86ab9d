/** GET /v1/services/:id/diagnostics: a service's health as its exposing agent reported it, newest first. */

import type { FastifyInstance } from 'fastify';
import { ROUTE_SCHEMAS } from '@private-connect/api';
import { ConnectError, isUuid } from '@private-connect/protocol';
import { findServiceById, serviceDiagnostics, DIAGNOSTICS_PER_SERVICE } from '../store/diagnostics.js';
import { notFound } from '../auth/guard.js';
import { callerOf, requires } from '../auth/auth-plugin.js';
import type { ApiDeps } from './deps.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

/** Reports returned when `limit` is not given. */
export const DEFAULT_DIAGNOSTICS_LIMIT = 20;

export function registerDiagnosticsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  api.get('/v1/services/:id/diagnostics', { schema: ROUTE_SCHEMAS['GET /v1/services/:id/diagnostics'], onRequest: requires('services.list') }, async (request) => {
    const principal = callerOf(request);
    const limit = parseLimit(request.query.limit);
    const id = request.params.id;
    const found = isUuid(id)
      ? await deps.db.withWorkspace(principal.workspaceId, async (tx) => {
          const service = await findServiceById(tx, id);
          return service && { service, history: await serviceDiagnostics(tx, service.id, limit) };
        })
      : undefined;
    // Missing, malformed or another workspace's: the one answer (row level security hides the others' rows).
    if (!found) throw notFound('service', id);
    return { service: found.service, latest: found.history[0] ?? null, history: found.history };
  });
}

function parseLimit(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_DIAGNOSTICS_LIMIT;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > DIAGNOSTICS_PER_SERVICE) {
    throw new ConnectError('BAD_REQUEST', `limit must be a whole number from 1 to ${DIAGNOSTICS_PER_SERVICE}, got "${value.slice(0, 20)}"`);
  }
  return limit;
}
