/** Tests for the connection window: WINDOW on stream 0, the hub's ledger of a sender (ConnectionCredit), SendWindow. */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameType, MAX_WINDOW, decodeFrame, encodeWindow, readWindowIncrement } from '../src/frame.js';
import {
  CONNECTION_WINDOW,
  CONNECTION_WINDOW_UPDATE_THRESHOLD,
  INITIAL_STREAM_WINDOW,
  MAX_FRAME_PAYLOAD,
  MAX_STREAMS_PER_CONNECTION,
} from '../src/limits.js';
import { ConnectionCredit, SendWindow } from '../src/connection-window.js';
import { ProtocolError } from '../src/errors.js';

const MiB = 1024 * 1024;

function assertFlowControl(fn: () => void, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ProtocolError && err.code === 'FLOW_CONTROL' && message.test(err.message));
}

describe('the connection window limit', () => {
  test('is a few MiB, far below a window per stream, and above one stream window', () => {
    assert.ok(CONNECTION_WINDOW >= 2 * MiB && CONNECTION_WINDOW <= 16 * MiB, `CONNECTION_WINDOW is ${CONNECTION_WINDOW}`);
    assert.ok(CONNECTION_WINDOW > INITIAL_STREAM_WINDOW, 'one stream at full speed is held back by its own window first');
    assert.ok(CONNECTION_WINDOW < MAX_STREAMS_PER_CONNECTION * INITIAL_STREAM_WINDOW);
    assert.ok(CONNECTION_WINDOW_UPDATE_THRESHOLD > 0 && CONNECTION_WINDOW_UPDATE_THRESHOLD < CONNECTION_WINDOW - MAX_FRAME_PAYLOAD);
  });
});

describe('WINDOW on stream 0', () => {
  test('decodes as the connection credit increment', () => {
    for (const increment of [1, CONNECTION_WINDOW_UPDATE_THRESHOLD, CONNECTION_WINDOW, MAX_WINDOW]) {
      const frame = decodeFrame(encodeWindow(0, increment));
      assert.equal(frame.type, FrameType.WINDOW);
      assert.equal(frame.streamId, 0);
      assert.equal(readWindowIncrement(frame), increment);
    }
  });
});

describe('ConnectionCredit (the hub’s ledger of one sender)', () => {
  test('takes a whole window of DATA, over many streams’ worth of frames', () => {
    const credit = new ConnectionCredit(() => assert.fail('nothing was written out'));
    for (let sent = 0; sent < CONNECTION_WINDOW; sent += 64 * 1024) credit.receive(64 * 1024);
    assert.equal(credit.held, CONNECTION_WINDOW);
  });

  test('refuses with FLOW_CONTROL a sender that overruns the connection window', () => {
    const credit = new ConnectionCredit(() => undefined);
    credit.receive(CONNECTION_WINDOW - 10);
    assertFlowControl(() => credit.receive(11), /sent 11 bytes of DATA with 10 bytes of connection credit left/);
    assert.equal(credit.held, CONNECTION_WINDOW - 10, 'the refused frame is not counted');
  });

  test('counts bytes written out but not yet granted back as still used', () => {
    const credit = new ConnectionCredit(() => assert.fail('below the threshold nothing is granted'));
    credit.receive(CONNECTION_WINDOW);
    credit.release(CONNECTION_WINDOW_UPDATE_THRESHOLD - 1);
    assert.equal(credit.held, CONNECTION_WINDOW - CONNECTION_WINDOW_UPDATE_THRESHOLD + 1);
    assertFlowControl(() => credit.receive(1), /with 0 bytes of connection credit left/);
  });

  test('grants written bytes back in steps of at least the threshold, and the sender may use them again', () => {
    const grants: number[] = [];
    const credit = new ConnectionCredit((n) => grants.push(n));
    credit.receive(CONNECTION_WINDOW);
    const piece = 100_000;
    let written = 0;
    while (written + piece <= CONNECTION_WINDOW) {
      credit.release(piece);
      written += piece;
    }
    assert.ok(grants.length > 0 && grants.every((n) => n >= CONNECTION_WINDOW_UPDATE_THRESHOLD), `grants ${grants.join(', ')}`);
    const granted = grants.reduce((a, b) => a + b, 0);
    assert.ok(written - granted < CONNECTION_WINDOW_UPDATE_THRESHOLD);
    credit.receive(granted);
    assertFlowControl(() => credit.receive(1), /connection credit/);
  });

  test('a smaller window (the hub’s own streams) is enforced the same way', () => {
    const credit = new ConnectionCredit(() => undefined, 1000, 100);
    credit.receive(1000);
    assertFlowControl(() => credit.receive(1), /with 0 bytes/);
  });
});

describe('SendWindow (the sender’s side)', () => {
  test('starts with the whole window and goes down with what is sent', () => {
    const window = new SendWindow();
    assert.equal(window.available, CONNECTION_WINDOW);
    window.consume(CONNECTION_WINDOW);
    assert.equal(window.available, 0);
  });

  test('wakes waiting streams on a grant, in the order they waited, each once', () => {
    const window = new SendWindow(10);
    window.consume(10);
    const woken: string[] = [];
    const a = () => woken.push('a');
    const b = () => woken.push('b');
    window.wait(a);
    window.wait(b);
    window.wait(a);
    window.grant(5);
    assert.deepEqual(woken, ['a', 'b']);
    window.grant(1);
    assert.deepEqual(woken, ['a', 'b'], 'a stream waits again only when it asks to');
  });

  test('keeps the turn of streams that a grant did not reach', () => {
    const window = new SendWindow(10);
    window.consume(10);
    const woken: string[] = [];
    const greedy = () => {
      woken.push('greedy');
      window.consume(window.available);
      window.wait(greedy);
    };
    const patient = () => {
      woken.push('patient');
      window.consume(window.available);
    };
    window.wait(greedy);
    window.wait(patient);
    window.grant(4);
    window.grant(4);
    assert.deepEqual(woken, ['greedy', 'patient'], 'the second grant goes to the stream the first one did not reach');
  });

  test('refuses a grant beyond MAX_WINDOW with FLOW_CONTROL', () => {
    const window = new SendWindow();
    assertFlowControl(() => window.grant(MAX_WINDOW), /beyond/);
  });

  test('reset gives the whole window back and forgets the waiting streams', () => {
    const window = new SendWindow(10);
    window.consume(10);
    window.wait(() => assert.fail('a stream of the old connection was woken'));
    window.reset();
    assert.equal(window.available, 10);
    window.grant(1);
  });
});
