/** Agents and their tokens: enrolment, last-seen bookkeeping, listing. */

import type { AgentKeys } from '@private-connect/protocol';
import type { Queryable } from '../db/index.js';
import { generateToken, hashSecret } from '../secrets.js';
import { recordAudit } from './audit.js';

export interface EnrolledAgent {
  agentId: string;
  workspaceId: string;
  label: string;
  token: string;
  expiresAt: Date;
}

export interface EnrolInput {
  label: string;
  hostname?: string;
  platform?: string;
  ttlMs: number;
  /** Enrolment time, from the hub's clock. */
  now: Date;
  /**
   * The API key that enrolled the agent, or (device-code approval) the user who approved it: the agent is then that
   * member's (agents.enrolled_by) and is revoked when they leave the workspace; with an API key it is the workspace's.
   */
  keyId?: string;
  userId?: string;
  ip?: string;
  userAgent?: string;
}

/** Creates an agent and its first token (shown once) in the current workspace. */
export async function enrolAgent(tx: Queryable, workspaceId: string, input: EnrolInput): Promise<EnrolledAgent> {
  const [agent] = await tx.query<{ id: string }>(
    `insert into agents (workspace_id, label, hostname, platform, enrolled_by) values ($1, $2, $3, $4, $5) returning id`,
    [workspaceId, input.label, input.hostname ?? null, input.platform ?? null, input.userId ?? null],
  );
  const token = generateToken();
  const expiresAt = new Date(input.now.getTime() + input.ttlMs);
  await tx.query(
    `insert into agent_tokens (workspace_id, agent_id, token_hash, expires_at) values ($1, $2, $3, $4)`,
    [workspaceId, agent!.id, hashSecret(token), expiresAt],
  );
  await recordAudit(tx, workspaceId, {
    actorType: input.userId ? 'user' : 'api_key',
    actorId: input.userId ?? input.keyId,
    action: 'agent.enroll',
    targetType: 'agent',
    targetId: agent!.id,
    ip: input.ip,
    userAgent: input.userAgent,
    metadata: { label: input.label },
  });
  return { agentId: agent!.id, workspaceId, label: input.label, token, expiresAt };
}

/** An agent's registered keys: its identity key and the static key it signed (null until it sent them). */
export interface StoredKeys {
  identityKey: string | null;
  staticKey: string | null;
}

/**
 * Refreshes what the agent reported about itself in its hello (token use is recordAgentTokenUse's job). Returns the
 * keys stored before, so that the caller sees an agent that came back with another identity.
 */
export async function updateAgentDetails(
  tx: Queryable,
  agentId: string,
  info: { version?: string; hostname?: string; platform?: string; identityKey?: string; staticKey?: string; staticSig?: string },
): Promise<StoredKeys> {
  const [before] = await tx.query<{ identity_key: string | null; static_key: string | null }>(
    `select identity_key, static_key from agents where id = $1 for update`,
    [agentId],
  );
  await tx.query(
    `update agents set version = coalesce($2, version), hostname = coalesce($3, hostname), platform = coalesce($4, platform),
            identity_key = coalesce($5, identity_key),
            -- A new identity without a static key drops the old one: its signature is the old identity's.
            static_key = case when $6::text is not null then $6::text when $5::text <> identity_key then null else static_key end,
            static_sig = case when $6::text is not null then $7::text when $5::text <> identity_key then null else static_sig end
      where id = $1`,
    [agentId, info.version ?? null, info.hostname ?? null, info.platform ?? null, info.identityKey ?? null, info.staticKey ?? null, info.staticSig ?? null],
  );
  return { identityKey: before?.identity_key ?? null, staticKey: before?.static_key ?? null };
}

export interface AgentRow {
  id: string;
  label: string;
  hostname: string | null;
  platform: string | null;
  version: string | null;
  last_seen_at: Date | null;
  /** Whole; the API masks it (maskIp) before it leaves the hub. */
  last_ip: string | null;
  /** Expiry of the current token: the newest one neither revoked nor replaced by a rotation. */
  token_expires_at: Date | null;
  created_at: Date;
  identity_key: string | null;
  static_key: string | null;
  /** The member who enrolled it by device login; null: enrolled with an API key, the workspace's. */
  enrolled_by: string | null;
}

/** Whether the current workspace has this agent (not revoked). */
export async function agentExists(tx: Queryable, agentId: string): Promise<boolean> {
  const rows = await tx.query<{ id: string }>(`select id from agents where id = $1 and revoked_at is null`, [agentId]);
  return rows.length > 0;
}

/** Lists the current workspace's agents. */
export async function listAgents(tx: Queryable): Promise<AgentRow[]> {
  return tx.query<AgentRow>(
    `select a.id, a.label, a.hostname, a.platform, a.version, a.last_seen_at, a.last_ip, a.created_at, a.identity_key, a.static_key, a.enrolled_by,
            (select t.expires_at from agent_tokens t
              where t.agent_id = a.id and t.revoked_at is null and t.grace_until is null
              order by t.created_at desc limit 1) as token_expires_at
       from agents a where a.revoked_at is null order by a.label, a.created_at`,
  );
}

/** The keys of the current workspace's agent, while it has a static key (resolve and reach hand them to openers). */
export async function agentKeys(tx: Queryable, agentId: string): Promise<AgentKeys | undefined> {
  const [row] = await tx.query<{ identity_key: string | null; static_key: string | null; static_sig: string | null }>(
    `select identity_key, static_key, static_sig from agents where id = $1 and revoked_at is null`,
    [agentId],
  );
  if (!row?.identity_key || !row.static_key || !row.static_sig) return undefined;
  return { identityKey: row.identity_key, staticKey: row.static_key, staticSig: row.static_sig };
}
