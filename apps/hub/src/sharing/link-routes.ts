/** REST API of public links (OWNED BY THE PUBLIC-LINKS WORK): create, list, revoke. */

import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../api/routes.js';
import type { SharingContext } from './context.js';

export function registerLinkRoutes(_app: FastifyInstance, _deps: ApiDeps, _sharing: SharingContext): void {}
