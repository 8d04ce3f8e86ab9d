/**
 * The fuzz properties of the wire format, defined once: the CI test (fuzz.test.ts, a few thousand runs each) and the
 * long run outside CI (`npm run fuzz`, scripts/fuzz-long.mjs, FUZZ_SECONDS) both run exactly these.
 *
 * What they hold to: decoders and parsers return a well-formed value or throw a ProtocolError / ConnectError with
 * a stable code, never anything else (TypeError, RangeError...); encode → decode is the identity; a FrameDecoder
 * gives the same frames however its input is cut, holds at most one frame, and refuses an oversized header as
 * soon as the header is complete, without allocating what the header announces.
 */

import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, ProtocolError, encodeFrame } from '../src/index.js';
import { oversizedHeader, type FuzzProperty } from './fuzz-arbitraries.js';
import { controlProperties } from './fuzz-control.js';
import { frameProperties } from './fuzz-frame.js';

export type { FuzzProperty } from './fuzz-arbitraries.js';

/** Every property, frames first. */
export function fuzzProperties(): FuzzProperty[] {
  return [...frameProperties(), ...controlProperties()];
}

export interface CheckResult {
  name: string;
  ok: boolean;
  numRuns: number;
  /** fast-check's report (counterexample, seed and path to replay it) when the property failed. */
  report?: string;
}

/** Runs one property: `numRuns` runs, or until `timeLimitMs` when given; `seed` replays a run. */
export function checkProperty(p: FuzzProperty, options: { numRuns: number; timeLimitMs?: number; seed?: number; path?: string }): CheckResult {
  const details = fc.check(p.property, {
    numRuns: options.numRuns,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.path !== undefined ? { path: options.path } : {}),
    ...(options.timeLimitMs !== undefined ? { plugins: [fc.interruptAfterTimeLimit(options.timeLimitMs)] } : {}),
  });
  const cause = details.errorInstance instanceof Error ? `\n${details.errorInstance.stack ?? details.errorInstance.message}` : '';
  const report = details.failed ? `${fc.defaultReportMessage(details)}${cause}` : undefined;
  return { name: p.name, ok: !details.failed, numRuns: details.numRuns, ...(report ? { report } : {}) };
}

/** Forces a full garbage collection (what --expose-gc gives, without the flag). */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * Feeds `runs` decoders a header announcing a huge or a large legal length (kept alive, so nothing they allocated
 * can be collected) and reports how much the heap grew against what the headers announced.
 */
export function announcedLengthMemory(runs: number, seed = 42): { announced: number; grew: number } {
  const headers = fc.sample(oversizedHeader, { numRuns: runs, seed });
  const kept: FrameDecoder[] = [];
  collectGarbage();
  const before = process.memoryUsage();
  let announced = 0;
  for (const { header, length } of headers) {
    const refused = new FrameDecoder();
    assert.throws(() => refused.push(header), ProtocolError);
    const waiting = new FrameDecoder();
    const legal = encodeFrame(FrameType.DATA, 1, Buffer.alloc(0));
    legal.writeUInt32BE(MAX_FRAME_PAYLOAD, 6);
    waiting.push(Buffer.concat([legal, Buffer.alloc(16)]));
    kept.push(refused, waiting);
    announced += length + MAX_FRAME_PAYLOAD;
  }
  collectGarbage();
  const after = process.memoryUsage();
  const grew = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  assert.equal(kept.length, runs * 2);
  return { announced, grew };
}
