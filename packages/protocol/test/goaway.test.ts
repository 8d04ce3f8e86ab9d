/** Tests for the GOAWAY payload parser in src/control.ts and its limit MAX_GOAWAY_RECONNECT_MS. */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_GOAWAY_RECONNECT_MS, MAX_SMALL_JSON, ProtocolError, parseGoAway } from '../src/index.js';

const payload = (value: unknown) => Buffer.from(JSON.stringify(value));
const badMessage = (field: RegExp) => (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE' && field.test(err.message);

describe('parseGoAway', () => {
  test('reads code, message and reconnectMs', () => {
    assert.deepEqual(parseGoAway(payload({ code: 'SHUTTING_DOWN', message: 'bye', reconnectMs: 250 })), { code: 'SHUTTING_DOWN', message: 'bye', reconnectMs: 250 });
  });

  test('defaults reconnectMs to 500 and the message to empty', () => {
    assert.deepEqual(parseGoAway(payload({ code: 'SHUTTING_DOWN' })), { code: 'SHUTTING_DOWN', message: '', reconnectMs: 500 });
  });

  test('accepts reconnectMs up to MAX_GOAWAY_RECONNECT_MS and refuses one past it', () => {
    assert.equal(parseGoAway(payload({ code: 'SHUTTING_DOWN', reconnectMs: MAX_GOAWAY_RECONNECT_MS })).reconnectMs, MAX_GOAWAY_RECONNECT_MS);
    assert.throws(() => parseGoAway(payload({ code: 'SHUTTING_DOWN', reconnectMs: MAX_GOAWAY_RECONNECT_MS + 1 })), badMessage(/reconnectMs/));
  });

  test('refuses a negative, fractional or non-numeric reconnectMs', () => {
    for (const reconnectMs of [-1, 1.5, '500', null]) {
      assert.throws(() => parseGoAway(payload({ code: 'SHUTTING_DOWN', reconnectMs })), badMessage(/reconnectMs/), String(reconnectMs));
    }
  });

  test('refuses an unknown code, a message that is not a string, and a payload that is not a JSON object', () => {
    assert.throws(() => parseGoAway(payload({ code: 'NOPE' })), badMessage(/GOAWAY\.code/));
    assert.throws(() => parseGoAway(payload({ code: 'SHUTTING_DOWN', message: 7 })), badMessage(/GOAWAY\.message/));
    assert.throws(() => parseGoAway(Buffer.from('[1]')), badMessage(/JSON object/));
    assert.throws(() => parseGoAway(Buffer.from('{')), badMessage(/not valid JSON/));
  });

  test('refuses a payload longer than MAX_SMALL_JSON', () => {
    const big = payload({ code: 'SHUTTING_DOWN', message: 'x'.repeat(MAX_SMALL_JSON) });
    assert.throws(() => parseGoAway(big), badMessage(/too large/));
  });
});
