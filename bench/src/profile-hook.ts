/**
 * Loaded into the hub and agent processes when BENCH_CPU_PROF=<dir> is set (`NODE_OPTIONS=--import <this file>`):
 * each SIGUSR2 toggles the V8 CPU profiler; every stop writes <dir>/<role>-<pid>-<n>.cpuprofile (n = 1, 2, ...),
 * which Chrome DevTools (Performance tab) or `speedscope` open. The relay bench toggles it around each tunnel
 * phase: 1 = throughput, 2 = round trips, 3 = connection rate.
 */

import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const argv = process.argv.slice(2);
  const command = argv.find((a) => a === 'expose' || a === 'reach') ?? 'x';
  const name = command === 'expose' ? argv[argv.indexOf('--name') + 1] : argv[argv.indexOf('reach') + 1];
  const role = process.argv[1]?.includes('/hub/') ? 'hub' : `connect-${command}-${name ?? ''}`.replace(/[^a-z0-9.-]/gi, '_');
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 250 });
  let running = false;
  let n = 0;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      session.post('Profiler.start');
      return;
    }
    running = false;
    const file = join(dir, `${role}-${process.pid}-${++n}.cpuprofile`);
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
