/** `connect down`: stop the agent processes (`expose`, `reach`) running from this config folder. */

import { isAlive, listRuns } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color } from '../output.js';

export async function down(ctx: Context): Promise<number> {
  const runs = await listRuns(ctx.home);
  for (const run of runs) process.kill(run.pid, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (runs.some((r) => isAlive(r.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const stuck = runs.filter((r) => isAlive(r.pid));
  ctx.out.result(
    { stopped: runs.filter((r) => !stuck.includes(r)).map((r) => ({ pid: r.pid, command: r.command, name: r.name })), stuck: stuck.map((r) => r.pid) },
    runs.length === 0 ? 'nothing was running' : `${color.green('✓')} stopped ${runs.length - stuck.length} agent process(es)` + (stuck.length ? `; still running: ${stuck.map((r) => r.pid).join(', ')}` : ''),
  );
  return stuck.length ? 1 : 0;
}
