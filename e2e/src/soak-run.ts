/**
 * The long soak outside CI (`npm run soak`): SOAK_SECONDS of traffic (default 600), SOAK_SEED to replay a run,
 * SOAK_KILL_EVERY_MS, SOAK_WORKERS and SOAK_RSS_GROWTH_MIB to tune it, SOAK_KEEP=1 to keep the logs. Prints progress and a summary; exits 1 when a
 * check failed.
 */

import { randomInt } from 'node:crypto';
import { runSoak } from './soak.js';
import { DEFAULT_LIMITS, formatSoakReport, soakProblems } from './soak-report.js';

/** A positive integer from the environment, or `fallback` when unset; anything else stops the run naming the variable. */
function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} must be a whole number, got "${text}"`);
    process.exit(2);
  }
  return value;
}

const seconds = envInt('SOAK_SECONDS', 600);
const seed = envInt('SOAK_SEED', randomInt(2 ** 31));
const killEveryMs = envInt('SOAK_KILL_EVERY_MS', 0) || undefined;
const workers = envInt('SOAK_WORKERS', 4);
const rssGrowthBytes = envInt('SOAK_RSS_GROWTH_MIB', DEFAULT_LIMITS.rssGrowthBytes / 1024 / 1024) * 1024 * 1024;

console.log(`soak: ${seconds} s, seed ${seed} (replay with SOAK_SEED=${seed}), ${workers} workers, 3 agents on loopback`);
const keep = process.env.SOAK_KEEP === '1';
const report = await runSoak({ seconds, seed, workers, killEveryMs, keep, onProgress: (line) => console.log(line) });
console.log(formatSoakReport(report));
const problems = soakProblems(report, { ...DEFAULT_LIMITS, rssGrowthBytes });
if (problems.length > 0) {
  console.log(`FAILED (replay with SOAK_SEED=${seed}):\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('passed');
process.exit(0);
