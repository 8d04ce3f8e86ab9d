/** API keys of a workspace: create (the key is returned once), list (prefix only, never the hash), revoke. */

import type { ApiKeyInfo } from '@private-connect/api';
import type { Queryable } from '../db/index.js';
import { apiKeyPrefix, generateApiKey, hashSecret } from '../secrets.js';
import { recordAudit, type ActorType } from './audit.js';


interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** Who did it, for the audit log. */
export interface Actor {
  type: ActorType;
  id?: string;
  ip?: string;
  userAgent?: string;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

function toInfo(row: ApiKeyRow): ApiKeyInfo {
  return { id: row.id, name: row.name, prefix: row.prefix, createdAt: iso(row.created_at)!, lastUsedAt: iso(row.last_used_at), revokedAt: iso(row.revoked_at) };
}

/** Creates a key in the current workspace; the clear key is in the result and nowhere else. */
export async function createWorkspaceApiKey(tx: Queryable, workspaceId: string, name: string, actor: Actor): Promise<{ key: string; info: ApiKeyInfo }> {
  const key = generateApiKey();
  const [row] = await tx.query<ApiKeyRow>(
    `insert into api_keys (workspace_id, name, prefix, key_hash) values ($1, $2, $3, $4)
     returning id, name, prefix, created_at, last_used_at, revoked_at`,
    [workspaceId, name, apiKeyPrefix(key), hashSecret(key)],
  );
  await recordAudit(tx, workspaceId, { actorType: actor.type, actorId: actor.id, action: 'api_key.create', targetType: 'api_key', targetId: row!.id, ip: actor.ip, userAgent: actor.userAgent, metadata: { name } });
  return { key, info: toInfo(row!) };
}

/** The current workspace's keys, newest first. */
export async function listApiKeys(tx: Queryable): Promise<ApiKeyInfo[]> {
  const rows = await tx.query<ApiKeyRow>('select id, name, prefix, created_at, last_used_at, revoked_at from api_keys order by created_at desc, id');
  return rows.map(toInfo);
}

/** Revokes a key of the current workspace; false when there is no such unrevoked key here. */
export async function revokeApiKey(tx: Queryable, workspaceId: string, keyId: string, actor: Actor & { now: Date }): Promise<boolean> {
  const [row] = await tx.query<{ id: string; name: string }>(
    'update api_keys set revoked_at = $2 where id = $1 and revoked_at is null returning id, name',
    [keyId, actor.now],
  );
  if (!row) return false;
  await recordAudit(tx, workspaceId, { actorType: actor.type, actorId: actor.id, action: 'api_key.revoke', targetType: 'api_key', targetId: keyId, ip: actor.ip, userAgent: actor.userAgent, metadata: { name: row.name } });
  return true;
}

/** Records a use of an API key (last_used_at), from the hub's clock. */
export async function touchApiKey(tx: Queryable, keyId: string, now: Date): Promise<void> {
  await tx.query('update api_keys set last_used_at = $2 where id = $1', [keyId, now]);
}
