/** The audit log: append-only, one row per security-relevant event, IP kept whole (unlike logs). */

import type { Queryable } from '../db/index.js';

export type ActorType = 'user' | 'agent' | 'api_key' | 'system' | 'share' | 'public';

export interface AuditEvent {
  actorType: ActorType;
  actorId?: string;
  action: string;
  targetType?: string;
  targetId?: string;
  ip?: string;
  userAgent?: string;
  metadata?: Record<string, unknown>;
}

/** Appends an event to the current workspace's audit log (inside withWorkspace). */
export async function recordAudit(tx: Queryable, workspaceId: string, event: AuditEvent): Promise<void> {
  await tx.query(
    `insert into audit_log (workspace_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, metadata)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      workspaceId,
      event.actorType,
      event.actorId ?? null,
      event.action,
      event.targetType ?? null,
      event.targetId ?? null,
      event.ip ?? null,
      event.userAgent?.slice(0, 512) ?? null,
      JSON.stringify(event.metadata ?? {}),
    ],
  );
}
