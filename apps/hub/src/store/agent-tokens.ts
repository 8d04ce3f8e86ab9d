/**
 * Agent token lifecycle after enrolment: recording each use (IP, user agent, IP changes), rotation with a grace
 * period, and revoking an agent. Every time comes from the hub's clock and reaches SQL as a parameter.
 */

import { ConnectError } from '@private-connect/protocol';
import type { Queryable } from '../db/index.js';
import { generateToken, hashSecret } from '../secrets.js';
import { recordAudit, type ActorType } from './audit.js';

/** How long a rotated-out token keeps working. */
export const ROTATION_GRACE_MS = 24 * 60 * 60 * 1000;

/**
 * Token use is audited at most once per token per hour (`agent.token_use`), so that an agent polling the API
 * does not flood the log; last_used_at, last_ip and last_user_agent are updated on every use.
 */
export const TOKEN_USE_AUDIT_INTERVAL_MS = 60 * 60 * 1000;

export interface TokenUse {
  ip?: string;
  userAgent?: string;
  /** 'http' for an API request, 'websocket' for an agent connection. */
  via: 'http' | 'websocket';
  now: Date;
}

/**
 * Records one use of an agent token: the token's last use, the agent's last IP, an `agent.token_use` audit event
 * (throttled, see TOKEN_USE_AUDIT_INTERVAL_MS) and an `agent.ip_changed` event when the IP differs from the last one.
 */
export async function recordAgentTokenUse(tx: Queryable, workspaceId: string, agentId: string, tokenId: string, use: TokenUse): Promise<void> {
  const [before] = await tx.query<{ last_ip: string | null; last_audited_at: Date | null }>(
    `select a.last_ip, t.last_audited_at from agent_tokens t join agents a on a.id = t.agent_id where t.id = $1 for update of t`,
    [tokenId],
  );
  const userAgent = use.userAgent?.slice(0, 512) ?? null;
  const auditDue = !before?.last_audited_at || use.now.getTime() - new Date(before.last_audited_at).getTime() >= TOKEN_USE_AUDIT_INTERVAL_MS;
  await tx.query(
    `update agent_tokens set last_used_at = $2, last_ip = coalesce($3, last_ip), last_user_agent = coalesce($4, last_user_agent),
            last_audited_at = case when $5 then $2 else last_audited_at end
      where id = $1`,
    [tokenId, use.now, use.ip ?? null, userAgent, auditDue],
  );
  await tx.query('update agents set last_seen_at = $2, last_ip = coalesce($3, last_ip) where id = $1', [agentId, use.now, use.ip ?? null]);
  const base = { actorType: 'agent' as const, actorId: agentId, targetType: 'agent', targetId: agentId, ip: use.ip, userAgent: use.userAgent };
  if (auditDue) await recordAudit(tx, workspaceId, { ...base, action: 'agent.token_use', metadata: { tokenId, via: use.via } });
  const previousIp = before?.last_ip ?? null;
  if (previousIp && use.ip && previousIp !== use.ip) {
    await recordAudit(tx, workspaceId, { ...base, action: 'agent.ip_changed', metadata: { previousIp, ip: use.ip, tokenId } });
  }
}

export interface RotatedToken {
  token: string;
  tokenId: string;
  expiresAt: Date;
  /** Until when the previous token keeps working. */
  previousValidUntil: Date;
}

/**
 * Issues a new token for the agent and gives the current one a grace period (at most ROTATION_GRACE_MS, never past
 * its own expiry). A token that was already rotated out cannot rotate again: CONFLICT-like refusal as FORBIDDEN.
 */
export async function rotateAgentToken(
  tx: Queryable,
  workspaceId: string,
  agentId: string,
  tokenId: string,
  input: { now: Date; ttlMs: number; ip?: string; userAgent?: string; actor?: { type: ActorType; id?: string } },
): Promise<RotatedToken> {
  const graceUntil = new Date(input.now.getTime() + ROTATION_GRACE_MS);
  const token = generateToken();
  const expiresAt = new Date(input.now.getTime() + input.ttlMs);
  const [created] = await tx.query<{ id: string }>(
    `insert into agent_tokens (workspace_id, agent_id, token_hash, expires_at) values ($1, $2, $3, $4) returning id`,
    [workspaceId, agentId, hashSecret(token), expiresAt],
  );
  const [old] = await tx.query<{ grace_until: Date }>(
    `update agent_tokens set grace_until = least(expires_at, $2), replaced_by = $3
      where id = $1 and replaced_by is null and revoked_at is null
      returning grace_until`,
    [tokenId, graceUntil, created!.id],
  );
  if (!old) {
    throw new ConnectError('FORBIDDEN', 'this agent token was already rotated; use the newer token saved by `connect up --rotate-token`');
  }
  await recordAudit(tx, workspaceId, {
    actorType: input.actor?.type ?? 'agent',
    actorId: input.actor ? input.actor.id : agentId,
    action: 'agent.token_rotate',
    targetType: 'agent',
    targetId: agentId,
    ip: input.ip,
    userAgent: input.userAgent,
    metadata: { previousTokenId: tokenId, tokenId: created!.id, previousValidUntil: new Date(old.grace_until).toISOString(), expiresAt: expiresAt.toISOString() },
  });
  return { token, tokenId: created!.id, expiresAt, previousValidUntil: new Date(old.grace_until) };
}

/**
 * Revokes an agent of the current workspace and all its tokens. Returns false when there is no such (unrevoked)
 * agent in this workspace, which the caller answers exactly like a random id.
 */
export async function revokeAgent(
  tx: Queryable,
  workspaceId: string,
  agentId: string,
  actor: { type: ActorType; id?: string; ip?: string; userAgent?: string; now: Date },
  /** Why, when not by a direct request (the audit row's metadata): e.g. the member who enrolled it was removed. */
  why?: Record<string, unknown>,
): Promise<boolean> {
  const [row] = await tx.query<{ id: string; label: string }>(
    'update agents set revoked_at = $2 where id = $1 and revoked_at is null returning id, label',
    [agentId, actor.now],
  );
  if (!row) return false;
  await tx.query('update agent_tokens set revoked_at = $2 where agent_id = $1 and revoked_at is null', [agentId, actor.now]);
  await recordAudit(tx, workspaceId, {
    actorType: actor.type,
    actorId: actor.id,
    action: 'agent.revoke',
    targetType: 'agent',
    targetId: agentId,
    ip: actor.ip,
    userAgent: actor.userAgent,
    metadata: { label: row.label, ...why },
  });
  return true;
}
