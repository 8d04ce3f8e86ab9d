/**
 * Audit events for every access through a share, public link or hub port. There can be thousands a second (a
 * public link under load), so they are queued and written in batches: one multi-row insert per workspace every
 * `flushMs`, or at once when `maxQueued` pile up. `close()` writes what is left. A failed write is logged and
 * those events are dropped; the request they describe was already answered.
 */

import { randomUUID } from 'node:crypto';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { AuditEvent } from '../store/audit.js';

export interface AccessLog {
  record(workspaceId: string, event: AuditEvent): void;
  /** Writes everything queued so far (tests call it before reading the audit log). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createAccessLog(db: Database, log: Logger, options: { flushMs?: number; maxQueued?: number } = {}): AccessLog {
  const flushMs = options.flushMs ?? 250;
  const maxQueued = options.maxQueued ?? 2000;
  let queue: Array<{ workspaceId: string; event: AuditEvent; at: Date }> = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  const write = async (batch: typeof queue) => {
    const byWorkspace = new Map<string, typeof queue>();
    for (const item of batch) {
      const list = byWorkspace.get(item.workspaceId);
      if (list) list.push(item);
      else byWorkspace.set(item.workspaceId, [item]);
    }
    for (const [workspaceId, items] of byWorkspace) {
      try {
        await db.withWorkspace(workspaceId, async (tx) => {
          for (let i = 0; i < items.length; i += 500) {
            const chunk = items.slice(i, i + 500);
            const params: unknown[] = [];
            const rows = chunk.map(({ event, at }) => {
              const base = params.length;
              params.push(workspaceId, at, event.actorType, event.actorId ?? null, event.action, event.targetType ?? null, event.targetId ?? null, event.ip ?? null, event.userAgent?.slice(0, 512) ?? null, JSON.stringify(event.metadata ?? {}), randomUUID());
              return `(${Array.from({ length: 11 }, (_, k) => `$${base + k + 1}`).join(', ')})`;
            });
            // public_id from Node: the column's gen_random_uuid() default costs the embedded database a read of
            // /dev/urandom through its emulated file system per row, several times the insert itself.
            await tx.query(
              `insert into audit_log (workspace_id, at, actor_type, actor_id, action, target_type, target_id, ip, user_agent, metadata, public_id) values ${rows.join(', ')}`,
              params,
            );
          }
        });
      } catch (err) {
        log.error({ err, workspace: workspaceId, events: items.length }, 'writing access events to the audit log failed');
      }
    }
  };

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    queue = [];
    writing = writing.then(() => (batch.length > 0 ? write(batch) : undefined));
    return writing;
  };

  return {
    record(workspaceId, event) {
      queue.push({ workspaceId, event, at: new Date() });
      if (queue.length >= maxQueued) void flush();
      else timer ??= setTimeout(() => void flush(), flushMs);
    },
    flush,
    close: flush,
  };
}
