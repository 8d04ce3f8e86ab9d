/**
 * Recovery after `kill -9` of the hub: a real hub, a `connect expose` of the local PostgreSQL and a `connect reach` of
 * it, both with the agents' default reconnect policy. Each round kills the hub, starts it again on the same port and
 * database, and times how long until `psql -c 'select 1'` through the running reach works again: from the kill, and
 * from the moment the new hub logged "hub listening" (the agents' share of it).
 *
 *   node bench/dist/src/recovery-bench.js [rounds]        RECOVERY_DB=pglite|postgres|both (default both)
 *
 * Needs psql and PostgreSQL on 127.0.0.1:5432 (TEST_POSTGRES_URL), which is also the target behind the tunnel.
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { enrolAgent, removeDirs, scratchDatabase, startHubProcess, type HubProcess } from '@private-connect/e2e';

const run = promisify(execFile);

export interface RecoveryRound {
  /** From the kill to the new hub's "hub listening" line. */
  restartMs: number;
  /** From "hub listening" to the first psql that worked through the reach. */
  afterListeningMs: number;
  /** From the kill to the first psql that worked. */
  totalMs: number;
}

/** True when `psql select 1` through 127.0.0.1:`port` answers. */
async function psqlWorks(port: number): Promise<boolean> {
  try {
    const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-Atc', 'select 1'], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '2' },
      timeout: 5000,
    });
    return stdout.trim() === '1';
  } catch {
    return false;
  }
}

export async function recoveryBench(database: 'pglite' | 'postgres', rounds: number): Promise<RecoveryRound[]> {
  const scratch = database === 'postgres' ? await scratchDatabase('recovery') : undefined;
  let hub: HubProcess = await startHubProcess(scratch ? { databaseUrl: scratch.url } : {});
  // The agents' own policy: the harness's test cap (CONNECT_RECONNECT_MAX_MS=500) is lifted.
  const env = { CONNECT_RECONNECT_MAX_MS: '' };
  const exposer = await enrolAgent(hub, { label: 'recovery-db', env });
  const reacher = await enrolAgent(hub, { label: 'recovery-laptop', env });
  const expose = await exposer.expose('127.0.0.1:5432', 'recovery-pg');
  const reach = await reacher.reach('recovery-pg', ['--port', '0']);
  const results: RecoveryRound[] = [];
  try {
    if (!(await psqlWorks(reach.port))) throw new Error('psql through the reach does not work before the first kill');
    for (let round = 0; round < rounds; round++) {
      const { port, dataDir, apiKey } = hub;
      const killed = Date.now();
      await hub.proc.kill();
      hub = await startHubProcess({ port, dataDir, apiKey, ...(scratch ? { databaseUrl: scratch.url } : {}) });
      const listening = Date.now();
      while (!(await psqlWorks(reach.port))) {
        if (Date.now() - killed > 60_000) throw new Error('psql did not work again within 60 s of the kill');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const ok = Date.now();
      results.push({ restartMs: listening - killed, afterListeningMs: ok - listening, totalMs: ok - killed });
      // Let both agents settle (health reports, pins) before the next kill.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    await reach.proc.stop();
    await expose.stop();
    await hub.stop();
    await removeDirs(hub.dataDir, exposer.home, reacher.home);
    await scratch?.drop();
  }
  return results;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const which = process.env.RECOVERY_DB ?? 'both';
  const databases = (which === 'both' ? ['pglite', 'postgres'] : [which]) as Array<'pglite' | 'postgres'>;
  for (const database of databases) {
    const results = await recoveryBench(database, rounds);
    const line = (name: keyof RecoveryRound) =>
      `${name.padEnd(17)} median ${median(results.map((r) => r[name]))} ms   all: ${results.map((r) => r[name]).join(', ')}`;
    console.log(`recovery after kill -9 of the hub, ${database}, ${rounds} rounds`);
    for (const name of ['restartMs', 'afterListeningMs', 'totalMs'] as const) console.log(`  ${line(name)}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
