/**
 * backoffDelay: exponential growth from initialMs (after flatAttempts at initialMs), capped at maxMs, full jitter between
 * initialMs/2 and the ceiling; and the agents' default policy, whose first retries after a lost hub come within 500 ms.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelay, DEFAULT_BACKOFF } from '../src/index.js';

const options = { initialMs: 100, maxMs: 5_000 };
const highest = () => 1 - Number.EPSILON;
const lowest = () => 0;

describe('backoffDelay', () => {
  test('the ceiling doubles with each attempt from initialMs', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, options, () => 1)),
      [100, 200, 400, 800, 1600, 3200],
    );
  });

  test('it is capped at maxMs, also for huge attempt numbers (no Infinity or NaN)', () => {
    for (const attempt of [6, 7, 10, 30, 31, 100, 1_000_000]) {
      const delay = backoffDelay(attempt, options, () => 1);
      assert.equal(delay, 5_000, `attempt ${attempt}`);
    }
    assert.equal(backoffDelay(1_000, DEFAULT_BACKOFF, () => 1), DEFAULT_BACKOFF.maxMs);
  });

  test('the jitter stays between initialMs/2 and the ceiling', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** attempt);
      assert.equal(backoffDelay(attempt, options, lowest), options.initialMs / 2, `lowest at ${attempt}`);
      assert.ok(backoffDelay(attempt, options, highest) <= ceiling, `highest at ${attempt}`);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, options);
        assert.ok(Number.isInteger(delay), `${delay} is whole milliseconds`);
        assert.ok(delay >= options.initialMs / 2 && delay <= ceiling, `attempt ${attempt}: ${delay} not in [${options.initialMs / 2}, ${ceiling}]`);
      }
    }
  });

  test('it is jittered: many delays of one attempt are not all the same', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(6, options)));
    assert.ok(delays.size > 10, `only ${delays.size} distinct delays`);
  });

  test('it resets: attempt 0 after many failures is back in the first range', () => {
    const late = backoffDelay(20, options, () => 1);
    const again = backoffDelay(0, options, () => 1);
    assert.equal(late, options.maxMs);
    assert.equal(again, options.initialMs);
  });

  test('the default policy: the first retry after a lost hub comes within 500 ms, jittered', () => {
    const first = Array.from({ length: 200 }, () => backoffDelay(0));
    assert.ok(Math.max(...first) <= 500, `first retries up to ${Math.max(...first)} ms`);
    assert.ok(new Set(first).size > 20, 'jittered');
    assert.ok(Math.min(...first) >= 250, 'not all at once: at least 250 ms');
  });

  test('the default policy: retries stay within 500 ms for the first 5-10 s of an outage, then grow to the 30 s cap', () => {
    const ceilings = Array.from({ length: 28 }, (_, attempt) => backoffDelay(attempt, DEFAULT_BACKOFF, () => 1));
    assert.deepEqual(ceilings, [...Array<number>(20).fill(500), 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    const covered = Array.from({ length: 20 }, (_, attempt) => backoffDelay(attempt, DEFAULT_BACKOFF, lowest)).reduce((a, b) => a + b);
    assert.equal(covered, 5_000, 'the quick retries cover at least 5 s');
  });

  test('flatAttempts keeps the ceiling at initialMs for that many attempts, then it doubles', () => {
    const flat = { initialMs: 100, maxMs: 5_000, flatAttempts: 3 };
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, flat, () => 1)), [100, 100, 100, 200, 400, 800]);
  });

  test('a cap below initialMs wins over both the floor and the ceiling', () => {
    const tight = { initialMs: 1_000, maxMs: 300 };
    for (const random of [lowest, highest, Math.random]) {
      assert.equal(backoffDelay(0, tight, random), 300);
      assert.equal(backoffDelay(5, tight, random), 300);
    }
  });
});
