/** Maps every error leaving the HTTP API to `{ error: { code, message } }` with the code's status. */

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import { errorPage } from '../page-reply.js';

const FASTIFY_CODES: Record<string, ConnectError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_VALIDATION: 'BAD_REQUEST',
};

/** What the not-found handler needs of the dashboard (pages/spa.ts's Spa): its index.html for a client route. */
export interface DashboardIndex {
  /** True for a request to answer with index.html (a browser loading a client route). */
  wantsIndex(request: FastifyRequest): boolean;
  /** Answers with index.html; false (nothing sent) when there is no dashboard build. */
  sendIndex(reply: FastifyReply): Promise<boolean>;
}

/** `spa`: a browser loading a dashboard route (GET, accepts text/html, no API path) gets its index.html instead of 404. */
export function installErrorHandler(app: FastifyInstance, spa?: DashboardIndex): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    let error: ConnectError;
    if (err instanceof ConnectError) error = err;
    else if (err.validation) error = new ConnectError('BAD_REQUEST', `invalid request: ${err.message}`);
    else if (err.code && FASTIFY_CODES[err.code]) error = new ConnectError(FASTIFY_CODES[err.code]!, err.message);
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) error = new ConnectError('BAD_REQUEST', err.message);
    else {
      request.log.error({ err }, 'unhandled error in request');
      error = new ConnectError('INTERNAL');
    }
    // Refusals are logged once, here, with the request (the logger redacts its credentials and masks its address).
    if (error.status < 500) request.log.info({ req: request, code: error.code, reason: error.message }, 'request refused');
    // Pages (sign-in, device approval) answer with a page a person can read; everything else with JSON.
    if ((request.routeOptions.config as { page?: boolean } | undefined)?.page) return errorPage(reply, error);
    void reply.status(error.status).send({ error: error.toJSON() });
  });
  app.setNotFoundHandler(async (request, reply) => {
    if (spa?.wantsIndex(request) && (await spa.sendIndex(reply))) return reply;
    return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });
}
