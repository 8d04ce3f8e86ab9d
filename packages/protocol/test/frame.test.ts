/** Tests for the wire format in src/frame.ts: encoding, decoding, stream splitting and every header limit. */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameFlag,
  FrameType,
  MAX_STREAM_ID,
  MAX_WINDOW,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  encodeWindow,
  frameTypeName,
  getStreamId,
  readJsonPayload,
  readWindowIncrement,
  setStreamId,
  writeHeader,
  type Frame,
} from '../src/frame.js';
import { INITIAL_STREAM_WINDOW, MAX_CONTROL_MESSAGE, MAX_FRAME_PAYLOAD, MAX_SMALL_JSON } from '../src/limits.js';
import { ProtocolError, type ErrorCode } from '../src/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** Small seeded PRNG (mulberry32) so that a failing random test can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer in min..=max. */
function int(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function randomBytes(rand: () => number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = Math.floor(rand() * 256);
  return buf;
}

const ALL_TYPES = Object.values(FrameType) as FrameType[];
const CONNECTION_LEVEL: ReadonlySet<FrameType> = new Set([FrameType.CONTROL, FrameType.PING, FrameType.PONG, FrameType.GOAWAY]);
const STREAM_LEVEL = ALL_TYPES.filter((t) => !CONNECTION_LEVEL.has(t));

/** A raw 10-byte header written independently of the code under test. */
function rawHeader(type: number, flags: number, streamId: number, length: number): Buffer {
  const buf = Buffer.alloc(FRAME_HEADER_SIZE);
  buf[0] = type;
  buf[1] = flags;
  buf.writeUInt32BE(streamId, 2);
  buf.writeUInt32BE(length, 6);
  return buf;
}

/** A raw frame: header announcing `payload.length`, then the payload. */
function rawFrame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  return Buffer.concat([rawHeader(type, flags, streamId, payload.length), payload]);
}

/** Asserts that `fn` throws a ProtocolError with `code`. */
function assertProtocolError(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Asserts that both decodeFrame (one message) and a FrameDecoder (byte stream) refuse `bytes` with `code`. */
function assertRefused(bytes: Buffer, code: ErrorCode, message?: RegExp): void {
  assertProtocolError(() => decodeFrame(bytes), code, message);
  assertProtocolError(() => new FrameDecoder().push(bytes), code, message);
}

/** A valid frame of the given type, with a payload of `size` bytes where the type allows a free size. */
function validFrame(rand: () => number, type: FrameType, size: number): Frame {
  let payload: Buffer;
  if (type === FrameType.PING || type === FrameType.PONG) payload = randomBytes(rand, 8);
  else if (type === FrameType.WINDOW) {
    payload = Buffer.alloc(4);
    payload.writeUInt32BE(int(rand, 1, MAX_WINDOW));
  } else if (type === FrameType.CLOSE) payload = Buffer.alloc(0);
  else if (type === FrameType.OPEN_OK) payload = randomBytes(rand, Math.min(size, MAX_SMALL_JSON));
  else if (type === FrameType.CONTROL) payload = randomBytes(rand, Math.min(size, MAX_CONTROL_MESSAGE));
  else payload = randomBytes(rand, size);
  const streamId = CONNECTION_LEVEL.has(type) ? 0 : pick(rand, [1, 2, int(rand, 1, 1000), int(rand, 1, MAX_STREAM_ID), MAX_STREAM_ID]);
  const flags = type === FrameType.DATA && rand() < 0.3 ? FrameFlag.ENCRYPTED : 0;
  return { type, flags, streamId, payload };
}

function randomPayloadSize(rand: () => number): number {
  const r = rand();
  if (r < 0.15) return 0;
  if (r < 0.6) return int(rand, 1, 64);
  if (r < 0.9) return int(rand, 65, 4096);
  return int(rand, 4097, 70_000);
}

/**
 * A byte stream of many random frames of every type, with payloads of 0 bytes, of exactly MAX_FRAME_PAYLOAD
 * (`maxFrames` of them) and of exactly MAX_CONTROL_MESSAGE for CONTROL, at random positions.
 */
function randomStream(seed: number, count: number, maxFrames: number): { frames: Frame[]; bytes: Buffer } {
  const rand = rng(seed);
  const frames: Frame[] = [];
  for (let i = 0; i < count; i++) frames.push(validFrame(rand, pick(rand, ALL_TYPES), randomPayloadSize(rand)));
  const specials: Frame[] = [
    validFrame(rand, FrameType.DATA, 0),
    validFrame(rand, FrameType.OPEN, 0),
    validFrame(rand, FrameType.CONTROL, MAX_CONTROL_MESSAGE),
    validFrame(rand, FrameType.DATA, MAX_FRAME_PAYLOAD - 1),
  ];
  for (let i = 0; i < maxFrames; i++) specials.push(validFrame(rand, FrameType.DATA, MAX_FRAME_PAYLOAD));
  for (const frame of specials) frames.splice(int(rand, 0, frames.length), 0, frame);
  const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.streamId, f.payload, f.flags)));
  return { frames, bytes };
}

function assertSameFrames(actual: Frame[], expected: Frame[]): void {
  assert.equal(actual.length, expected.length, 'number of frames');
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const where = `frame ${i} (${frameTypeName(e.type)})`;
    assert.equal(a.type, e.type, `${where}: type`);
    assert.equal(a.flags, e.flags, `${where}: flags`);
    assert.equal(a.streamId, e.streamId, `${where}: stream id`);
    assert.equal(a.payload.length, e.payload.length, `${where}: payload length`);
    assert.ok(a.payload.equals(e.payload), `${where}: payload bytes`);
  }
}

/**
 * Feeds `bytes` to a new FrameDecoder in chunks whose sizes `nextSize` picks. After every push checks that each
 * frame is returned by the push that completes it (not before, not later) and that `pending` counts exactly the
 * bytes of the incomplete frame.
 */
function feed(bytes: Buffer, expected: Frame[], nextSize: () => number): Frame[] {
  const ends: number[] = [];
  let end = 0;
  for (const f of expected) ends.push((end += FRAME_HEADER_SIZE + f.payload.length));
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const size = Math.max(1, nextSize());
    const chunk = bytes.subarray(offset, offset + size);
    offset += chunk.length;
    for (const frame of decoder.push(chunk)) out.push(frame);
    const consumed = out.length === 0 ? 0 : ends[out.length - 1]!;
    const complete = out.length < ends.length && ends[out.length]! <= offset;
    if (complete || decoder.pending !== offset - consumed) {
      assert.fail(
        `after ${offset} bytes: ${out.length} frames returned, next frame ends at ${ends[out.length]}, ` +
          `pending ${decoder.pending}, expected ${offset - consumed}`,
      );
    }
  }
  assert.equal(decoder.pending, 0, 'pending after the last byte');
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

describe('encodeFrame and decodeFrame', () => {
  test('round-trip every frame type with its flags, stream id and payload', () => {
    const rand = rng(1);
    for (const type of ALL_TYPES) {
      for (const flags of type === FrameType.DATA ? [0, FrameFlag.ENCRYPTED] : [0]) {
        const frame = validFrame(rand, type, 37);
        const bytes = encodeFrame(type, frame.streamId, frame.payload, flags);
        assert.equal(bytes.length, FRAME_HEADER_SIZE + frame.payload.length);
        const decoded = decodeFrame(bytes);
        assertSameFrames([decoded], [{ ...frame, flags }]);
      }
    }
  });

  test('decodes to exactly the fields of a Frame', () => {
    const payload = Buffer.from('hello');
    const decoded = decodeFrame(encodeFrame(FrameType.DATA, 3, payload, FrameFlag.ENCRYPTED));
    assert.deepEqual(decoded, { type: FrameType.DATA, flags: FrameFlag.ENCRYPTED, streamId: 3, payload });
  });

  test('writes the header big-endian at the documented offsets', () => {
    const bytes = encodeFrame(FrameType.DATA, 0x01020304, Buffer.from([0xaa, 0xbb]), FrameFlag.ENCRYPTED);
    assert.deepEqual([...bytes], [0x04, 0x01, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb]);
    const header = Buffer.alloc(FRAME_HEADER_SIZE);
    writeHeader(header, FrameType.WINDOW, 0, MAX_STREAM_ID, 4);
    assert.deepEqual(header, rawHeader(FrameType.WINDOW, 0, MAX_STREAM_ID, 4));
  });

  test('encodes a frame without a payload as the 10-byte header alone', () => {
    const bytes = encodeFrame(FrameType.OPEN_OK, 7);
    assert.deepEqual(bytes, rawHeader(FrameType.OPEN_OK, 0, 7, 0));
    assertSameFrames([decodeFrame(bytes)], [{ type: FrameType.OPEN_OK, flags: 0, streamId: 7, payload: Buffer.alloc(0) }]);
  });

  test('round-trips DATA with an empty payload and with a payload of exactly MAX_FRAME_PAYLOAD bytes', () => {
    const rand = rng(2);
    for (const size of [0, 1, MAX_FRAME_PAYLOAD - 1, MAX_FRAME_PAYLOAD]) {
      const payload = randomBytes(rand, size);
      const decoded = decodeFrame(encodeFrame(FrameType.DATA, 1, payload));
      assert.equal(decoded.payload.length, size);
      assert.ok(decoded.payload.equals(payload));
    }
  });

  test('accepts a plain Uint8Array payload', () => {
    const payload = new Uint8Array([1, 2, 3]);
    const decoded = decodeFrame(encodeFrame(FrameType.DATA, 5, payload));
    assert.deepEqual([...decoded.payload], [1, 2, 3]);
  });

  test('returns the payload as a view into the decoded buffer, not a copy', () => {
    const bytes = encodeFrame(FrameType.DATA, 1, Buffer.from([1, 2, 3]));
    const decoded = decodeFrame(bytes);
    bytes[FRAME_HEADER_SIZE] = 9;
    assert.equal(decoded.payload[0], 9);
  });

  test('refuses to encode a payload longer than MAX_FRAME_PAYLOAD', () => {
    assertProtocolError(() => encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_FRAME_PAYLOAD + 1)), 'FRAME_TOO_LARGE', /exceeds the limit/);
  });

  test('refuses a message shorter than the 10-byte header', () => {
    const full = encodeFrame(FrameType.OPEN_OK, 1);
    for (let n = 0; n < FRAME_HEADER_SIZE; n++) {
      assertProtocolError(() => decodeFrame(full.subarray(0, n)), 'PROTOCOL_ERROR', /10-byte header/);
    }
  });

  test('refuses a message whose payload is shorter than its header announces', () => {
    const full = encodeFrame(FrameType.DATA, 1, Buffer.alloc(100, 7));
    for (const cut of [1, 50, 100]) {
      assertProtocolError(() => decodeFrame(full.subarray(0, full.length - cut)), 'PROTOCOL_ERROR', /announces 100 payload bytes/);
    }
  });

  test('refuses a message with bytes after the announced payload', () => {
    const full = encodeFrame(FrameType.DATA, 1, Buffer.alloc(10, 7));
    assertProtocolError(() => decodeFrame(Buffer.concat([full, Buffer.from([0])])), 'PROTOCOL_ERROR', /announces 10 payload bytes/);
    // Two frames in one WebSocket message are refused too: a message is exactly one frame.
    assertProtocolError(() => decodeFrame(Buffer.concat([full, full])), 'PROTOCOL_ERROR');
  });

  test('names known frame types and prints unknown ones in hex', () => {
    assert.equal(frameTypeName(FrameType.OPEN), 'OPEN');
    assert.equal(frameTypeName(FrameType.GOAWAY), 'GOAWAY');
    assert.equal(frameTypeName(0x0c), '0x0c');
    assert.equal(frameTypeName(0xff), '0xff');
  });
});

describe('frame header limits (decodeFrame and FrameDecoder alike)', () => {
  test('refuses a header announcing MAX_FRAME_PAYLOAD + 1 bytes with FRAME_TOO_LARGE', () => {
    assertRefused(rawHeader(FrameType.DATA, 0, 1, MAX_FRAME_PAYLOAD + 1), 'FRAME_TOO_LARGE');
    assertRefused(rawHeader(FrameType.DATA, 0, 1, 0xffffffff), 'FRAME_TOO_LARGE');
    assertRefused(rawHeader(FrameType.OPEN, 0, 1, MAX_FRAME_PAYLOAD + 1), 'FRAME_TOO_LARGE');
  });

  test('FrameDecoder refuses an oversized frame as soon as the 10-byte header is complete, before any payload', () => {
    const header = rawHeader(FrameType.DATA, 0, 1, MAX_FRAME_PAYLOAD + 1);
    const decoder = new FrameDecoder();
    for (let i = 0; i < FRAME_HEADER_SIZE - 1; i++) {
      assert.deepEqual(decoder.push(header.subarray(i, i + 1)), [], `byte ${i} of the header`);
    }
    assert.equal(decoder.pending, FRAME_HEADER_SIZE - 1);
    assertProtocolError(() => decoder.push(header.subarray(FRAME_HEADER_SIZE - 1)), 'FRAME_TOO_LARGE', /exceeds the limit of 1048576/);
  });

  test('FrameDecoder refuses an oversized frame that follows valid frames in the same chunk', () => {
    const ok = encodeFrame(FrameType.DATA, 1, Buffer.alloc(3));
    const decoder = new FrameDecoder();
    assertProtocolError(() => decoder.push(Buffer.concat([ok, ok, rawHeader(FrameType.DATA, 0, 1, MAX_FRAME_PAYLOAD + 1)])), 'FRAME_TOO_LARGE');
  });

  test('refuses a CONTROL frame longer than MAX_CONTROL_MESSAGE with CONTROL_TOO_LARGE, from the header alone', () => {
    assertRefused(rawHeader(FrameType.CONTROL, 0, 0, MAX_CONTROL_MESSAGE + 1), 'CONTROL_TOO_LARGE', /control message of 65537 bytes/);
    assertRefused(rawFrame(FrameType.CONTROL, 0, 0, Buffer.alloc(MAX_CONTROL_MESSAGE + 1, 0x20)), 'CONTROL_TOO_LARGE');
  });

  test('accepts a CONTROL frame of exactly MAX_CONTROL_MESSAGE bytes', () => {
    const bytes = rawFrame(FrameType.CONTROL, 0, 0, Buffer.alloc(MAX_CONTROL_MESSAGE, 0x20));
    assert.equal(decodeFrame(bytes).payload.length, MAX_CONTROL_MESSAGE);
    assert.equal(new FrameDecoder().push(bytes).length, 1);
  });

  test('refuses a CONTROL frame encoded by encodeJsonFrame when its JSON is longer than MAX_CONTROL_MESSAGE', () => {
    const bytes = encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', pad: 'x'.repeat(MAX_CONTROL_MESSAGE) });
    assertRefused(bytes, 'CONTROL_TOO_LARGE');
  });

  test('refuses unknown frame types', () => {
    for (const type of [0x00, 0x0c, 0x10, 0x7f, 0x80, 0xff]) {
      assertRefused(rawHeader(type, 0, 1, 0), 'PROTOCOL_ERROR', /unknown frame type/);
    }
  });

  test('refuses flags that use reserved bits', () => {
    for (const flags of [0x02, 0x03, 0x04, 0x40, 0x80, 0xfe, 0xff]) {
      assertRefused(rawFrame(FrameType.DATA, flags, 1, Buffer.alloc(2)), 'PROTOCOL_ERROR', /reserved bits/);
    }
  });

  test('accepts the ENCRYPTED flag', () => {
    const decoded = decodeFrame(rawFrame(FrameType.DATA, FrameFlag.ENCRYPTED, 1, Buffer.alloc(2)));
    assert.equal(decoded.flags, FrameFlag.ENCRYPTED);
  });

  test('refuses CONTROL, PING, PONG and GOAWAY on any stream but 0', () => {
    for (const type of CONNECTION_LEVEL) {
      const payload = type === FrameType.PING || type === FrameType.PONG ? Buffer.alloc(8) : Buffer.from('{}');
      for (const streamId of [1, 2, MAX_STREAM_ID]) {
        assertRefused(rawFrame(type, 0, streamId, payload), 'PROTOCOL_ERROR', /belong to stream 0/);
      }
      assert.equal(decodeFrame(rawFrame(type, 0, 0, payload)).streamId, 0);
    }
  });

  test('refuses OPEN, OPEN_OK, OPEN_ERROR, DATA, CLOSE and RESET on stream 0', () => {
    // WINDOW on stream 0 is the connection's credit (connection-window.test.ts).
    for (const type of STREAM_LEVEL.filter((t) => t !== FrameType.WINDOW)) {
      const payload = type === FrameType.OPEN_OK || type === FrameType.CLOSE ? Buffer.alloc(0) : Buffer.from('{}');
      assertRefused(rawFrame(type, 0, 0, payload), 'PROTOCOL_ERROR', /stream id other than 0/);
      assert.equal(decodeFrame(rawFrame(type, 0, 1, payload)).streamId, 1);
    }
  });

  test('refuses PING and PONG whose payload is not exactly 8 bytes', () => {
    for (const type of [FrameType.PING, FrameType.PONG]) {
      for (const size of [0, 1, 7, 9, 16]) {
        assertRefused(rawFrame(type, 0, 0, Buffer.alloc(size)), 'PROTOCOL_ERROR', /exactly 8 bytes/);
      }
      const ping = randomBytes(rng(3), 8);
      assert.ok(decodeFrame(encodeFrame(type, 0, ping)).payload.equals(ping));
    }
  });

  test('refuses WINDOW whose payload is not exactly 4 bytes', () => {
    for (const size of [0, 1, 3, 5, 8]) {
      assertRefused(rawFrame(FrameType.WINDOW, 0, 1, Buffer.alloc(size, 1)), 'PROTOCOL_ERROR', /exactly 4 bytes/);
    }
  });

  test('refuses CLOSE that carries a payload, and OPEN_OK larger than a small JSON payload', () => {
    for (const size of [1, 100]) {
      assertRefused(rawFrame(FrameType.CLOSE, 0, 1, Buffer.alloc(size)), 'PROTOCOL_ERROR', /carries no payload/);
    }
    assertRefused(rawFrame(FrameType.OPEN_OK, 0, 1, Buffer.alloc(MAX_SMALL_JSON + 1)), 'PROTOCOL_ERROR', /OPEN_OK carries at most/);
    assert.equal(decodeFrame(rawFrame(FrameType.OPEN_OK, 0, 1, Buffer.alloc(MAX_SMALL_JSON))).payload.length, MAX_SMALL_JSON);
  });

  test('refuses the ENCRYPTED flag on anything but DATA', () => {
    for (const type of [FrameType.OPEN, FrameType.OPEN_OK, FrameType.WINDOW, FrameType.CLOSE, FrameType.RESET]) {
      const payload = type === FrameType.WINDOW ? Buffer.from([0, 0, 0, 1]) : type === FrameType.CLOSE ? Buffer.alloc(0) : Buffer.from('{}');
      assertRefused(rawFrame(type, FrameFlag.ENCRYPTED, 1, payload), 'PROTOCOL_ERROR', /only DATA frames may carry flags/);
    }
  });
});

describe('setStreamId and getStreamId', () => {
  test('read the stream id of an encoded frame without decoding it', () => {
    for (const id of [0, 1, 2, 0x01020304, MAX_STREAM_ID]) {
      const type = id === 0 ? FrameType.CONTROL : FrameType.DATA;
      assert.equal(getStreamId(encodeFrame(type, id, Buffer.from('{}'))), id);
    }
  });

  test('rewrite the stream id in place and leave every other byte untouched', () => {
    const payload = Buffer.from('relayed bytes');
    const frame = encodeFrame(FrameType.DATA, 1, payload, FrameFlag.ENCRYPTED);
    const before = Buffer.from(frame);
    for (const id of [2, 0x7fffffff, MAX_STREAM_ID, 3]) {
      setStreamId(frame, id);
      assert.equal(getStreamId(frame), id);
      const decoded = decodeFrame(frame);
      assertSameFrames([decoded], [{ type: FrameType.DATA, flags: FrameFlag.ENCRYPTED, streamId: id, payload }]);
      assert.deepEqual(frame.subarray(0, 2), before.subarray(0, 2));
      assert.deepEqual(frame.subarray(6), before.subarray(6));
    }
  });
});

describe('WINDOW frames', () => {
  test('round-trip an increment through encodeWindow and readWindowIncrement', () => {
    for (const increment of [1, 2, 65_535, INITIAL_STREAM_WINDOW, MAX_WINDOW]) {
      const frame = decodeFrame(encodeWindow(9, increment));
      assert.equal(frame.type, FrameType.WINDOW);
      assert.equal(frame.streamId, 9);
      assert.equal(frame.flags, 0);
      assert.equal(readWindowIncrement(frame), increment);
    }
  });

  test('readWindowIncrement refuses an increment of 0', () => {
    const frame = decodeFrame(rawFrame(FrameType.WINDOW, 0, 1, Buffer.alloc(4)));
    assertProtocolError(() => readWindowIncrement(frame), 'PROTOCOL_ERROR', /WINDOW increment must be 1\.\.2147483647, got 0/);
  });

  test('encodeWindow refuses to write an increment the peer would reject', () => {
    for (const increment of [0, -1, 1.5, MAX_WINDOW + 1]) assert.throws(() => encodeWindow(1, increment), RangeError);
  });

  test('readWindowIncrement refuses an increment above MAX_WINDOW', () => {
    for (const increment of [MAX_WINDOW + 1, 0xffffffff]) {
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(increment);
      const frame = decodeFrame(rawFrame(FrameType.WINDOW, 0, 1, payload));
      assertProtocolError(() => readWindowIncrement(frame), 'PROTOCOL_ERROR', /WINDOW increment/);
    }
  });
});

describe('JSON frames', () => {
  const jsonTypes = [
    [FrameType.OPEN, 1, { service: 'prod-db' }],
    [FrameType.OPEN, 2, { service: 'prod-db', from: { agentId: 'a1', label: 'laptop ✈ 東京' } }],
    [FrameType.OPEN_ERROR, 1, { code: 'SERVICE_NOT_FOUND', message: 'no service "x"' }],
    [FrameType.RESET, 3, { code: 'PEER_GONE', message: 'the other agent disconnected' }],
    [FrameType.CONTROL, 0, { t: 'req', id: 1, op: 'list', args: {} }],
    [FrameType.GOAWAY, 0, { code: 'SHUTTING_DOWN', message: 'bye', reconnectMs: 1000 }],
  ] as const;

  test('round-trip OPEN, OPEN_ERROR, RESET, CONTROL and GOAWAY payloads through encodeJsonFrame and readJsonPayload', () => {
    for (const [type, streamId, value] of jsonTypes) {
      const frame = decodeFrame(encodeJsonFrame(type, streamId, value));
      assert.equal(frame.type, type);
      assert.equal(frame.streamId, streamId);
      assert.deepEqual(readJsonPayload(frame), value);
    }
  });

  test('encodeJsonFrame writes UTF-8', () => {
    const frame = decodeFrame(encodeJsonFrame(FrameType.OPEN, 1, { service: 'é' }));
    assert.equal(frame.payload.toString('utf8'), '{"service":"é"}');
    assert.equal(frame.payload.length, '{"service":"'.length + 2 + '"}'.length);
  });

  test('encodeJsonFrame refuses a value whose JSON is longer than MAX_FRAME_PAYLOAD', () => {
    assertProtocolError(() => encodeJsonFrame(FrameType.OPEN, 1, { pad: 'x'.repeat(MAX_FRAME_PAYLOAD) }), 'FRAME_TOO_LARGE');
  });

  test('readJsonPayload refuses a payload that is not JSON with BAD_MESSAGE naming the frame type', () => {
    for (const text of ['', 'not json', '{', '{"a":1', "{'a':1}", '\u0000']) {
      const frame = decodeFrame(rawFrame(FrameType.RESET, 0, 1, Buffer.from(text)));
      assertProtocolError(() => readJsonPayload(frame), 'BAD_MESSAGE', /^RESET payload is not valid JSON$/);
    }
    const invalidUtf8 = decodeFrame(rawFrame(FrameType.OPEN, 0, 1, Buffer.from([0x7b, 0xff, 0x7d])));
    assertProtocolError(() => readJsonPayload(invalidUtf8), 'BAD_MESSAGE', /OPEN payload is not valid JSON/);
  });

  test('readJsonPayload refuses JSON that is not an object with BAD_MESSAGE', () => {
    for (const text of ['null', '42', '"text"', 'true', '[]', '[{"code":"INTERNAL"}]']) {
      const frame = decodeFrame(rawFrame(FrameType.CONTROL, 0, 0, Buffer.from(text)));
      assertProtocolError(() => readJsonPayload(frame), 'BAD_MESSAGE', /^CONTROL payload must be a JSON object$/);
    }
  });
});

describe('FrameDecoder', () => {
  test('yields identical frames when a stream of many random frames is cut at random points', { timeout: 60_000 }, () => {
    for (const seed of [10, 11, 12]) {
      const { frames, bytes } = randomStream(seed, 400, 2);
      const rand = rng(seed * 7919);
      const out = feed(bytes, frames, () => {
        const r = rand();
        // Mix tiny cuts, cuts around header size, medium chunks and chunks spanning several frames.
        if (r < 0.3) return int(rand, 1, 16);
        if (r < 0.6) return int(rand, 1, 4096);
        if (r < 0.9) return int(rand, 4096, 200_000);
        return int(rand, 200_000, 3 * MAX_FRAME_PAYLOAD);
      });
      assertSameFrames(out, frames);
    }
  });

  test('yields identical frames when the stream is fed one byte at a time', { timeout: 120_000 }, () => {
    const { frames, bytes } = randomStream(20, 300, 1);
    assertSameFrames(feed(bytes, frames, () => 1), frames);
  });

  test('yields identical frames for every tiny chunk size from 1 to 16 bytes', { timeout: 120_000 }, () => {
    const { frames, bytes } = randomStream(30, 200, 1);
    for (let size = 1; size <= 16; size++) {
      assertSameFrames(feed(bytes, frames, () => size), frames);
    }
    const rand = rng(31);
    assertSameFrames(feed(bytes, frames, () => int(rand, 1, 16)), frames);
  });

  test('yields every frame of a stream pushed as a single chunk', () => {
    const { frames, bytes } = randomStream(40, 500, 1);
    const decoder = new FrameDecoder();
    assertSameFrames(decoder.push(bytes), frames);
    assert.equal(decoder.pending, 0);
  });

  test('yields the same frames as decodeFrame gives for each frame alone', () => {
    const { frames, bytes } = randomStream(50, 200, 0);
    const alone = frames.map((f) => decodeFrame(encodeFrame(f.type, f.streamId, f.payload, f.flags)));
    assertSameFrames(new FrameDecoder().push(bytes), alone);
  });

  test('counts the bytes of an incomplete frame in pending and goes back to 0 once it is complete', () => {
    const frame = encodeFrame(FrameType.DATA, 1, Buffer.alloc(100, 1));
    const decoder = new FrameDecoder();
    assert.equal(decoder.pending, 0);
    assert.deepEqual(decoder.push(frame.subarray(0, 4)), []);
    assert.equal(decoder.pending, 4);
    assert.deepEqual(decoder.push(frame.subarray(4, 60)), []);
    assert.equal(decoder.pending, 60);
    assert.equal(decoder.push(frame.subarray(60)).length, 1);
    assert.equal(decoder.pending, 0);
    // A frame and a half: pending holds the half.
    assert.equal(decoder.push(Buffer.concat([frame, frame.subarray(0, 30)])).length, 1);
    assert.equal(decoder.pending, 30);
    assert.equal(decoder.push(frame.subarray(30)).length, 1);
    assert.equal(decoder.pending, 0);
  });

  test('accepts empty chunks anywhere without changing the result', () => {
    const a = encodeFrame(FrameType.DATA, 1, Buffer.from('abc'));
    const b = encodeFrame(FrameType.CLOSE, 1);
    const decoder = new FrameDecoder();
    const out: Frame[] = [];
    for (const chunk of [Buffer.alloc(0), a.subarray(0, 5), Buffer.alloc(0), a.subarray(5), Buffer.alloc(0), b, Buffer.alloc(0)]) {
      out.push(...decoder.push(chunk));
    }
    assertSameFrames(out, [decodeFrame(a), decodeFrame(b)]);
    assert.equal(decoder.pending, 0);
  });

  test('returns frames whose payloads stay correct after later pushes', () => {
    const decoder = new FrameDecoder();
    const first = decoder.push(encodeFrame(FrameType.DATA, 1, Buffer.from('first')));
    const second = decoder.push(encodeFrame(FrameType.DATA, 1, Buffer.from('second')));
    assert.equal(first[0]!.payload.toString(), 'first');
    assert.equal(second[0]!.payload.toString(), 'second');
  });
});

describe('malformed input (property)', () => {
  /** Random buffers biased towards almost-valid frames so that every check in readHeader is reached. */
  function randomInput(rand: () => number): Buffer {
    const mode = int(rand, 0, 4);
    if (mode === 0) return randomBytes(rand, int(rand, 0, 40));
    if (mode === 1) {
      const type = rand() < 0.8 ? pick(rand, ALL_TYPES) : int(rand, 0, 255);
      const flags = pick(rand, [0, 0, FrameFlag.ENCRYPTED, int(rand, 0, 255)]);
      const streamId = pick(rand, [0, 0, 1, int(rand, 0, MAX_STREAM_ID)]);
      const payloadLength = int(rand, 0, 24);
      const announced = pick(rand, [payloadLength, payloadLength, int(rand, 0, 24), MAX_FRAME_PAYLOAD + 1, int(rand, 0, 0xffffffff)]);
      return Buffer.concat([rawHeader(type, flags, streamId, announced), randomBytes(rand, payloadLength)]);
    }
    const frame = validFrame(rand, pick(rand, ALL_TYPES), int(rand, 0, 24));
    const bytes = encodeFrame(frame.type, frame.streamId, frame.payload, frame.flags);
    if (mode === 4) return bytes;
    if (mode === 2) {
      for (let i = int(rand, 1, 3); i > 0; i--) bytes[int(rand, 0, Math.min(bytes.length - 1, 11))] = int(rand, 0, 255);
      return bytes;
    }
    // mode 3: truncated or extended valid frames, or several of them.
    const r = rand();
    if (r < 0.33) return bytes.subarray(0, int(rand, 0, bytes.length));
    if (r < 0.66) return Buffer.concat([bytes, randomBytes(rand, int(rand, 1, 12))]);
    return Buffer.concat([bytes, bytes]);
  }

  function expectProtocolError(err: unknown, what: string, input: Buffer): void {
    if (!(err instanceof ProtocolError)) {
      assert.fail(`${what} threw ${String(err)} (not a ProtocolError) for ${input.toString('hex')}`);
    }
  }

  test('2,000 random buffers either decode or throw ProtocolError, in decodeFrame and in FrameDecoder alike', { timeout: 30_000 }, () => {
    const rand = rng(0xc0ffee);
    const outcomes = { decoded: 0, refused: 0, streamFrames: 0, streamRefused: 0 };
    for (let i = 0; i < 2000; i++) {
      const input = randomInput(rand);

      let single: Frame | undefined;
      try {
        single = decodeFrame(input);
        outcomes.decoded++;
        // Whatever decodes re-encodes to the very same bytes.
        assert.deepEqual(encodeFrame(single.type, single.streamId, single.payload, single.flags), input);
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        expectProtocolError(err, 'decodeFrame', input);
        outcomes.refused++;
      }

      const decoder = new FrameDecoder();
      const frames: Frame[] = [];
      let refused = false;
      try {
        for (let offset = 0; offset < input.length; ) {
          const size = int(rand, 1, 8);
          frames.push(...decoder.push(input.subarray(offset, offset + size)));
          offset += size;
        }
      } catch (err) {
        expectProtocolError(err, 'FrameDecoder.push', input);
        refused = true;
      }
      if (refused) outcomes.streamRefused++;
      else {
        outcomes.streamFrames += frames.length;
        const consumed = frames.reduce((n, f) => n + FRAME_HEADER_SIZE + f.payload.length, 0);
        assert.equal(consumed + decoder.pending, input.length, `bytes accounted for ${input.toString('hex')}`);
      }

      // decodeFrame accepts a message exactly when the stream decoder finds one whole frame in it and nothing more.
      const exactlyOne = !refused && frames.length === 1 && decoder.pending === 0;
      assert.equal(single !== undefined, exactlyOne, `decodeFrame and FrameDecoder disagree on ${input.toString('hex')}`);
      if (single) assertSameFrames(frames, [single]);
    }
    // The generator must reach both outcomes often, or the test proves little.
    assert.ok(outcomes.decoded > 200, `only ${outcomes.decoded} inputs decoded`);
    assert.ok(outcomes.refused > 200, `only ${outcomes.refused} inputs refused`);
  });
});

describe('FrameDecoder with dataPieces (direct connections)', () => {
  test('a DATA payload comes as the pieces it arrived in, other frames whole, byte by byte or all at once', () => {
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    const stream = Buffer.concat([encodeFrame(FrameType.PING, 0, Buffer.alloc(8, 1)), encodeFrame(FrameType.DATA, 3, data, 1), encodeFrame(FrameType.CLOSE, 3)]);
    for (const size of [1, 7, 1000, stream.length]) {
      const decoder = new FrameDecoder({ dataPieces: true });
      const frames = [];
      for (let at = 0; at < stream.length; at += size) frames.push(...decoder.push(stream.subarray(at, at + size)));
      assert.deepEqual(frames.map((f) => f.type), [FrameType.PING, FrameType.DATA, FrameType.CLOSE]);
      const dataFrame = frames[1]!;
      assert.equal(dataFrame.flags, 1);
      assert.equal(dataFrame.payload.length, 0);
      assert.deepEqual(Buffer.concat(dataFrame.pieces!), data);
      if (size === 1000) assert.ok(dataFrame.pieces!.length > 1, 'cut across reads, not joined');
      assert.deepEqual(frames[0]!.payload, Buffer.alloc(8, 1));
    }
  });
});
