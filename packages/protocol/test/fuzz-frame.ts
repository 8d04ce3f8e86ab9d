/**
 * Fuzz properties of the frame codec (frame.ts): decodeFrame, encodeFrame, FrameDecoder, readWindowIncrement. Part of
 * fuzzProperties() (fuzz-properties.ts).
 */

import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameType,
  MAX_FRAME_PAYLOAD,
  MAX_WINDOW,
  ProtocolError,
  decodeFrame,
  encodeFrame,
  readWindowIncrement,
  type ErrorCode,
  type Frame,
} from '../src/index.js';
import { cut, cutPoints, encodeAll, frameBytes, mutated, oversizedHeader, payloadBounds, refusedOr, validFrame, type FuzzProperty } from './fuzz-arbitraries.js';

/** Codes a frame decoder may refuse bytes with. */
const FRAME_CODES: readonly ErrorCode[] = ['PROTOCOL_ERROR', 'FRAME_TOO_LARGE', 'CONTROL_TOO_LARGE'];
/** Most bytes a FrameDecoder may hold between pushes: one frame that is not complete yet. */
export const MAX_PENDING = FRAME_HEADER_SIZE + MAX_FRAME_PAYLOAD;

function sameFrame(actual: Frame, expected: Frame): void {
  assert.deepEqual(
    { type: actual.type, flags: actual.flags, streamId: actual.streamId, payload: Buffer.from(actual.payload).toString('hex') },
    { type: expected.type, flags: expected.flags, streamId: expected.streamId, payload: Buffer.from(expected.payload).toString('hex') },
  );
}

interface Fed {
  frames: Frame[];
  error?: ProtocolError;
  /** Bytes held after the last push that did not throw. */
  pending: number;
}

/** Feeds chunks to a new decoder until one throws; checks the pending bound after every push. */
function feed(chunks: readonly Buffer[]): Fed {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    let got: Frame[] | undefined;
    try {
      got = decoder.push(chunk);
    } catch (err) {
      refusedOr(() => {
        throw err;
      }, FRAME_CODES, ProtocolError);
      return { frames, error: err as ProtocolError, pending: decoder.pending };
    }
    frames.push(...got);
    assert.ok(decoder.pending < MAX_PENDING, `the decoder holds ${decoder.pending} bytes, more than one frame`);
  }
  return { frames, pending: decoder.pending };
}

function oneBytePieces(bytes: Buffer): Buffer[] {
  return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
}

/** The code a decoder must refuse an oversized header of `type` with. */
function oversizeCode(type: FrameType, length: number): ErrorCode {
  if (length > MAX_FRAME_PAYLOAD) return 'FRAME_TOO_LARGE';
  return type === FrameType.CONTROL ? 'CONTROL_TOO_LARGE' : 'PROTOCOL_ERROR';
}

export const frameProperties = (): FuzzProperty[] => [
  {
    name: 'decodeFrame returns the frame the bytes encode, or throws a ProtocolError',
    property: fc.property(frameBytes, (bytes) => {
      const frame = refusedOr(() => decodeFrame(bytes), FRAME_CODES, ProtocolError);
      if (!frame) return;
      const [min, max] = payloadBounds(frame.type);
      assert.ok(frame.payload.length >= min && frame.payload.length <= max, `payload of ${frame.payload.length} bytes for type ${frame.type}`);
      assert.ok(encodeFrame(frame.type, frame.streamId, frame.payload, frame.flags).equals(bytes), 'the bytes are the encoding of the frame');
    }),
  },
  {
    name: 'encodeFrame then decodeFrame gives the same frame',
    property: fc.property(validFrame(2048), (frame) => {
      const bytes = encodeFrame(frame.type, frame.streamId, frame.payload, frame.flags);
      assert.equal(bytes.length, FRAME_HEADER_SIZE + frame.payload.length);
      sameFrame(decodeFrame(bytes), frame);
    }),
  },
  {
    name: 'FrameDecoder gives the same frames however a valid stream is cut, and ends holding nothing',
    property: fc.property(fc.array(validFrame(512), { maxLength: 8 }), cutPoints, (frames, points) => {
      const fed = feed(cut(encodeAll(frames), points));
      assert.equal(fed.error, undefined);
      assert.equal(fed.frames.length, frames.length);
      // Compared only now: a frame handed out earlier must not have been changed by later pushes.
      fed.frames.forEach((f, i) => sameFrame(f, frames[i]!));
      assert.equal(fed.pending, 0);
    }),
  },
  {
    name: 'FrameDecoder on any bytes, cut anywhere, agrees with feeding them one byte at a time',
    property: fc.property(frameBytes, cutPoints, (bytes, points) => {
      const reference = feed(oneBytePieces(bytes));
      const chunked = feed(cut(bytes, points));
      // A push that throws drops the frames it completed, so a failing chunked run may deliver fewer of them.
      assert.ok(chunked.frames.length <= reference.frames.length);
      chunked.frames.forEach((f, i) => sameFrame(f, reference.frames[i]!));
      assert.equal(chunked.error?.code, reference.error?.code, `chunked: ${chunked.error?.message}; byte by byte: ${reference.error?.message}`);
      if (!reference.error) {
        assert.equal(chunked.frames.length, reference.frames.length);
        assert.equal(chunked.pending, reference.pending);
      }
    }),
  },
  {
    name: 'FrameDecoder refuses a header announcing too much as soon as the header is complete',
    property: fc.property(fc.array(validFrame(64), { maxLength: 3 }), oversizedHeader, fc.array(fc.nat(), { maxLength: 6 }), fc.uint8Array({ maxLength: 64 }), (before, huge, points, after) => {
      const prefix = encodeAll(before);
      const decoder = new FrameDecoder();
      const got: Frame[] = [];
      for (const piece of cut(Buffer.concat([prefix, huge.header.subarray(0, FRAME_HEADER_SIZE - 1)]), points)) got.push(...decoder.push(piece));
      assert.equal(got.length, before.length, 'the frames before the header are delivered');
      assert.equal(decoder.pending, FRAME_HEADER_SIZE - 1);
      assert.throws(
        () => decoder.push(Buffer.concat([huge.header.subarray(FRAME_HEADER_SIZE - 1), after])),
        (err: unknown) => err instanceof ProtocolError && err.code === oversizeCode(huge.type, huge.length),
      );
    }),
  },
  {
    name: 'FrameDecoder holds what it was given, not what a header announces',
    property: fc.property(fc.integer({ min: 1, max: MAX_FRAME_PAYLOAD }), fc.uint8Array({ maxLength: 256 }), cutPoints, (length, body, points) => {
      fc.pre(body.length < length);
      const header = encodeFrame(FrameType.DATA, 1, Buffer.alloc(0));
      header.writeUInt32BE(length, 6);
      const fed = feed(cut(Buffer.concat([header, body]), points));
      assert.equal(fed.error, undefined);
      assert.deepEqual([fed.frames.length, fed.pending], [0, FRAME_HEADER_SIZE + body.length]);
    }),
  },
  {
    name: 'readWindowIncrement of a decoded WINDOW frame is 1..MAX_WINDOW or a ProtocolError',
    property: fc.property(mutated(validFrame().filter((f) => f.type === FrameType.WINDOW).map((f) => encodeAll([f]))), (bytes) => {
      const frame = refusedOr(() => decodeFrame(bytes), FRAME_CODES, ProtocolError);
      if (frame?.type !== FrameType.WINDOW) return;
      const increment = refusedOr(() => readWindowIncrement(frame), ['PROTOCOL_ERROR'], ProtocolError);
      if (increment !== undefined) assert.ok(Number.isInteger(increment) && increment >= 1 && increment <= MAX_WINDOW);
    }),
  },
];

