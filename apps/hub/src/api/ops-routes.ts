/**
 * Operator endpoints: /healthz (liveness: the process answers), /readyz (readiness: the database answers and the
 * hub takes agents) and /metrics (Prometheus text; who may read it is decided in metrics.ts).
 */

import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Database } from '../db/index.js';
import type { Lifecycle } from '../lifecycle.js';
import { checkMetricsAccess } from '../metrics.js';
import { ROUTE_SCHEMAS } from '@private-connect/api';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { pingDatabase } from '../store/system.js';

/** Longest /readyz waits for the database before it calls it unreachable. */
export const READY_DB_TIMEOUT_MS = 2000;

export interface OpsDeps {
  db: Database;
  lifecycle: Lifecycle;
  metrics: Registry;
  metricsToken?: string;
}

const NOT_READY: Record<string, string> = {
  starting: 'the hub is starting',
  draining: 'the hub is shutting down',
  closed: 'the hub is shutting down',
};

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  api.get('/readyz', { schema: ROUTE_SCHEMAS['GET /readyz'], config: { limit: 'none' } }, async (_request, reply) => {
    const state = deps.lifecycle.state;
    void reply.header('cache-control', 'no-store');
    if (state !== 'ready') return reply.status(503).send({ ready: false, state, reason: NOT_READY[state] });
    const problem = await databaseProblem(deps.db);
    if (problem) return reply.status(503).send({ ready: false, state, reason: `the database does not answer: ${problem}` });
    return { ready: true, state };
  });

  api.get('/metrics', { schema: ROUTE_SCHEMAS['GET /metrics'] }, async (request, reply) => {
    checkMetricsAccess(request, deps.metricsToken);
    void reply.header('content-type', deps.metrics.contentType);
    return deps.metrics.metrics();
  });
}

/** Runs `select 1`; undefined when it answered within READY_DB_TIMEOUT_MS, else what went wrong. */
async function databaseProblem(db: Database): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${READY_DB_TIMEOUT_MS} ms`), READY_DB_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      pingDatabase(db).then(
        () => undefined,
        (err: unknown) => (err as Error).message || String(err),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
