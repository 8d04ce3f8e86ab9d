/** The audit log: append-only, one row per security-relevant event, IP kept whole (unlike logs). */

import { randomUUID } from 'node:crypto';
import { MAX_AUDIT_PAGE } from '@private-connect/api';
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

/** The stored user agent's length. */
export const MAX_USER_AGENT = 512;

/** audit_log's columns for one event, after workspace_id (and at, when the caller gives the time). */
const EVENT_COLUMNS = ['actor_type', 'actor_id', 'action', 'target_type', 'target_id', 'ip', 'user_agent', 'metadata', 'public_id'];

/** An event's values in EVENT_COLUMNS order; throws when its metadata has no JSON. */
export function auditEventValues(event: AuditEvent): unknown[] {
  return [
    event.actorType,
    event.actorId ?? null,
    event.action,
    event.targetType ?? null,
    event.targetId ?? null,
    event.ip ?? null,
    event.userAgent?.slice(0, MAX_USER_AGENT) ?? null,
    JSON.stringify(event.metadata ?? {}),
    // public_id from Node: the column's gen_random_uuid() default costs the embedded database a read of
    // /dev/urandom through its emulated file system per row, several times the insert itself.
    randomUUID(),
  ];
}

/** `$first, $first+1, ...` for one row of `n` values. */
function placeholders(first: number, n: number): string {
  return Array.from({ length: n }, (_, i) => `$${first + i}`).join(', ');
}

/** Appends an event to the current workspace's audit log (inside withWorkspace), at the database's time. */
export async function recordAudit(tx: Queryable, workspaceId: string, event: AuditEvent): Promise<void> {
  await tx.query(`insert into audit_log (workspace_id, ${EVENT_COLUMNS.join(', ')}) values (${placeholders(1, EVENT_COLUMNS.length + 1)})`, [workspaceId, ...auditEventValues(event)]);
}

/**
 * Appends several events, each at its own time, in one insert (inside withWorkspace): the access log's batches.
 * `values` of each row come from auditEventValues.
 */
export async function insertAuditRows(tx: Queryable, workspaceId: string, rows: ReadonlyArray<{ at: Date; values: unknown[] }>): Promise<void> {
  const width = EVENT_COLUMNS.length + 2;
  const tuples = rows.map((_, r) => `(${placeholders(r * width + 1, width)})`);
  await tx.query(
    `insert into audit_log (workspace_id, at, ${EVENT_COLUMNS.join(', ')}) values ${tuples.join(', ')}`,
    rows.flatMap((row) => [workspaceId, row.at, ...row.values]),
  );
}

/** Most events GET /v1/audit returns in one page. */
export { MAX_AUDIT_PAGE };

export interface AuditFilter {
  action?: string;
  actorType?: string;
  targetType?: string;
  /** Events by this agent or about it. */
  agentId?: string;
  since?: Date;
  until?: Date;
  /**
   * Only events older than this one (the cursor: the id of the previous page's last event), by (at, internal id).
   * It must be an event of the current workspace (see hasAuditEvent); another workspace's id matches nothing.
   */
  before?: string;
  limit: number;
}

export interface AuditRow {
  /** The event's public id (a random UUID), never the internal sequence number. */
  id: string;
  at: Date;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  metadata: Record<string, unknown> | string;
}

/** The current workspace's audit events matching `filter`, newest first by time (inside withWorkspace: RLS scopes it). */
export async function listAudit(tx: Queryable, filter: AuditFilter): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    where.push(clause.replace('?', `$${params.length}`));
  };
  if (filter.action) add('action = ?', filter.action);
  if (filter.actorType) add('actor_type = ?', filter.actorType);
  if (filter.targetType) add('target_type = ?', filter.targetType);
  if (filter.agentId) {
    add(`((actor_type = 'agent' and actor_id = ?) or (target_type = 'agent' and target_id = $${params.length + 1}))`, filter.agentId);
  }
  if (filter.since) add('at >= ?', filter.since);
  if (filter.until) add('at < ?', filter.until);
  // Keyset on (at, id): exact whatever the page size, however many events share one timestamp (one transaction's
  // events do). The cursor's own row is read here, inside RLS, so `at` keeps the database's microseconds.
  if (filter.before) add('(at, id) < (select c.at, c.id from audit_log c where c.public_id = ?::uuid)', filter.before);
  params.push(Math.min(Math.max(filter.limit, 1), MAX_AUDIT_PAGE));
  return tx.query<AuditRow>(
    // ORDER BY names audit_log.id: a bare `id` there would be the output column, the public id.
    `select public_id::text as id, at, actor_type, actor_id, action, target_type, target_id, ip, user_agent, metadata
       from audit_log ${where.length ? `where ${where.join(' and ')}` : ''}
      order by at desc, audit_log.id desc limit $${params.length}`,
    params,
  );
}

/** Whether `publicId` is an event of the current workspace (inside withWorkspace): a page cursor must be one. */
export async function hasAuditEvent(tx: Queryable, publicId: string): Promise<boolean> {
  const rows = await tx.query('select 1 from audit_log where public_id = $1::uuid', [publicId]);
  return rows.length > 0;
}
