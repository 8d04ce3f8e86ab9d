#!/usr/bin/env node
/**
 * `node bench/dist/src/audit-bench.js`: what auditing public-link requests costs the hub on the embedded database.
 *
 * Records link.access events through the hub's access log (sharing/access-log.ts, default settings) at
 * AUDIT_BENCH_RATE a second (default 12,000, a public link under wrk) for AUDIT_BENCH_SECONDS (default 3) into an
 * in-memory PGlite, then closes it. Two workloads: every request alike (wrk on one URL) and every path distinct (the
 * worst case for coalescing). Prints per request the hub CPU spent on auditing (process CPU minus the same loop with
 * a log that does nothing), the rows written, and the longest stall of the event loop (monitorEventLoopDelay).
 * PGlite runs on the hub's thread, so its time is the hub's CPU and a long insert stalls every request.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAccessLog, createLogger, openDatabase, type AccessLog, type Database } from '@private-connect/hub';
import { table } from './report.js';

const RATE = Number(process.env.AUDIT_BENCH_RATE ?? 12_000);
const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 3);
const SLICE_MS = 10;
const LINK = '7f1c2a9e-5b3d-4c6e-8f10-2a3b4c5d6e7f';

type Workload = 'alike' | 'distinct';

/** A link.access event as the link proxy records it. */
function access(i: number, workload: Workload) {
  return {
    actorType: 'public' as const,
    action: 'link.access',
    targetType: 'link',
    targetId: LINK,
    ip: '127.0.0.1',
    userAgent: 'wrk',
    metadata: { method: 'GET', path: workload === 'alike' ? '/' : `/item/${i}`, status: 200, service: 'web', mode: 'path' },
  };
}

interface Run {
  cpuMicros: number;
  requests: number;
  rows: number;
  maxStallMs: number;
}

/** Records RATE × SECONDS accesses in slices of SLICE_MS, then closes the log; process CPU and the longest stall. */
async function run(db: Database, workspaceId: string, log: AccessLog, workload: Workload): Promise<Run> {
  const total = Math.round(RATE * SECONDS);
  const perSlice = Math.max(1, Math.round((RATE * SLICE_MS) / 1000));
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const start = process.cpuUsage();
  for (let i = 0; i < total; ) {
    for (let k = 0; k < perSlice && i < total; k++, i++) log.record(workspaceId, access(i, workload));
    await sleep(SLICE_MS);
  }
  await log.close();
  const cpu = process.cpuUsage(start);
  loop.disable();
  const [counted] = await db.withWorkspace(workspaceId, (tx) =>
    tx.query<{ rows: number; requests: number }>("select count(*)::int as rows, coalesce(sum((metadata->>'count')::int), 0)::int as requests from audit_log where action = 'link.access'"),
  );
  await db.withSystem((tx) => tx.query('delete from audit_log'));
  return { cpuMicros: cpu.user + cpu.system, requests: counted!.requests, rows: counted!.rows, maxStallMs: loop.max / 1e6 };
}

const nothing: AccessLog = { record: () => undefined, flush: async () => undefined, close: async () => undefined };

async function main(): Promise<void> {
  const db = await openDatabase({});
  const [workspace] = await db.withSystem((tx) => tx.query<{ id: string }>("insert into workspaces (name) values ('audit-bench') returning id"));
  const logger = createLogger('error');
  const rows: string[][] = [];
  const total = Math.round(RATE * SECONDS);
  await run(db, workspace!.id, createAccessLog(db, logger), 'distinct'); // warm-up: WASM, JIT, the table's first pages
  for (const workload of ['alike', 'distinct'] as const) {
    const base = await run(db, workspace!.id, nothing, workload);
    const audited = await run(db, workspace!.id, createAccessLog(db, logger), workload);
    if (audited.requests !== total) throw new Error(`${workload}: the rows count ${audited.requests} requests, not ${total}`);
    rows.push([
      workload === 'alike' ? 'every request alike (wrk on one URL)' : 'every path distinct',
      String(total),
      String(audited.rows),
      ((audited.cpuMicros - base.cpuMicros) / total).toFixed(1),
      audited.maxStallMs.toFixed(1),
      base.maxStallMs.toFixed(1),
    ]);
  }
  await db.close();
  console.log(`link.access audit at ${RATE}/s for ${SECONDS} s, in-memory PGlite, access log defaults`);
  console.log(table(['workload', 'requests', 'rows', 'audit CPU µs/request', 'longest stall ms', 'stall without audit'], rows));
}

await main();
