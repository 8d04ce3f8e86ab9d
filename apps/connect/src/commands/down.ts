/**
 * `connect down [name]`: stop the `expose` and `reach` processes of this config folder (all, or those of one service)
 * and forget them in state.json, so the daemon does not bring them back; a running daemon is told to drop them.
 */

import { forgetServices, isAlive, listRuns } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color } from '../output.js';
import { signalDaemonReload } from './daemon.js';

/** How long `connect down` waits for the processes (and the daemon's services) to stop. */
export const DOWN_WAIT_MS = 5000;

export async function down(ctx: Context, name?: string): Promise<number> {
  const matches = (await listRuns(ctx.home)).filter((r) => name === undefined || r.name === name);
  const processes = matches.filter((r) => !r.daemon);
  for (const run of processes) process.kill(run.pid, 'SIGTERM');
  const forgotten = await forgetServices(ctx.home, name);
  const daemonNotified = (forgotten.length > 0 || matches.some((r) => r.daemon)) && (await signalDaemonReload(ctx.home));
  const deadline = Date.now() + DOWN_WAIT_MS;
  const stillRunning = async () => {
    const live = (await listRuns(ctx.home)).filter((r) => name === undefined || r.name === name);
    return matches.filter((m) => (m.daemon ? live.some((r) => r.daemon && r.pid === m.pid && r.name === m.name && r.command === m.command) : isAlive(m.pid)));
  };
  let stuck = await stillRunning();
  while (stuck.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    stuck = await stillRunning();
  }
  const stopped = matches.filter((r) => !stuck.includes(r));
  const what = name === undefined ? '' : ` of ${name}`;
  const human =
    matches.length === 0 && forgotten.length === 0
      ? name === undefined
        ? 'nothing was running or remembered'
        : `nothing named ${name} runs or is remembered here (see connect status)`
      : [
          `${color.green('✓')} stopped ${stopped.length} service process(es)${what}${daemonNotified ? ' (the daemon dropped its share)' : ''}`,
          ...(forgotten.length ? [color.dim(`  forgotten in state.json: ${forgotten.map((e) => `${e.kind} ${e.name}`).join(', ')}`)] : []),
          ...(stuck.length ? [`${color.red('✗')} still running: ${stuck.map((r) => r.pid).join(', ')}; stop them with: kill ${[...new Set(stuck.map((r) => r.pid))].join(' ')}`] : []),
        ].join('\n');
  ctx.out.result(
    {
      stopped: stopped.map((r) => ({ pid: r.pid, command: r.command, name: r.name, ...(r.daemon ? { daemon: true } : {}) })),
      stuck: stuck.map((r) => r.pid),
      forgotten,
      daemonNotified,
    },
    human,
  );
  return stuck.length ? 1 : 0;
}
