/**
 * The harness itself: a hub that does not come up in time must not outlive the failed start. Before, the child
 * kept running with its pipes open, so the test file's process never ended and `npm test` hung (seen on a loaded
 * machine: a hub that took more than 30 s to start held invitations-cli.test.js for ten minutes).
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { eventually, startHubProcess } from '../src/index.js';

/** Pids of processes whose command line contains marker (the process in the hub's place, silent for 60 s). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(marker)) pids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

describe('harness: starting a hub process', () => {
  it('stops a hub that did not log "hub listening" within the start timeout, and rejects', async () => {
    const marker = `pc-slow-start-${randomBytes(6).toString('hex')}`;
    await assert.rejects(
      startHubProcess({ shellBefore: `exec "$0" -e 'setTimeout(() => {}, 60_000)' ${marker}`, startTimeoutMs: 500 }),
      /no "hub listening" log line within 500 ms/,
    );
    await eventually(async () => assert.deepEqual(processesWith(marker), []), 5000);
  });
});
