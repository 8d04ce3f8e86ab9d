/**
 * The hub's start-up, kept from leaving memory behind. Start-up allocates a lot that dies soon after (the embedded
 * database's file bundle as loaded, migrations, route schemas compiled): V8 grows its young generation to its
 * 32 MiB maximum on the way, and an idle hub then allocates too little for V8 to collect or shrink anything, so
 * `top` showed 25-35 MiB more than the hub holds, for hours. So the young generation does not grow during start-up
 * (from main.ts on), and one full GC follows it. Measured by `npm run bench` (memory part); docs/BENCHMARKS.md, "Memory".
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's default: the young generation doubles when a scavenge finds much of it alive. */
const SEMI_SPACE_GROWTH = 2;

// On import: main.ts imports this module before any other, so the young generation keeps its initial size while the
// hub's modules load and the hub starts, until startupDone().
setFlagsFromString('--semi-space-growth-factor=1');

/** Call once the hub listens: a full GC (V8's gc(), reached through a fresh context), then normal growth again. */
export function startupDone(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH}`);
}
