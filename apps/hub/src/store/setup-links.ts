/**
 * Setup links: the one-time link the first start prints (and `connect-hub setup-link` prints again). Whoever opens
 * it and signs in by magic link becomes owner of the workspace the first start made. The link carries a 256-bit
 * secret; setup_links keeps only its SHA-256 and is reached only here, through withCredentials (store/system.ts; migration 011).
 */

import { ConnectError } from '@private-connect/protocol';
import type { Database, Queryable } from '../db/index.js';
import { hashSecret } from '../secrets.js';
import { recordAudit, type AuditEvent } from './audit.js';
import { generateLinkToken, MAX_LINK_TOKEN } from './magic-links.js';
import type { MemberRole } from './sessions.js';
import { withBootstrap, withCredentials } from './system.js';
import { findOrCreateUser } from './users.js';

/** How long a setup link works: the operator may open it the next day, not next month. */
export const SETUP_LINK_TTL_MS = 24 * 3_600_000;
/** The page a setup link opens (pages/setup-page.ts). */
export const SETUP_PATH = '/setup';

/** The link to print: the setup page on the dashboard's origin. */
export function setupLinkUrl(dashboardUrl: string, token: string): string {
  return `${dashboardUrl.replace(/\/+$/, '')}${SETUP_PATH}?token=${encodeURIComponent(token)}`;
}

/**
 * A new setup link for `workspaceId`, in the caller's withCredentials (or withBootstrap) transaction. Earlier links of the workspace that
 * were not used stop working: only the newest one printed can make an owner.
 */
export async function createSetupLink(tx: Queryable, workspaceId: string, now: Date): Promise<{ token: string; expiresAt: Date }> {
  const token = generateLinkToken();
  const expiresAt = new Date(now.getTime() + SETUP_LINK_TTL_MS);
  await tx.query('update setup_links set expires_at = $2 where workspace_id = $1 and used_at is null and expires_at > $2', [workspaceId, now]);
  await tx.query('insert into setup_links (token_hash, workspace_id, created_at, expires_at) values ($1, $2, $3, $4)', [hashSecret(token), workspaceId, now, expiresAt]);
  return { token, expiresAt };
}

export interface OpenSetupLink {
  id: string;
  workspaceId: string;
  workspaceName: string;
  expiresAt: Date;
}

/** The setup link with this secret if it still works; throws UNAUTHORIZED (unknown), LINK_USED or LINK_EXPIRED. */
export async function findSetupLink(tx: Queryable, token: unknown, now: Date): Promise<OpenSetupLink> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_LINK_TOKEN) throw unknownSetupLink();
  const [row] = await tx.query<{ id: string; workspace_id: string; name: string; expires_at: Date; used_at: Date | null }>(
    'select s.id, s.workspace_id, w.name, s.expires_at, s.used_at from setup_links s join workspaces w on w.id = s.workspace_id where s.token_hash = $1',
    [hashSecret(token)],
  );
  if (!row) throw unknownSetupLink();
  if (row.used_at) throw setupLinkUsed();
  if (new Date(row.expires_at).getTime() <= now.getTime()) throw setupLinkExpired();
  return { id: row.id, workspaceId: row.workspace_id, workspaceName: row.name, expiresAt: new Date(row.expires_at) };
}

/**
 * Marks the setup link used and returns its workspace, in the caller's withCredentials transaction. The update is the
 * single-use check: of two sign-ins through one setup link exactly one matches `used_at is null`; the other gets
 * LINK_USED (or LINK_EXPIRED) and its transaction rolls back. Call setSetupLinkUser once the user is known.
 */
export async function claimSetupLink(tx: Queryable, id: string, now: Date): Promise<string> {
  const [row] = await tx.query<{ workspace_id: string }>(
    'update setup_links set used_at = $2 where id = $1 and used_at is null and expires_at > $2 returning workspace_id',
    [id, now],
  );
  if (row) return row.workspace_id;
  const [why] = await tx.query<{ used_at: Date | null }>('select used_at from setup_links where id = $1', [id]);
  throw why?.used_at ? setupLinkUsed() : setupLinkExpired();
}

/** Records who used the setup link (the user it made owner). */
export async function setSetupLinkUser(tx: Queryable, id: string, userId: string): Promise<void> {
  await tx.query('update setup_links set used_by = $2 where id = $1', [id, userId]);
}

/**
 * Makes `userId` owner of `workspaceId` (a new membership, or a member or admin promoted) and records it in the
 * workspace's audit log; `audit` says who did it and how (`via`). Returns what changed: 'added', 'promoted' or
 * 'unchanged' (already owner).
 */
export async function makeOwner(
  tx: Queryable,
  workspaceId: string,
  user: { id: string; email: string },
  now: Date,
  audit: Pick<AuditEvent, 'actorType' | 'actorId' | 'ip' | 'userAgent'> & { via: string },
): Promise<'added' | 'promoted' | 'unchanged'> {
  const [before] = await tx.query<{ role: MemberRole }>('select role from workspace_members where workspace_id = $1 and user_id = $2', [workspaceId, user.id]);
  if (before?.role === 'owner') return 'unchanged';
  if (before) await tx.query(`update workspace_members set role = 'owner' where workspace_id = $1 and user_id = $2`, [workspaceId, user.id]);
  else await tx.query(`insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, 'owner', $3)`, [workspaceId, user.id, now]);
  const { via, ...actor } = audit;
  await recordAudit(tx, workspaceId, {
    ...actor,
    action: before ? 'member.role' : 'member.add',
    targetType: 'user',
    targetId: user.id,
    metadata: before ? { email: user.email, from: before.role, role: 'owner', via } : { email: user.email, role: 'owner', via },
  });
  return before ? 'promoted' : 'added';
}

/** The setup link `token` if it still works (the setup page, before anyone is signed in); else as findSetupLink. */
export async function lookupSetupLink(db: Database, token: unknown, now: Date): Promise<OpenSetupLink> {
  return withCredentials(db, (tx) => findSetupLink(tx, token, now));
}

/** `connect-hub setup-link`: a new setup link for the workspace (an operator command, hence withBootstrap). */
export async function issueSetupLink(db: Database, workspaceId: string, now: Date): Promise<{ token: string; expiresAt: Date }> {
  return withBootstrap(db, (tx) => createSetupLink(tx, workspaceId, now));
}

/**
 * `connect-hub make-owner`: `email` (created if new, with this workspace as its default) becomes owner of the
 * workspace, audited as the system (an operator command, hence withBootstrap).
 */
export async function makeOwnerByEmail(db: Database, workspaceId: string, email: string, now: Date): Promise<'added' | 'promoted' | 'unchanged'> {
  return withBootstrap(db, async (tx) => {
    const user = await findOrCreateUser(tx, email, now, {}, workspaceId);
    return makeOwner(tx, workspaceId, user, now, { actorType: 'system', via: 'connect-hub make-owner' });
  });
}

function unknownSetupLink(): ConnectError {
  return new ConnectError('UNAUTHORIZED', 'this setup link is not valid; copy the whole link the hub printed, or print a new one with `connect-hub setup-link`');
}

function setupLinkUsed(): ConnectError {
  return new ConnectError('LINK_USED', 'this setup link was already used: the workspace has its owner. Ask the owner to invite you, or the operator to run `connect-hub make-owner <email>`');
}

function setupLinkExpired(): ConnectError {
  return new ConnectError('LINK_EXPIRED', 'this setup link has expired (it works for 24 hours, and only the newest one printed works); print a new one with `connect-hub setup-link`');
}
