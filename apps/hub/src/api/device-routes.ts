/**
 * Device-code enrolment for `connect up --hub URL` without credentials: POST /v1/device/code (agent),
 * POST /v1/device/approve (signed-in member, in the chosen workspace), POST /v1/device/token (agent polls).
 */

import { ROUTE_SCHEMAS, type DeviceApproved } from '@private-connect/api';
import type { FastifyInstance } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import { approveDeviceCode, createDeviceCode, DEVICE_POLL_INTERVAL_S, normalizeUserCode, redeemDeviceCode } from '../store/device-codes.js';
import { requestMeta, type IdentityDeps } from './auth-routes.js';
import { authorize } from '../auth/guard.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

export function registerDeviceRoutes(app: FastifyInstance, deps: IdentityDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  api.post('/v1/device/code', { schema: ROUTE_SCHEMAS['POST /v1/device/code'] }, async (request) => {
    const body = request.body ?? {};
    const code = await createDeviceCode(deps.db, body, deps.clock.now());
    const base = deps.linkBase().replace(/\/+$/, '');
    return {
      device_code: code.deviceCode,
      user_code: code.userCode,
      verification_uri: `${base}/device`,
      verification_uri_complete: `${base}/device?code=${code.userCode}`,
      expires_in: Math.round((code.expiresAt.getTime() - deps.clock.now().getTime()) / 1000),
      interval: DEVICE_POLL_INTERVAL_S,
    };
  });

  api.post('/v1/device/approve', { schema: ROUTE_SCHEMAS['POST /v1/device/approve'] }, async (request): Promise<DeviceApproved> => {
    const body = request.body;
    // The workspace is the session's (X-Workspace-Id, or workspaceId here): membership is checked like any route.
    const principal = await request.authenticate(body.workspaceId);
    if (principal.kind !== 'user') throw new ConnectError('FORBIDDEN', 'approving a device needs a signed-in user; scripts enrol with --api-key');
    authorize(principal, 'agents.enrol');
    const userCode = normalizeUserCode(body.user_code);
    const approved = userCode && (await approveDeviceCode(deps.db, userCode, principal.userId, principal.workspaceId, deps.clock.now(), requestMeta(request)));
    if (!approved) throw new ConnectError('NOT_FOUND', 'Device code not found: it is unknown, expired or already approved');
    return { approved: true, workspaceId: principal.workspaceId };
  });

  api.post('/v1/device/token', { schema: ROUTE_SCHEMAS['POST /v1/device/token'] }, async (request) => {
    const { device_code } = request.body;
    const enrolled = await redeemDeviceCode(deps.db, device_code, deps.agentTokenTtlMs, deps.clock.now(), requestMeta(request));
    return { agentId: enrolled.agentId, workspaceId: enrolled.workspaceId, label: enrolled.label, token: enrolled.token, expiresAt: enrolled.expiresAt.toISOString() };
  });
}
