/**
 * Magic links: single-use sign-in and invitation links. The link carries a 256-bit random secret; the table keeps
 * only its SHA-256. magic_links is not workspace-scoped: it is reached only here, through withCredentials (store/system.ts).
 */

import { MAX_LINK_TOKEN } from '@private-connect/api';
import { randomBytes } from 'node:crypto';
import { ConnectError } from '@private-connect/protocol';
import type { Database, Queryable } from '../db/index.js';
import { withCredentials } from './system.js';
import { hashSecret } from '../secrets.js';

/** How long a sign-in link works. */
export const LOGIN_LINK_TTL_MS = 15 * 60_000;
/** How long an invitation link works: the invitee may not read their mail within minutes. */
export const INVITE_LINK_TTL_MS = 7 * 86_400_000;
/** Longest token accepted from a request; real ones are 43 characters. */
export { MAX_LINK_TOKEN };

/** `setup`: a sign-in that also uses a setup link (store/setup-links.ts) and makes its owner. */
export type LinkPurpose = 'login' | 'invite' | 'setup';

export interface NewLink {
  email: string;
  purpose: LinkPurpose;
  /** Invitations only: the workspace joined and the role given. */
  workspaceId?: string;
  role?: 'admin' | 'member';
  invitedBy?: string;
  /** Invitations only: the invitation (store/invitations.ts) this link accepts. */
  invitationId?: string;
  /** Setup sign-ins only: the setup link (store/setup-links.ts) this sign-in uses. */
  setupLinkId?: string;
}

export interface UsedLink {
  id: string;
  email: string;
  purpose: LinkPurpose;
  workspaceId: string | null;
  role: 'admin' | 'member' | null;
  /** Invitations only: the invitation, now marked accepted. */
  invitationId: string | null;
  /** Setup sign-ins only: the setup link, still to be claimed by the caller (claimSetupLink). */
  setupLinkId: string | null;
}

/**
 * A fresh link secret: 32 random bytes as base64url (43 characters). Not 64 hex on purpose: the log redacts 64-hex
 * strings as agent tokens, and without SMTP the link is delivered through the log.
 */
export function generateLinkToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Stores a new link and returns its secret (to be mailed, never stored) and expiry. */
export async function createMagicLink(db: Database, link: NewLink, now: Date): Promise<{ token: string; expiresAt: Date }> {
  const token = generateLinkToken();
  const ttl = link.purpose === 'invite' ? INVITE_LINK_TTL_MS : LOGIN_LINK_TTL_MS;
  const expiresAt = new Date(now.getTime() + ttl);
  await withCredentials(db, (tx) =>
    tx.query(
      `insert into magic_links (token_hash, email, purpose, workspace_id, role, invited_by, created_at, expires_at, invitation_id, setup_link_id)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [hashSecret(token), link.email, link.purpose, link.workspaceId ?? null, link.role ?? null, link.invitedBy ?? null, now, expiresAt, link.invitationId ?? null, link.setupLinkId ?? null],
    ),
  );
  return { token, expiresAt };
}

/**
 * Marks the link used and returns it, in the caller's withCredentials transaction. The update is the single-use check:
 * of two concurrent uses exactly one matches `used_at is null`. An invitation link also marks its invitation
 * accepted, unless it was revoked (by an admin, or because its member was removed). Throws UNAUTHORIZED (unknown),
 * LINK_USED, INVITATION_REVOKED or LINK_EXPIRED; the caller's transaction then rolls back.
 */
export async function consumeMagicLink(tx: Queryable, token: string, now: Date): Promise<UsedLink> {
  if (token.length === 0 || token.length > MAX_LINK_TOKEN) throw unknownLink();
  const hash = hashSecret(token);
  const [row] = await tx.query<{ id: string; email: string; purpose: LinkPurpose; workspace_id: string | null; role: 'admin' | 'member' | null; invitation_id: string | null; setup_link_id: string | null }>(
    `update magic_links set used_at = $2
      where token_hash = $1 and used_at is null and expires_at > $2
      returning id, email, purpose, workspace_id, role, invitation_id, setup_link_id`,
    [hash, now],
  );
  if (row) {
    if (row.invitation_id) await acceptInvitation(tx, row.invitation_id, now);
    return { id: row.id, email: row.email, purpose: row.purpose, workspaceId: row.workspace_id, role: row.role, invitationId: row.invitation_id, setupLinkId: row.setup_link_id };
  }
  const [why] = await tx.query<{ used_at: Date | null; revoked_at: Date | null }>(
    'select l.used_at, i.revoked_at from magic_links l left join invitations i on i.id = l.invitation_id where l.token_hash = $1',
    [hash],
  );
  if (!why) throw unknownLink();
  if (why.used_at) throw new ConnectError('LINK_USED', 'this sign-in link was already used; each link works once. Ask for a new one');
  if (why.revoked_at) throw invitationRevoked();
  throw new ConnectError('LINK_EXPIRED', 'this sign-in link has expired; ask for a new one');
}

/**
 * Marks the invitation accepted. This update is where a revocation and an acceptance meet: the row lock orders
 * them, and a revoked invitation matches nothing, so the sign-in is refused and rolls back (the link stays unused,
 * and refused).
 */
async function acceptInvitation(tx: Queryable, invitationId: string, now: Date): Promise<void> {
  const [accepted] = await tx.query('update invitations set accepted_at = $2 where id = $1 and accepted_at is null and revoked_at is null returning id', [invitationId, now]);
  if (!accepted) throw invitationRevoked();
}

function invitationRevoked(): ConnectError {
  return new ConnectError('INVITATION_REVOKED', 'this invitation was revoked (by an admin, or because its member was removed); ask an admin of the workspace for a new one');
}

function unknownLink(): ConnectError {
  return new ConnectError('UNAUTHORIZED', 'this sign-in link is not valid; ask for a new one');
}
