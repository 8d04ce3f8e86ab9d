/**
 * Workspaces as a user sees them: membership, roles, creation. workspace_members is workspace-scoped (RLS) and is
 * changed inside withWorkspace; the lookups by user (which workspaces am I in) and the email addresses of members
 * read the system-only users table, so those few queries use withCredentials (store/system.ts) and filter by user or workspace id.
 * Removing a member also revokes the agents they enrolled by device login (agents.enrolled_by).
 */

import { MAX_WORKSPACE_NAME } from '@private-connect/api';
import { ConnectError } from '@private-connect/protocol';
import type { MemberInfo, MemberRole } from '@private-connect/api';
import type { Database, Queryable } from '../db/index.js';
import { withBootstrap, withCredentials } from './system.js';
import { recordAudit } from './audit.js';
import { revokeInvitationsOfMember } from './invitations.js';
import { revokeAgent } from './agent-tokens.js';
import type { RequestMeta } from './users.js';

/** Longest workspace name (the column's check). */
export { MAX_WORKSPACE_NAME };

/** A workspace of a signed-in user: theirs, so the role is always there (protocol's WorkspaceInfo, role not null). */
export interface WorkspaceInfo {
  id: string;
  name: string;
  role: MemberRole;
}

export type { MemberInfo };

/** A workspace's id and name. */
export interface WorkspaceRow {
  id: string;
  name: string;
}

/** Every workspace, oldest first, for the operator commands of `connect-hub` (no request, no workspace). */
export async function listAllWorkspaces(db: Database): Promise<WorkspaceRow[]> {
  return withBootstrap(db, (tx) => tx.query<WorkspaceRow>('select id, name from workspaces order by created_at, id'));
}

/** Workspace `workspaceId` as its own RLS context sees it; undefined when it does not exist. */
export async function findWorkspace(db: Database, workspaceId: string): Promise<WorkspaceRow | undefined> {
  const [row] = await db.withWorkspace(workspaceId, (tx) => tx.query<WorkspaceRow>('select id, name from workspaces'));
  return row;
}

/** The workspaces a user belongs to: the personal workspace first, then by age of membership. */
export async function listUserWorkspaces(db: Database, userId: string): Promise<WorkspaceInfo[]> {
  return withCredentials(db, (tx) =>
    tx.query<WorkspaceInfo>(
      `select w.id, w.name, m.role from workspace_members m join workspaces w on w.id = m.workspace_id
              join users u on u.id = m.user_id
        where m.user_id = $1 order by m.workspace_id = u.personal_workspace_id desc nulls last, m.created_at, w.created_at, w.id`,
      [userId],
    ),
  );
}

/** Creates a workspace owned by userId. connect_app may not insert workspaces, hence withBootstrap. */
export async function createWorkspace(db: Database, userId: string, name: string, now: Date, meta: RequestMeta): Promise<WorkspaceInfo> {
  return withBootstrap(db, async (tx) => {
    const [ws] = await tx.query<{ id: string; name: string }>('insert into workspaces (name) values ($1) returning id, name', [name]);
    await tx.query(`insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, 'owner', $3)`, [ws!.id, userId, now]);
    await recordAudit(tx, ws!.id, { actorType: 'user', actorId: userId, action: 'workspace.create', targetType: 'workspace', targetId: ws!.id, ...meta, metadata: { name } });
    return { id: ws!.id, name: ws!.name, role: 'owner' as const };
  });
}

/** Adds userId to workspaceId with role, unless already a member (the existing role is kept). True when added. */
export async function addMember(tx: Queryable, workspaceId: string, userId: string, role: MemberRole, now: Date): Promise<boolean> {
  const rows = await tx.query(
    `insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, $3, $4)
     on conflict (workspace_id, user_id) do nothing returning user_id`,
    [workspaceId, userId, role, now],
  );
  return rows.length > 0;
}

/** Members of a workspace with their email addresses. */
export async function listMembers(db: Database, workspaceId: string): Promise<MemberInfo[]> {
  const rows = await db.withWorkspace(workspaceId, (tx) =>
    tx.query<{ user_id: string; role: MemberRole; created_at: Date }>('select user_id, role, created_at from workspace_members order by created_at, user_id'),
  );
  if (rows.length === 0) return [];
  const users = await withCredentials(db, (tx) =>
    tx.query<{ id: string; email: string }>('select id, email from users where id = any($1::uuid[])', [rows.map((row) => row.user_id)]),
  );
  const emails = new Map(users.map((user) => [user.id, user.email]));
  return rows.map((row) => ({ userId: row.user_id, email: emails.get(row.user_id) ?? '', role: row.role, joinedAt: new Date(row.created_at).toISOString() }));
}

/** What removing a member did besides: the agents they had enrolled by device login, now revoked. */
export interface RemovedMember {
  revokedAgents: string[];
}

/**
 * Removes userId from the workspace (inside withWorkspace, so another workspace's member is simply not found).
 * An admin may not remove an owner, and the last owner cannot be removed. Returns undefined when there is no such member.
 * In the same transaction, every pending invitation sent to the member's address or by the member is revoked:
 * otherwise an older invitation link would let them (or someone they invited) join again. And every agent of this
 * workspace the member enrolled by device login (agents.enrolled_by) is revoked with its tokens, as DELETE
 * /v1/agents/:id does: the caller cuts their live connections (relay/cuts.ts). Agents enrolled with an API key are
 * the workspace's and stay.
 */
export async function removeMember(
  db: Database,
  workspaceId: string,
  actor: { kind: string; id: string; role?: MemberRole },
  userId: string,
  now: Date,
  meta: RequestMeta,
): Promise<RemovedMember | undefined> {
  // The address is in the system-only users table; it is used only to find invitations sent to it.
  const [user] = await withCredentials(db, (tx) => tx.query<{ email: string }>('select email from users where id = $1', [userId]));
  const actorType = actor.kind === 'user' ? 'user' : 'api_key';
  return db.withWorkspace(workspaceId, async (tx) => {
    // Locked until commit: a device code of theirs being redeemed now waits, then finds them gone (device-codes.ts).
    const [target] = await tx.query<{ role: MemberRole }>('select role from workspace_members where user_id = $1 for update', [userId]);
    if (!target) return undefined;
    if (target.role === 'owner') {
      if (actor.kind === 'user' && actor.role !== 'owner') throw new ConnectError('FORBIDDEN', 'only an owner can remove an owner');
      const [{ owners }] = (await tx.query<{ owners: number }>(`select count(*)::int as owners from workspace_members where role = 'owner'`)) as [{ owners: number }];
      if (owners <= 1) throw new ConnectError('FORBIDDEN', 'the last owner of a workspace cannot be removed');
    }
    await revokeInvitationsOfMember(tx, workspaceId, { userId, email: user?.email }, { actorType, actorId: actor.id }, now, meta);
    await tx.query('delete from workspace_members where user_id = $1', [userId]);
    await recordAudit(tx, workspaceId, {
      actorType,
      actorId: actor.id,
      action: 'member.remove',
      targetType: 'user',
      targetId: userId,
      ...meta,
      metadata: { role: target.role },
    });
    const revokedAgents: string[] = [];
    const owned = await tx.query<{ id: string }>(
      'select id from agents where workspace_id = $1 and enrolled_by = $2 and revoked_at is null order by created_at, id',
      [workspaceId, userId],
    );
    for (const { id } of owned) {
      const why = { reason: 'member_removed', userId };
      if (await revokeAgent(tx, workspaceId, id, { type: actorType, id: actor.id, ...meta, now }, why)) revokedAgents.push(id);
    }
    return { revokedAgents };
  });
}
