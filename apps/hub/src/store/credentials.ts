/**
 * Credential lookups. These are the only queries that run before the workspace is known, so they use
 * withSystem; everything they return is the minimum needed to build a Principal.
 */

import { ConnectError } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import { hashSecret, hashesEqual, isAgentToken, isApiKey } from '../secrets.js';

/** Who is calling: an enrolled agent (by token) or an API key. */
export type Principal =
  | { kind: 'agent'; workspaceId: string; agentId: string; tokenId: string; label: string; expiresAt: Date }
  | { kind: 'api_key'; workspaceId: string; keyId: string };

interface TokenRow {
  id: string;
  agent_id: string;
  workspace_id: string;
  token_hash: Buffer;
  expires_at: Date;
  revoked_at: Date | null;
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

/** Resolves a bearer secret (API key or agent token) to a Principal, or throws UNAUTHORIZED / TOKEN_EXPIRED. */
export async function authenticate(db: Database, secret: string | undefined, now = new Date()): Promise<Principal> {
  if (!secret) throw new ConnectError('UNAUTHORIZED', 'missing credentials: send Authorization: Bearer <API key or agent token>');
  const hash = hashSecret(secret);
  if (isApiKey(secret)) {
    const [row] = await db.withSystem((tx) =>
      tx.query<KeyRow>('select id, workspace_id, key_hash, revoked_at from api_keys where key_hash = $1', [hash]),
    );
    if (!row || !hashesEqual(toBuffer(row.key_hash), hash) || row.revoked_at) throw new ConnectError('UNAUTHORIZED', INVALID);
    return { kind: 'api_key', workspaceId: row.workspace_id, keyId: row.id };
  }
  if (isAgentToken(secret)) {
    const [row] = await db.withSystem((tx) =>
      tx.query<TokenRow>(
        `select t.id, t.agent_id, t.workspace_id, t.token_hash, t.expires_at, t.revoked_at, a.label,
                a.revoked_at as agent_revoked_at
           from agent_tokens t join agents a on a.id = t.agent_id
          where t.token_hash = $1`,
        [hash],
      ),
    );
    if (!row || !hashesEqual(toBuffer(row.token_hash), hash) || row.revoked_at || row.agent_revoked_at) {
      throw new ConnectError('UNAUTHORIZED', INVALID);
    }
    const expiresAt = new Date(row.expires_at);
    if (expiresAt <= now) {
      throw new ConnectError('TOKEN_EXPIRED', `the agent token expired at ${expiresAt.toISOString()}; run \`connect up\` again to re-enrol`);
    }
    return { kind: 'agent', workspaceId: row.workspace_id, agentId: row.agent_id, tokenId: row.id, label: row.label, expiresAt };
  }
  throw new ConnectError('UNAUTHORIZED', INVALID);
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
