/**
 * Workspaces and members: list and create workspaces, invite by email (magic link), list and remove members.
 * Routes under /v1/workspaces/:id act in workspace :id; a workspace the caller is not in answers exactly like one
 * that does not exist (guard.notFound).
 */

import type { WorkspaceInfo, MemberInfo, InviteSent } from '@private-connect/protocol';
import { CreateWorkspaceRequest, InviteRequest } from '@private-connect/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import type { Principal } from '../store/credentials.js';
import { recordAudit } from '../store/audit.js';
import { createMagicLink } from '../store/magic-links.js';
import { createWorkspace, listMembers, listUserWorkspaces, MAX_WORKSPACE_NAME, removeMember } from '../store/members.js';
import { MAX_EMAIL, normalizeEmail } from '../store/users.js';
import { requestMeta, verifyLink, type IdentityDeps } from './auth-routes.js';
import { authorize, notFound, type Action } from './guard.js';
import { principalOf } from './routes.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Authenticates for workspace `id` and authorizes `action` there; another workspace's id is notFound. */
async function principalIn(request: FastifyRequest, deps: IdentityDeps, id: string, action: Action): Promise<Principal> {
  const valid = UUID.test(id);
  // A user's session resolves in workspace :id itself (membership checked per request); bearer credentials belong
  // to one workspace, which must be :id.
  const principal = await principalOf(request, deps, valid ? id : undefined);
  if (!valid || principal.workspaceId !== id) throw notFound('workspace', id);
  authorize(principal, action);
  return principal;
}

function actorOf(principal: Principal): { actorType: 'user' | 'api_key' | 'agent'; actorId: string } {
  if (principal.kind === 'user') return { actorType: 'user', actorId: principal.userId };
  if (principal.kind === 'api_key') return { actorType: 'api_key', actorId: principal.keyId };
  return { actorType: 'agent', actorId: principal.agentId };
}

export function registerWorkspaceRoutes(app: FastifyInstance, deps: IdentityDeps): void {
  app.get('/v1/workspaces', async (request): Promise<{ workspaces: WorkspaceInfo[] }> => {
    const principal = await principalOf(request, deps);
    authorize(principal, 'workspace.read');
    if (principal.kind === 'user') return { workspaces: await listUserWorkspaces(deps.db, principal.userId) };
    const rows = await deps.db.withWorkspace(principal.workspaceId, (tx) => tx.query<{ id: string; name: string }>('select id, name from workspaces'));
    return { workspaces: rows.map((row) => ({ id: row.id, name: row.name, role: null })) };
  });

  app.post('/v1/workspaces', { schema: { body: CreateWorkspaceRequest } }, async (request, reply): Promise<WorkspaceInfo> => {
    const principal = await principalOf(request, deps);
    if (principal.kind !== 'user') throw new ConnectError('FORBIDDEN', 'creating a workspace needs a signed-in user, not an API key or agent token');
    const name = (request.body as { name: string }).name.trim();
    if (name === '') throw new ConnectError('BAD_REQUEST', `expected a workspace name of 1 to ${MAX_WORKSPACE_NAME} characters`);
    const workspace = await createWorkspace(deps.db, principal.userId, name, deps.clock.now(), requestMeta(request));
    void reply.status(201);
    return workspace;
  });

  app.get('/v1/workspaces/:id', async (request): Promise<WorkspaceInfo> => {
    const { id } = request.params as { id: string };
    const principal = await principalIn(request, deps, id, 'workspace.read');
    const [row] = await deps.db.withWorkspace(id, (tx) => tx.query<{ id: string; name: string }>('select id, name from workspaces'));
    if (!row) throw notFound('workspace', id);
    return { id: row.id, name: row.name, role: principal.kind === 'user' ? principal.role : null };
  });

  app.get('/v1/workspaces/:id/members', async (request): Promise<{ members: MemberInfo[] }> => {
    const { id } = request.params as { id: string };
    await principalIn(request, deps, id, 'members.read');
    return { members: await listMembers(deps.db, id) };
  });

  app.post('/v1/workspaces/:id/invites', { schema: { body: InviteRequest } }, async (request, reply): Promise<InviteSent> => {
    const { id } = request.params as { id: string };
    const principal = await principalIn(request, deps, id, 'members.manage');
    const body = request.body as { email: string; role?: 'admin' | 'member' };
    const email = normalizeEmail(body.email);
    const role = body.role ?? 'member';
    const invitedBy = principal.kind === 'user' ? principal.userId : undefined;
    const now = deps.clock.now();
    const { token, expiresAt } = await createMagicLink(deps.db, { email, purpose: 'invite', workspaceId: id, role, invitedBy }, now);
    await deps.db.withWorkspace(id, (tx) =>
      recordAudit(tx, id, { ...actorOf(principal), action: 'member.invite', targetType: 'email', targetId: email, ...requestMeta(request), metadata: { email, role } }),
    );
    await deps.mailer.send({ to: email, subject: 'You are invited to a Private Connect workspace', intro: 'Open this link to join the workspace.', link: verifyLink(deps, token) });
    void reply.status(202);
    return { email, role, expiresAt: expiresAt.toISOString() };
  });

  app.delete('/v1/workspaces/:id/members/:userId', async (request, reply) => {
    const { id, userId } = request.params as { id: string; userId: string };
    const principal = await principalIn(request, deps, id, 'members.manage');
    if (!UUID.test(userId)) throw notFound('member', userId);
    const { actorType, actorId } = actorOf(principal);
    const actor = { kind: actorType, id: actorId, role: principal.kind === 'user' ? principal.role : undefined };
    if (!(await removeMember(deps.db, id, actor, userId, requestMeta(request)))) throw notFound('member', userId);
    void reply.status(204);
  });
}
