/** Full garbage collections on demand in hub and agent processes that loaded gc-hook.js, so memory is sampled without garbage. */

import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Proc } from '@private-connect/e2e';
import { sleep } from './config.js';

/** The environment that loads gc-hook.js into a Node process (added to whatever NODE_OPTIONS the bench has). */
export function gcHookEnv(): NodeJS.ProcessEnv {
  const hook = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'gc-hook.js')).href;
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim() };
}

/** Full GC in a process started with gcHookEnv(); resolves once it reported it on stderr. */
export async function collectGarbage(proc: Proc, timeoutMs = 10_000): Promise<void> {
  const count = () => proc.stderr().split('bench-gc-done').length;
  const before = count();
  proc.child.kill('SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  while (count() === before) {
    if (Date.now() > deadline) throw new Error(`no garbage collection reported within ${timeoutMs} ms (is gc-hook.js loaded?)`);
    await sleep(20);
  }
  await sleep(300);
}
