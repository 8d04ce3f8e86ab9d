/**
 * Browser sessions: created by a magic-link sign-in, carried in the `pc_session` cookie, stored as SHA-256.
 * sessions and users are not workspace-scoped and are reached only here, through withCredentials (store/system.ts). The workspace a
 * session acts in is checked against workspace_members on every request, so a removed member loses access at once.
 */

import type { MemberRole } from '@private-connect/api';
import { ConnectError, isUuid } from '@private-connect/protocol';
import type { Database, Queryable } from '../db/index.js';
import { withCredentials } from './system.js';
import { generateToken, hashSecret, hashesEqual } from '../secrets.js';
import type { RequestMeta } from './users.js';

/** Name of the session cookie, as the routes read and set it (over https it is SECURE_SESSION_COOKIE on the wire). */
export const SESSION_COOKIE = 'pc_session';
/**
 * The session cookie's name over https: browsers take a `__Host-` cookie only with Secure, Path=/ and no Domain, from
 * the host itself, so no sibling host (a subdomain-mode public link) can set or shadow it (auth/session-cookie.ts).
 */
export const SECURE_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;
/** A session unused for this long has ended. */
export const SESSION_IDLE_MS = 30 * 86_400_000;
/** last_seen_at is written at most this often, so reads do not turn into a write per request. */
export const SESSION_TOUCH_MS = 60_000;

export type { MemberRole };

/** A signed-in user acting in one of their workspaces. */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  email: string;
  workspaceId: string;
  role: MemberRole;
  sessionId: string;
}

/** Creates a session for userId in the caller's withCredentials transaction; returns the cookie value. */
export async function createSession(tx: Queryable, userId: string, now: Date, meta: RequestMeta): Promise<string> {
  const token = generateToken();
  await tx.query(
    `insert into sessions (token_hash, user_id, created_at, last_seen_at, ip, user_agent) values ($1, $2, $3, $3, $4, $5)`,
    [hashSecret(token), userId, now, meta.ip ?? null, meta.userAgent?.slice(0, 512) ?? null],
  );
  return token;
}

/**
 * Resolves a session cookie to a user in a workspace: the one named by `workspace` (X-Workspace-Id) if the user
 * is a member of it, else the personal workspace (or, once removed from that, the oldest membership). Throws
 * UNAUTHORIZED / SESSION_EXPIRED for the session, and the same NOT_FOUND for a workspace that does not exist and
 * one the user is not a member of.
 */
export async function authenticateSession(db: Database, cookie: string, workspace: string | undefined, now: Date): Promise<UserPrincipal> {
  const hash = hashSecret(cookie);
  const [row] = await withCredentials(db, (tx) =>
    tx.query<{ id: string; token_hash: Buffer; user_id: string; email: string; last_seen_at: Date; revoked_at: Date | null }>(
      `select s.id, s.token_hash, s.user_id, u.email, s.last_seen_at, s.revoked_at
         from sessions s join users u on u.id = s.user_id where s.token_hash = $1`,
      [hash],
    ),
  );
  if (!row || !hashesEqual(toBuffer(row.token_hash), hash)) throw new ConnectError('UNAUTHORIZED', 'the session is not valid; sign in again');
  const lastSeen = new Date(row.last_seen_at).getTime();
  if (row.revoked_at || lastSeen + SESSION_IDLE_MS <= now.getTime()) throw new ConnectError('SESSION_EXPIRED');
  if (workspace !== undefined && !isUuid(workspace)) throw workspaceNotFound(workspace);
  const [member] = await withCredentials(db, async (tx) => {
    if (lastSeen + SESSION_TOUCH_MS <= now.getTime()) {
      await tx.query('update sessions set last_seen_at = $2 where id = $1 and last_seen_at < $2', [row.id, now]);
    }
    return tx.query<{ workspace_id: string; role: MemberRole }>(
      `select m.workspace_id, m.role from workspace_members m join workspaces w on w.id = m.workspace_id
              join users u on u.id = m.user_id
        where m.user_id = $1 and ($2::uuid is null or m.workspace_id = $2::uuid)
        order by m.workspace_id = u.personal_workspace_id desc nulls last, m.created_at, w.created_at, w.id limit 1`,
      [row.user_id, workspace ?? null],
    );
  });
  if (!member) throw workspaceNotFound(workspace ?? '');
  return { kind: 'user', userId: row.user_id, email: row.email, workspaceId: member.workspace_id, role: member.role, sessionId: row.id };
}

/** Ends the session with this cookie value (logout). Unknown or already ended sessions are left alone. */
export async function revokeSession(db: Database, cookie: string, now: Date): Promise<void> {
  await withCredentials(db, (tx) => tx.query('update sessions set revoked_at = $2 where token_hash = $1 and revoked_at is null', [hashSecret(cookie), now]));
}

/** The one answer for a workspace the caller cannot see, whether it exists or not (same as guard.notFound). */
export function workspaceNotFound(ref: string): ConnectError {
  return new ConnectError('NOT_FOUND', `Workspace not found: ${ref.slice(0, 80)}`);
}

function toBuffer(value: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value.replace(/^\\x/, ''), 'hex');
  return Buffer.from(value);
}
