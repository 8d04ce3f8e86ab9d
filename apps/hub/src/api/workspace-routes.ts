/**
 * Workspaces and members: list and create workspaces, read and change a workspace's settings, invite by email (magic link), list and revoke pending
 * invitations, list and remove members (which revokes the member's pending invitations and the agents they enrolled by
 * device login, cutting those agents' connections as DELETE /v1/agents/:id does).
 * Routes under /v1/workspaces/:id act in workspace :id; a workspace the caller is not in answers exactly like one
 * that does not exist (guard.notFound).
 */

import { ROUTE_SCHEMAS } from '@private-connect/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError, isUuid } from '@private-connect/protocol';
import type { Principal } from '../store/credentials.js';
import { createInvitation, listPendingInvitations, revokeInvitation } from '../store/invitations.js';
import { createWorkspace, findWorkspace, listMembers, listUserWorkspaces, MAX_WORKSPACE_NAME, removeMember } from '../store/members.js';
import { recordAudit } from '../store/audit.js';
import { directPathsOn, setDirectPaths } from '../store/direct.js';
import { MAX_EMAIL, normalizeEmail } from '../store/users.js';
import { requestMeta, verifyLink, type IdentityDeps } from './auth-routes.js';
import { authorize, notFound, type Action } from '../auth/guard.js';
import { principalActor } from '../auth/actor.js';
import { endMemberEventStreams } from './event-routes.js';
import { cutRevokedAgent } from '../relay/cuts.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

/** Authenticates for workspace `id` and authorizes `action` there; another workspace's id is notFound. */
async function principalIn(request: FastifyRequest, id: string, action: Action): Promise<Principal> {
  const valid = isUuid(id);
  // A user's session resolves in workspace :id itself (membership checked per request); bearer credentials belong
  // to one workspace, which must be :id.
  const principal = await request.authenticate(valid ? id : undefined);
  if (!valid || principal.workspaceId !== id) throw notFound('workspace', id);
  authorize(principal, action);
  return principal;
}

export function registerWorkspaceRoutes(app: FastifyInstance, deps: IdentityDeps): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  api.get('/v1/workspaces', { schema: ROUTE_SCHEMAS['GET /v1/workspaces'] }, async (request) => {
    const principal = await request.authenticate();
    authorize(principal, 'workspace.read');
    if (principal.kind === 'user') return { workspaces: await listUserWorkspaces(deps.db, principal.userId) };
    const row = await findWorkspace(deps.db, principal.workspaceId);
    return { workspaces: row ? [{ id: row.id, name: row.name, role: null }] : [] };
  });

  api.post('/v1/workspaces', { schema: ROUTE_SCHEMAS['POST /v1/workspaces'] }, async (request, reply) => {
    const principal = await request.authenticate();
    if (principal.kind !== 'user') throw new ConnectError('FORBIDDEN', 'creating a workspace needs a signed-in user, not an API key or agent token');
    const name = request.body.name.trim();
    if (name === '') throw new ConnectError('BAD_REQUEST', `expected a workspace name of 1 to ${MAX_WORKSPACE_NAME} characters`);
    const workspace = await createWorkspace(deps.db, principal.userId, name, deps.clock.now(), requestMeta(request));
    void reply.status(201);
    // As GET /v1/workspaces/:id answers it, setting included (a new workspace takes direct paths).
    return { ...workspace, directPaths: await deps.db.withWorkspace(workspace.id, directPathsOn) };
  });

  api.get('/v1/workspaces/:id', { schema: ROUTE_SCHEMAS['GET /v1/workspaces/:id'] }, async (request) => {
    const { id } = request.params;
    const principal = await principalIn(request, id, 'workspace.read');
    const row = await findWorkspace(deps.db, id);
    if (!row) throw notFound('workspace', id);
    const directPaths = await deps.db.withWorkspace(id, directPathsOn);
    return { id: row.id, name: row.name, role: principal.kind === 'user' ? principal.role : null, directPaths };
  });

  // The workspace's settings. Direct paths off: no new direct tickets; those handed out lapse within
  // DIRECT_TICKET_TTL_MS (docs/direct.md), after which every stream goes through the hub.
  api.patch('/v1/workspaces/:id', { schema: ROUTE_SCHEMAS['PATCH /v1/workspaces/:id'] }, async (request) => {
    const { id } = request.params;
    const principal = await principalIn(request, id, 'workspace.settings');
    const { directPaths } = request.body;
    const row = await findWorkspace(deps.db, id);
    if (!row) throw notFound('workspace', id);
    const now = await deps.db.withWorkspace(id, async (tx) => {
      if (directPaths === undefined) return directPathsOn(tx);
      const before = await setDirectPaths(tx, directPaths);
      if (before !== directPaths) {
        await recordAudit(tx, id, { ...principalActor(principal), action: 'workspace.update', targetType: 'workspace', targetId: id, ...requestMeta(request), metadata: { directPaths } });
      }
      return directPaths;
    });
    return { id: row.id, name: row.name, role: principal.kind === 'user' ? principal.role : null, directPaths: now };
  });

  api.get('/v1/workspaces/:id/members', { schema: ROUTE_SCHEMAS['GET /v1/workspaces/:id/members'] }, async (request) => {
    const { id } = request.params;
    await principalIn(request, id, 'members.read');
    return { members: await listMembers(deps.db, id) };
  });

  api.post('/v1/workspaces/:id/invites', { schema: ROUTE_SCHEMAS['POST /v1/workspaces/:id/invites'] }, async (request, reply) => {
    const { id } = request.params;
    const principal = await principalIn(request, id, 'members.manage');
    const body = request.body;
    const email = normalizeEmail(body.email);
    const role = body.role ?? 'member';
    const invitedBy = principal.kind === 'user' ? principal.userId : undefined;
    const invitation = { workspaceId: id, email, role, invitedBy };
    const { id: invitationId, token, expiresAt } = await createInvitation(deps.db, invitation, principalActor(principal), deps.clock.now(), requestMeta(request));
    await deps.mailer.send({ to: email, subject: 'You are invited to a Private Connect workspace', intro: 'Open this link to join the workspace.', link: verifyLink(deps, token) });
    void reply.status(202);
    return { id: invitationId, email, role, expiresAt: expiresAt.toISOString() };
  });

  // Listing and revoking invitations: admins, and API keys (revoking only takes access away; members.read already
  // shows a key the members' addresses). Another workspace's invitation answers like a missing one (RLS).
  api.get('/v1/workspaces/:id/invitations', { schema: ROUTE_SCHEMAS['GET /v1/workspaces/:id/invitations'] }, async (request) => {
    const { id } = request.params;
    await principalIn(request, id, 'invitations.manage');
    return { invitations: await listPendingInvitations(deps.db, id, deps.clock.now()) };
  });

  api.delete('/v1/workspaces/:id/invitations/:invitationId', { schema: ROUTE_SCHEMAS['DELETE /v1/workspaces/:id/invitations/:invitationId'] }, async (request, reply) => {
    const { id, invitationId } = request.params;
    const principal = await principalIn(request, id, 'invitations.manage');
    if (!isUuid(invitationId)) throw notFound('invite', invitationId);
    if (!(await revokeInvitation(deps.db, id, invitationId, principalActor(principal), deps.clock.now(), requestMeta(request)))) throw notFound('invite', invitationId);
    void reply.status(204);
  });

  api.delete('/v1/workspaces/:id/members/:userId', { schema: ROUTE_SCHEMAS['DELETE /v1/workspaces/:id/members/:userId'] }, async (request, reply) => {
    const { id, userId } = request.params;
    const principal = await principalIn(request, id, 'members.manage');
    if (!isUuid(userId)) throw notFound('member', userId);
    const { actorType, actorId } = principalActor(principal);
    const actor = { kind: actorType, id: actorId, role: principal.kind === 'user' ? principal.role : undefined };
    const removed = await removeMember(deps.db, id, actor, userId, deps.clock.now(), requestMeta(request));
    if (!removed) throw notFound('member', userId);
    // Their live view ends now, not at its next recheck.
    endMemberEventStreams(deps.events, id, userId);
    // The agents they enrolled by device login were revoked with them: their connections end now, here and on the
    // other hubs, and exposing agents drop their direct sessions (end_sessions), as after DELETE /v1/agents/:id.
    for (const agentId of removed.revokedAgents) {
      cutRevokedAgent(deps, id, agentId);
      deps.cluster?.revokeAgent(id, agentId);
    }
    void reply.status(204);
  });
}
