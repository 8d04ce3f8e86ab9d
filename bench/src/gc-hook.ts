/**
 * Loaded into the hub process by the memory benchmark, and into the hub and agents of the peer benchmark
 * (`NODE_OPTIONS=--import <this file>`, see gc-signal.ts): a full garbage collection on SIGUSR2, so that memory
 * is sampled without the garbage of whatever ran before.
 * It writes "bench-gc-done" to stderr after each collection.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: unknown) => void;
process.on('SIGUSR2', () => {
  gc();
  gc();
  process.stderr.write('bench-gc-done\n');
});
