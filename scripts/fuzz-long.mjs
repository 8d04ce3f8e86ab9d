#!/usr/bin/env node
// The long fuzz run, outside CI: the same properties as packages/protocol/test/fuzz.test.ts (one module defines
// them: packages/protocol/test/fuzz-properties.ts), each given an equal share of FUZZ_SECONDS (default 300) with no
// run limit, then the allocation check with 20,000 decoders. Usage: npm run fuzz   (builds first)
//   FUZZ_SECONDS=60 node scripts/fuzz-long.mjs        FUZZ_SEED=123 replays a seed (each property gets it)
// Exits 1 on the first failing property, after printing fast-check's report (counterexample, seed, path).
import { existsSync } from 'node:fs';

const built = new URL('../packages/protocol/dist/test/fuzz-properties.js', import.meta.url);
if (!existsSync(built)) {
  console.error('fuzz: packages/protocol is not built; run `npx tsc -b` (or `npm run fuzz`, which builds) first');
  process.exit(1);
}
const { announcedLengthMemory, checkProperty, fuzzProperties } = await import(built.href);

const seconds = Number(process.env.FUZZ_SECONDS || 300);
if (!Number.isFinite(seconds) || seconds <= 0) {
  console.error(`fuzz: FUZZ_SECONDS must be a positive number of seconds, got "${process.env.FUZZ_SECONDS}"`);
  process.exit(1);
}
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const properties = fuzzProperties();
const share = Math.max(1, Math.floor((seconds * 1000) / properties.length));
console.log(`fuzz: ${properties.length} properties, ${(share / 1000).toFixed(1)} s each, seed ${seed}`);

let total = 0;
for (const p of properties) {
  const started = Date.now();
  const result = checkProperty(p, { numRuns: Number.MAX_SAFE_INTEGER, timeLimitMs: share, seed });
  total += result.numRuns;
  const took = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${String(result.numRuns).padStart(9)} runs ${took.padStart(6)} s  ${p.name}`);
  if (!result.ok) {
    console.error(result.report);
    process.exit(1);
  }
}
const memory = announcedLengthMemory(20_000, seed);
const ratio = memory.grew / memory.announced;
console.log(`memory: 20000 decoders, ${(memory.announced / 2 ** 30).toFixed(0)} GiB announced, heap grew ${(memory.grew / 2 ** 20).toFixed(1)} MiB (ratio ${ratio.toExponential(1)})`);
if (memory.grew > 64 * 2 ** 20) {
  console.error('FAIL: the decoders hold more than 64 MiB for headers alone');
  process.exit(1);
}
console.log(`fuzz: ${total} runs, no failure`);
