/**
 * Audit events for every access through a share, public link or hub port, written off the request path.
 *
 * There can be thousands a second (a public link under wrk), and on the embedded database every row is PGlite CPU
 * on the hub's own thread. So identical events of one flush window are coalesced: one row stands for `count`
 * requests. Identical means the same workspace, action, actor (type and id), target (type and id), address, user
 * agent (first 512 characters) and metadata (method, path as checked, status, refusal code, mode, upgrade, ...). The
 * row keeps `at` = the first request's time; its metadata gets `count` (always, 1 for a lone request) and `lastAt`
 * (ISO time of the last one, when count > 1). Every request is counted exactly once: the counts of a window's rows
 * add up to its requests.
 *
 * A window is written ACCESS_FLUSH_MS after its first event, or at once when it holds MAX_ACCESS_KEYS distinct events
 * (a flood of distinct paths cannot grow it further); `close()` writes what is left. Windows are written one at a
 * time, in order; rows go in by ROWS_PER_INSERT with a turn of the event loop between inserts, so a big window
 * never blocks requests for long. A failed write is logged with its rows and requests; the requests it describes
 * were already answered.
 *
 * Measured with bench/src/audit-bench.ts: 12,000 link.access a second for 3 s into in-memory PGlite, on this 2-core
 * machine while other work ran (load 5-8, so stalls are noisy). Hub CPU spent on auditing per request, longest
 * event-loop stall:
 *   before (a row per request, inserts of up to 2,000 rows every 250 ms): 43-45 µs; stalls of 65-290 ms
 *   after, every request alike (wrk on one URL): 1.3-1.5 µs (4 rows for 36,000 requests); stalls of 4-14 ms,
 *     the same as with no audit at all
 *   after, every path distinct (nothing to coalesce): 45-48 µs; inserts of ~3 ms each
 */

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { MAX_USER_AGENT, auditEventValues, insertAuditRows, type AuditEvent } from '../store/audit.js';

/** How long one window gathers events before it is written. */
export const ACCESS_FLUSH_MS = 1000;
/** Distinct events one window holds before it is written early. */
export const MAX_ACCESS_KEYS = 1000;
/** Rows per insert: ~3 ms of PGlite at ~30 µs a row, then requests get a turn. */
export const ROWS_PER_INSERT = 100;

export interface AccessLog {
  /** Counts one access; it reaches the audit log with its window (see the module comment). Never throws. */
  /** Records `count` identical accesses (default 1: one request). */
  record(workspaceId: string, event: AuditEvent, count?: number): void;
  /** Writes everything recorded so far (tests call it before reading the audit log). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface AccessLogOptions {
  /** Default ACCESS_FLUSH_MS. */
  flushMs?: number;
  /** Default MAX_ACCESS_KEYS. */
  maxKeys?: number;
}

/** One row to be: the first event of its kind in the window, and how many came. */
interface Entry {
  workspaceId: string;
  event: AuditEvent;
  /** Epoch ms of the first and the last request. */
  at: number;
  last: number;
  count: number;
}

export function createAccessLog(db: Database, log: Logger, options: AccessLogOptions = {}): AccessLog {
  const flushMs = options.flushMs ?? ACCESS_FLUSH_MS;
  const maxKeys = options.maxKeys ?? MAX_ACCESS_KEYS;
  /** The open window, by coalescing key; flush() replaces it with an empty one and hands this one to the writer. */
  let window = new Map<string, Entry>();
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  /** Keys for events whose metadata JSON cannot encode (never coalesced; their write fails and is logged). */
  let unkeyed = 0;

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const batch = window;
    window = new Map();
    if (batch.size > 0) writing = writing.then(() => writeWindow(db, log, [...batch.values()]));
    return writing;
  };

  return {
    record(workspaceId, event, count = 1) {
      const now = Date.now();
      let key: string;
      try {
        key = coalescingKey(workspaceId, event);
      } catch {
        key = `unkeyed:${unkeyed++}`;
      }
      const entry = window.get(key);
      if (entry) {
        entry.count += count;
        entry.last = now;
        return;
      }
      window.set(key, { workspaceId, event, at: now, last: now, count });
      if (window.size >= maxKeys) void flush();
      else timer ??= setTimeout(() => void flush(), flushMs);
    },
    flush,
    close: flush,
  };
}

/**
 * The fields that make two events the same row: everything stored except the time. Each text field is prefixed with
 * its length, so no value can spill into the next one; the metadata is compared as its JSON (the call sites build it
 * with the same key order; two spellings of one metadata would only make two rows).
 */
function coalescingKey(workspaceId: string, event: AuditEvent): string {
  return (
    part(workspaceId) +
    part(event.action) +
    part(event.actorType) +
    part(event.actorId) +
    part(event.targetType) +
    part(event.targetId) +
    part(event.ip) +
    part(event.userAgent?.slice(0, MAX_USER_AGENT)) +
    JSON.stringify(event.metadata ?? {})
  );
}

function part(value: string | undefined): string {
  return value === undefined ? '-' : `${value.length}:${value}`;
}

/**
 * Writes one window: one transaction per workspace, ROWS_PER_INSERT rows per insert, and a turn of the event loop
 * between inserts (PGlite runs on this thread: requests waiting go first). A failed write is logged and skipped.
 */
async function writeWindow(db: Database, log: Logger, entries: Entry[]): Promise<void> {
  const byWorkspace = new Map<string, Array<{ at: Date; values: unknown[]; count: number }>>();
  for (const entry of entries) {
    let row: { at: Date; values: unknown[]; count: number };
    try {
      row = { at: new Date(entry.at), values: rowValues(entry), count: entry.count };
    } catch (err) {
      failed(log, err, entry.workspaceId, [entry.count]);
      continue;
    }
    const list = byWorkspace.get(entry.workspaceId);
    if (list) list.push(row);
    else byWorkspace.set(entry.workspaceId, [row]);
  }
  for (const [workspaceId, list] of byWorkspace) {
    try {
      await db.withWorkspace(workspaceId, async (tx) => {
        for (let i = 0; i < list.length; i += ROWS_PER_INSERT) {
          if (i > 0) await nextTurn();
          const chunk = list.slice(i, i + ROWS_PER_INSERT);
          await insertAuditRows(tx, workspaceId, chunk);
        }
      });
    } catch (err) {
      failed(log, err, workspaceId, list.map((row) => row.count));
    }
  }
}

function failed(log: Logger, err: unknown, workspaceId: string, counts: number[]): void {
  const requests = counts.reduce((sum, count) => sum + count, 0);
  log.error({ err, workspace: workspaceId, rows: counts.length, requests }, 'writing access events to the audit log failed');
}

/** An entry's event values, its metadata with `count` (and `lastAt`); throws when the metadata has no JSON. */
function rowValues({ event, last, count }: Entry): unknown[] {
  return auditEventValues({ ...event, metadata: { ...event.metadata, count, ...(count > 1 ? { lastAt: new Date(last).toISOString() } : {}) } });
}
