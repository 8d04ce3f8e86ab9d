/**
 * Invitations to a workspace: who is invited, with which role, by whom, and whether the invitation is pending,
 * accepted or revoked. The table is workspace-scoped (RLS): an admin lists and revokes inside withWorkspace, so
 * another workspace's invitation is simply not found. The secret that accepts an invitation is a magic link naming
 * it; using that link (consumeMagicLink) marks the invitation accepted in the same transaction, or refuses it with
 * INVITATION_REVOKED.
 */

import type { InvitationInfo } from '@private-connect/api';
import type { Database, Queryable } from '../db/index.js';
import { withCredentials } from './system.js';
import { recordAudit, type ActorType } from './audit.js';
import { createMagicLink, INVITE_LINK_TTL_MS } from './magic-links.js';
import type { RequestMeta } from './users.js';

/** Who acts on an invitation, as the audit log names them. */
export interface InvitationActor {
  actorType: ActorType;
  actorId: string;
}

export interface NewInvitation {
  workspaceId: string;
  email: string;
  role: 'admin' | 'member';
  /** The user who sends it (none for an API key). */
  invitedBy?: string;
}

/** Why an invitation stopped being pending before it was accepted. */
export type RevokeReason = 'revoked' | 'member_removed';

const PENDING = 'accepted_at is null and revoked_at is null';

/**
 * Records an invitation (and its member.invite audit event) and creates the link that accepts it. Returns the
 * invitation's id and the link's secret, to be mailed and never stored. The invitation is written first, as
 * connect_app; a link that could not be stored leaves a pending invitation an admin can see and revoke.
 */
export async function createInvitation(
  db: Database,
  invitation: NewInvitation,
  actor: InvitationActor,
  now: Date,
  meta: RequestMeta,
): Promise<{ id: string; token: string; expiresAt: Date }> {
  const { workspaceId, email, role } = invitation;
  const expiresAt = new Date(now.getTime() + INVITE_LINK_TTL_MS);
  const id = await db.withWorkspace(workspaceId, async (tx) => {
    const [row] = await tx.query<{ id: string }>(
      `insert into invitations (workspace_id, email, role, invited_by, created_at, expires_at) values ($1, $2, $3, $4, $5, $6) returning id`,
      [workspaceId, email, role, invitation.invitedBy ?? null, now, expiresAt],
    );
    await recordAudit(tx, workspaceId, { ...actor, action: 'member.invite', targetType: 'email', targetId: email, ...meta, metadata: { email, role, invitationId: row!.id } });
    return row!.id;
  });
  const link = await createMagicLink(db, { email, purpose: 'invite', workspaceId, role, invitedBy: invitation.invitedBy, invitationId: id }, now);
  return { id, token: link.token, expiresAt: link.expiresAt };
}

/** The pending invitations of a workspace (not accepted, revoked or expired), oldest first, with their senders' emails. */
export async function listPendingInvitations(db: Database, workspaceId: string, now: Date): Promise<InvitationInfo[]> {
  const rows = await db.withWorkspace(workspaceId, (tx) =>
    tx.query<{ id: string; email: string; role: 'admin' | 'member'; invited_by: string | null; created_at: Date; expires_at: Date }>(
      `select id, email, role, invited_by, created_at, expires_at from invitations where ${PENDING} and expires_at > $1 order by created_at, id`,
      [now],
    ),
  );
  // Senders' emails live in the system-only users table, read by id only (as listMembers does).
  const senders = [...new Set(rows.flatMap((row) => (row.invited_by ? [row.invited_by] : [])))];
  const users = senders.length === 0 ? [] : await withCredentials(db, (tx) => tx.query<{ id: string; email: string }>('select id, email from users where id = any($1::uuid[])', [senders]));
  const emails = new Map(users.map((user) => [user.id, user.email]));
  return rows.map((row) => ({
    id: row.id,
    email: row.email,
    role: row.role,
    invitedBy: row.invited_by ? (emails.get(row.invited_by) ?? null) : null,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
  }));
}

/**
 * An admin revokes a pending invitation: its link answers INVITATION_REVOKED from now on. False when there is no
 * such pending invitation in this workspace (missing, another workspace's, accepted or already revoked).
 */
export async function revokeInvitation(db: Database, workspaceId: string, id: string, actor: InvitationActor, now: Date, meta: RequestMeta): Promise<boolean> {
  return db.withWorkspace(workspaceId, async (tx) => {
    const [row] = await tx.query<{ id: string; email: string; role: string }>(
      `update invitations set revoked_at = $2, revoke_reason = 'revoked' where id = $1 and ${PENDING} returning id, email, role`,
      [id, now],
    );
    if (!row) return false;
    await auditRevoke(tx, workspaceId, row, 'revoked', actor, meta);
    return true;
  });
}

/**
 * Revokes, in the caller's withWorkspace transaction, every pending invitation sent TO `email` or BY `userId`: what
 * removing that member must take away, or they (or someone they invited) could join again through an older link.
 * Expired ones are revoked too (harmless, and the list stays true). Returns how many were revoked.
 */
export async function revokeInvitationsOfMember(
  tx: Queryable,
  workspaceId: string,
  member: { userId: string; email: string | undefined },
  actor: InvitationActor,
  now: Date,
  meta: RequestMeta,
): Promise<number> {
  const rows = await tx.query<{ id: string; email: string; role: string }>(
    `update invitations set revoked_at = $3, revoke_reason = 'member_removed'
      where ${PENDING} and (email = $1 or invited_by = $2) returning id, email, role`,
    [member.email ?? '', member.userId, now],
  );
  for (const row of rows) await auditRevoke(tx, workspaceId, row, 'member_removed', actor, meta, member.userId);
  return rows.length;
}

async function auditRevoke(
  tx: Queryable,
  workspaceId: string,
  row: { id: string; email: string; role: string },
  reason: RevokeReason,
  actor: InvitationActor,
  meta: RequestMeta,
  removedMember?: string,
): Promise<void> {
  await recordAudit(tx, workspaceId, {
    ...actor,
    action: 'invitation.revoke',
    targetType: 'invitation',
    targetId: row.id,
    ...meta,
    metadata: { email: row.email, role: row.role, reason, ...(removedMember ? { removedMember } : {}) },
  });
}
