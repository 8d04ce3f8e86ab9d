/** REST API of shares (OWNED BY THE SHARES WORK): create, list, revoke, join. */

import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../api/routes.js';
import type { SharingContext } from './context.js';

export function registerShareRoutes(_app: FastifyInstance, _deps: ApiDeps, _sharing: SharingContext): void {}
