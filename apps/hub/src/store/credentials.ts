/**
 * Credential lookups. These are the only queries that run before the workspace is known, so they use
 * withCredentials (store/system.ts); everything they return is the minimum needed to build a Principal.
 */

import { ConnectError } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import { withCredentials } from './system.js';
import { hashSecret, hashesEqual, isAgentToken, isApiKey } from '../secrets.js';
import { authenticateSession, type UserPrincipal } from './sessions.js';

/** Who is calling: an enrolled agent (by token), an API key, or a signed-in user (session cookie). */
export type Principal =
  | { kind: 'agent'; workspaceId: string; agentId: string; tokenId: string; label: string; expiresAt: Date; validUntil: Date }
  | { kind: 'api_key'; workspaceId: string; keyId: string }
  | UserPrincipal;

interface TokenRow {
  id: string;
  agent_id: string;
  workspace_id: string;
  token_hash: Buffer;
  expires_at: Date;
  revoked_at: Date | null;
  grace_until: Date | null;
  label: string;
  agent_revoked_at: Date | null;
}

interface KeyRow {
  id: string;
  workspace_id: string;
  key_hash: Buffer;
  revoked_at: Date | null;
}

const INVALID = 'the credentials are not valid; check the API key or run `connect up` again';

/**
 * UNAUTHORIZED for a credential that exists but no longer works: the answer is the same as for a bad one, the
 * `authFailure` marker only tells the hub's metrics why (relay-stats.ts).
 */
function refused(authFailure: 'revoked' | 'expired', message: string): ConnectError {
  return Object.assign(new ConnectError('UNAUTHORIZED', message), { authFailure });
}

/** Resolves a bearer secret (API key or agent token) to a Principal, or throws UNAUTHORIZED / TOKEN_EXPIRED. */
export async function authenticate(db: Database, secret: string | undefined, now = new Date()): Promise<Principal> {
  if (!secret) throw new ConnectError('UNAUTHORIZED', 'missing credentials: send Authorization: Bearer <API key or agent token>');
  const hash = hashSecret(secret);
  if (isApiKey(secret)) {
    const [row] = await withCredentials(db, (tx) =>
      tx.query<KeyRow>('select id, workspace_id, key_hash, revoked_at from api_keys where key_hash = $1', [hash]),
    );
    if (!row || !hashesEqual(toBuffer(row.key_hash), hash)) throw new ConnectError('UNAUTHORIZED', INVALID);
    if (row.revoked_at) throw refused('revoked', INVALID);
    return { kind: 'api_key', workspaceId: row.workspace_id, keyId: row.id };
  }
  if (isAgentToken(secret)) {
    const [row] = await withCredentials(db, (tx) =>
      tx.query<TokenRow>(
        `select t.id, t.agent_id, t.workspace_id, t.token_hash, t.expires_at, t.revoked_at, t.grace_until, a.label,
                a.revoked_at as agent_revoked_at
           from agent_tokens t join agents a on a.id = t.agent_id
          where t.token_hash = $1`,
        [hash],
      ),
    );
    if (!row || !hashesEqual(toBuffer(row.token_hash), hash)) throw new ConnectError('UNAUTHORIZED', INVALID);
    if (row.revoked_at || row.agent_revoked_at) throw refused('revoked', INVALID);
    // A token replaced by `connect up --rotate-token` works until its grace period ends, then like any bad token.
    if (row.grace_until && new Date(row.grace_until) <= now) {
      throw refused('expired', 'this agent token was replaced by a rotation and its 24-hour grace period is over; use the new token (or run `connect up` again to re-enrol)');
    }
    const expiresAt = new Date(row.expires_at);
    if (expiresAt <= now) {
      throw new ConnectError('TOKEN_EXPIRED', `the agent token expired at ${expiresAt.toISOString()}; run \`connect up\` again to re-enrol`);
    }
    // validUntil: when this token stops working (expiry, or the end of its rotation grace period).
    const validUntil = row.grace_until && new Date(row.grace_until) < expiresAt ? new Date(row.grace_until) : expiresAt;
    return { kind: 'agent', workspaceId: row.workspace_id, agentId: row.agent_id, tokenId: row.id, label: row.label, expiresAt, validUntil };
  }
  throw new ConnectError('UNAUTHORIZED', INVALID);
}

/** The credentials a request may carry. */
export interface RequestCredentials {
  authorization?: string;
  /** Value of the pc_session cookie. */
  sessionCookie?: string;
  /** X-Workspace-Id: which of a signed-in user's workspaces to act in (ignored for bearer credentials). */
  workspaceHeader?: string | string[];
}

/** Authenticates a request: a bearer secret when present, else the session cookie. */
export async function authenticateRequest(db: Database, creds: RequestCredentials, now = new Date()): Promise<Principal> {
  const secret = bearer(creds.authorization);
  if (secret !== undefined || !creds.sessionCookie) return authenticate(db, secret, now);
  const workspace = Array.isArray(creds.workspaceHeader) ? creds.workspaceHeader[0] : creds.workspaceHeader;
  return authenticateSession(db, creds.sessionCookie, workspace || undefined, now);
}

/** Reads the bearer secret from an Authorization header value. */
export function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function toBuffer(value: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value.replace(/^\\x/, ''), 'hex');
  return Buffer.from(value);
}
