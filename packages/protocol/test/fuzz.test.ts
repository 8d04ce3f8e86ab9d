/**
 * The fuzz properties (fuzz-properties.ts) with a CI-sized budget: FUZZ_RUNS runs each (default 2000), a fixed seed
 * unless FUZZ_SEED is set, so that a red run replays. `npm run fuzz` runs the same properties for minutes.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_FRAME_PAYLOAD } from '../src/limits.js';
import { announcedLengthMemory, checkProperty, fuzzProperties } from './fuzz-properties.js';

const numRuns = Number(process.env.FUZZ_RUNS) || 2000;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20_260_107;

describe(`fuzzing the frame codec and the control parsers (${numRuns} runs each, seed ${seed})`, () => {
  for (const p of fuzzProperties()) {
    test(p.name, () => {
      const result = checkProperty(p, { numRuns, seed });
      assert.ok(result.ok, result.report);
    });
  }

  test('2000 decoders given headers announcing 1 MiB to 4 GiB hold kilobytes, not what was announced', () => {
    const runs = 2000;
    const { announced, grew } = announcedLengthMemory(runs);
    assert.ok(announced >= runs * MAX_FRAME_PAYLOAD);
    // Allocating even a hundredth of the announced bytes would be over 20 MiB; what the decoders hold is ~2 MiB.
    assert.ok(grew < announced / 100 && grew < 16 * 1024 * 1024, `the heap grew by ${grew} bytes for ${announced} announced`);
  });
});
