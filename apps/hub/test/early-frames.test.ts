/**
 * EarlyFrames (relay/early-frames.ts): the DATA and CLOSE an opener sends while its open is still looked up are
 * held within the stream's initial credit and the sender's connection window, in order, and given back when dropped.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionCredit, FrameType, INITIAL_STREAM_WINDOW, MAX_FRAME_PAYLOAD, ProtocolError, encodeFrame } from '@private-connect/protocol';
import { EarlyFrames } from '../src/relay/early-frames.js';

const data = (bytes: number) => encodeFrame(FrameType.DATA, 1, Buffer.alloc(bytes));
const refused = (code: string) => (err: unknown) => err instanceof ProtocolError && err.code === code;

describe('early frames of an open still looked up', () => {
  test('refuses DATA past the stream\'s initial credit with FLOW_CONTROL', () => {
    const early = new EarlyFrames();
    const window = new ConnectionCredit(() => undefined, 2 * INITIAL_STREAM_WINDOW);
    for (let i = 0; i < INITIAL_STREAM_WINDOW / MAX_FRAME_PAYLOAD; i++) early.hold(1, data(MAX_FRAME_PAYLOAD), { window });
    assert.throws(() => early.hold(1, data(1), { window }), refused('FLOW_CONTROL'));
    assert.equal(window.held, INITIAL_STREAM_WINDOW);
  });

  test('refuses DATA past the sender\'s connection window with FLOW_CONTROL', () => {
    const window = new ConnectionCredit(() => undefined, 10);
    new EarlyFrames().hold(1, data(8), { window });
    assert.throws(() => new EarlyFrames().hold(3, data(3), { window }), refused('FLOW_CONTROL'));
  });

  test('refuses DATA or CLOSE after CLOSE with PROTOCOL_ERROR', () => {
    const early = new EarlyFrames();
    early.hold(1, encodeFrame(FrameType.CLOSE, 1));
    assert.throws(() => early.hold(1, data(1)), refused('PROTOCOL_ERROR'));
    assert.throws(() => early.hold(1, encodeFrame(FrameType.CLOSE, 1)), refused('PROTOCOL_ERROR'));
  });

  test('gives the held bytes back to the sender\'s window when dropped, once', () => {
    const granted: number[] = [];
    const window = new ConnectionCredit((n) => granted.push(n), 100, 1);
    const early = new EarlyFrames();
    early.hold(1, data(5), { window });
    early.hold(1, data(7), { window });
    assert.equal(window.held, 12);
    early.drop();
    early.drop();
    assert.equal(window.held, 0);
    assert.deepEqual(granted, [5, 7]);
  });
});
