/**
 * The 60-second soak (the 10-minute one is `npm run soak`): three agent daemons on loopback doing random echo
 * transfers, aborts and bursts through each other while one of them is SIGKILLed and restarted every ~10 s.
 * Every completed transfer must come back SHA-256 identical; at the end no stream may be left open on the hub or
 * the agents, and the hub's RSS may not have grown past a generous bound. SOAK_SEED replays a run's choices; SOAK_KEEP=1 keeps the
 * hub's and agents' logs.
 */

import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import { runSoak } from '../src/soak.js';
import { DEFAULT_LIMITS, formatSoakReport, soakProblems } from '../src/soak-report.js';

const SECONDS = 60;

test('a minute of random transfers while agents are killed and restarted leaves no stream open, no wrong byte, no hub memory growth', async (t) => {
  const seed = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : randomInt(2 ** 31);
  const report = await runSoak({ seconds: SECONDS, seed, keep: process.env.SOAK_KEEP === '1' }).catch((err: unknown) => {
    throw new Error(`the soak could not run (replay with SOAK_SEED=${seed}): ${err instanceof Error ? err.message : String(err)}`);
  });
  const summary = formatSoakReport(report);
  for (const line of summary.split('\n')) t.diagnostic(line);
  const problems = soakProblems(report, DEFAULT_LIMITS);
  assert.deepEqual(problems, [], `the soak failed (replay with SOAK_SEED=${seed}):\n${problems.join('\n')}\n${summary}`);
});
