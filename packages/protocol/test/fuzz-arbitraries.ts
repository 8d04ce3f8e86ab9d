/**
 * fast-check arbitraries for fuzzing the wire format: valid frames by the rules of frame.ts, byte streams cut into
 * chunks, byte-level mutations, and hostile JSON for the control parsers (prototype keys, values at the length
 * limits, near-valid messages with one field broken). Shared by the fuzz properties (CI and `npm run fuzz`) and by
 * the hub's WebSocket fuzz test (`@private-connect/protocol/fuzz`).
 */

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameFlag, FrameType, MAX_STREAM_ID, PROTOCOL_VERSION, encodeFrame, type Frame } from '../src/frame.js';
import { MAX_CONTROL_MESSAGE, MAX_FRAME_PAYLOAD, MAX_LABEL, MAX_SMALL_JSON } from '../src/limits.js';
import type { ControlOp } from '../src/control.js';
import { E2E_SESSION_ID_BYTES, MAX_HANDSHAKE_BYTES } from '../src/e2e.js';
import { ConnectError, ERROR_CODES, type ErrorCode } from '../src/errors.js';

const CONNECTION_LEVEL: ReadonlySet<number> = new Set([FrameType.CONTROL, FrameType.PING, FrameType.PONG, FrameType.GOAWAY]);

/** The payload lengths frame.ts allows for each type: [min, max]. */
export function payloadBounds(type: FrameType): [number, number] {
  switch (type) {
    case FrameType.PING:
    case FrameType.PONG:
      return [8, 8];
    case FrameType.WINDOW:
      return [4, 4];
    case FrameType.CLOSE:
      return [0, 0];
    case FrameType.OPEN_OK:
      return [0, MAX_SMALL_JSON];
    case FrameType.CONTROL:
      return [0, MAX_CONTROL_MESSAGE];
    default:
      return [0, MAX_FRAME_PAYLOAD];
  }
}

export const frameTypes: readonly FrameType[] = Object.values(FrameType);

/** A stream id that fits the type: 0 for connection-level frames, otherwise 1..MAX_STREAM_ID (small ones likelier). */
function streamIdFor(type: FrameType): fc.Arbitrary<number> {
  if (CONNECTION_LEVEL.has(type)) return fc.constant(0);
  return fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: MAX_STREAM_ID }), fc.constant(MAX_STREAM_ID));
}

/** A frame that frame.ts must accept; payloads stay below `maxPayload` bytes unless the type needs more. */
export function validFrame(maxPayload = 256): fc.Arbitrary<Frame> {
  return fc.constantFrom(...frameTypes).chain((type) => {
    const [min, max] = payloadBounds(type);
    const flags = type === FrameType.DATA ? fc.constantFrom(0, FrameFlag.ENCRYPTED) : fc.constant(0);
    const payload = fc.uint8Array({ minLength: min, maxLength: Math.max(min, Math.min(max, maxPayload)) }).map((bytes) => Buffer.from(bytes));
    return fc.record({ type: fc.constant(type), flags, streamId: streamIdFor(type), payload });
  });
}

/** Encodes frames back to back, as a byte stream carries them. */
export function encodeAll(frames: readonly Frame[]): Buffer {
  return Buffer.concat(frames.map((f) => encodeFrame(f.type, f.streamId, f.payload, f.flags)));
}

/** Cuts `bytes` at sorted cut points (any positions, empty pieces included) into the chunks a socket might deliver. */
export function cut(bytes: Buffer, points: readonly number[]): Buffer[] {
  const at = points.map((p) => p % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of at) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

/** Cut points for `cut`: none, a few anywhere, or many (byte-by-byte-like splitting of short streams). */
export const cutPoints: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.nat(), { maxLength: 4 }),
  fc.array(fc.nat(), { minLength: 5, maxLength: 64 }),
);

/** u32 values a length field is attacked with: limits and their neighbours, and anything. */
const interestingU32: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 1, 4, 8, MAX_SMALL_JSON, MAX_SMALL_JSON + 1, MAX_CONTROL_MESSAGE, MAX_CONTROL_MESSAGE + 1),
  fc.constantFrom(MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD + 1, 0x7fffffff, 0x80000000, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: interestingU32 }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function applyMutation(bytes: Buffer, m: Mutation): Buffer {
  const at = m.at % (bytes.length + 1);
  switch (m.kind) {
    case 'flip':
    case 'byte': {
      if (bytes.length === 0) return bytes;
      const out = Buffer.from(bytes);
      const i = at % bytes.length;
      out[i] = m.kind === 'flip' ? out[i]! ^ (1 << m.bit) : m.value;
      return out;
    }
    case 'u32': {
      // Lands on a length field when `at` is 6 past a frame start: the 10-byte header makes that likely in short streams.
      if (bytes.length < 4) return bytes;
      const out = Buffer.from(bytes);
      out.writeUInt32BE(m.value, at % (bytes.length - 3));
      return out;
    }
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case 'truncate':
      return bytes.subarray(0, at);
  }
}

/** `base` with up to four byte-level mutations applied (possibly none: valid input must pass too). */
export function mutated(base: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.tuple(base, fc.array(mutation, { maxLength: 4 })).map(([bytes, ms]) => ms.reduce(applyMutation, bytes));
}

/** A header announcing more than its type allows (up to 4 GiB - 1), of an otherwise valid frame: nothing follows it. */
export const oversizedHeader: fc.Arbitrary<{ header: Buffer; type: FrameType; length: number }> = fc
  .constantFrom(FrameType.DATA, FrameType.OPEN, FrameType.OPEN_ERROR, FrameType.RESET, FrameType.CONTROL, FrameType.OPEN_OK, FrameType.GOAWAY)
  .chain((type) => {
    const max = payloadBounds(type)[1];
    const length = fc.oneof(fc.constantFrom(max + 1, MAX_FRAME_PAYLOAD + 1, 0xffffffff), fc.integer({ min: max + 1, max: 0xffffffff }));
    return fc.record({ type: fc.constant(type), streamId: streamIdFor(type), length });
  })
  .map(({ type, streamId, length }) => {
    const header = Buffer.alloc(10);
    header[0] = type;
    header.writeUInt32BE(streamId, 2);
    header.writeUInt32BE(length, 6);
    return { header, type, length };
  });

/** Byte strings for a decoder: garbage, valid frames, mutated frames and streams, oversized headers. */
export const frameBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  validFrame().map((f) => encodeAll([f])),
  mutated(validFrame().map((f) => encodeAll([f]))),
  mutated(fc.array(validFrame(64), { maxLength: 4 }).map(encodeAll)),
  oversizedHeader.map((h) => h.header),
);

// ---------------------------------------------------------------------------------------------------------------
// Hostile JSON

/** Keys the parsers read, and keys that attack naive object handling. */
export const HOSTILE_KEYS = [
  't', 'v', 'id', 'op', 'args', 'agent', 'version', 'label', 'hostname', 'platform', 'identityKey', 'service', 'from',
  'agentId', 'ip', 'share', 'name', 'methods', 'paths', 'ratePerMin', 'code', 'message', 'reconnectMs', 'ok', 'result',
  'error', 'event', 'token', 'expiresAt', 'expiresInMs', 'workspaceId', 'connectionId', 'tokenExpiresAt',
  'tokenExpiresInMs', 'checks', 'detail', 'hint', 'ms', 'e2e', 'e', 'sig', 'plain', 'target', 'localPort', 'tunnelId',
  'hs', 'sid', 'n', 'staticKey', 'staticSig', 'keys', 'reason', 'shareId', 'end_sessions', 'hubs',
  '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'toJSON', 'hasOwnProperty', 'length', '',
];
const keyArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });

/** Strings exactly at, or one past, the length limits of the parsers. */
const limitString = fc
  .tuple(fc.constantFrom(0, 1, 16, 32, 33, 63, 64, 65, 123, 124, 128, 129, 255, 256, 512, 513, 1024, 1025, 4097), fc.constantFrom('a', 'é', '😀', '\u0000', '/'))
  .map(([n, c]) => c.repeat(n));

const scalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -0, 1, -1, 1.5, 1e308, -1e308, 2 ** 53, 2 ** 32, 2 ** 31, 0xffffffff),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  limitString,
  fc.constantFrom(...Object.keys(ERROR_CODES), 'hello', 'req', 'welcome', 'reply', 'event', 'token', 'end_sessions', 'list', 'expose'),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64')),
);

/** Sets an own property, `__proto__` included (plain assignment would change the prototype instead). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Any JSON value, with the keys and values above; objects may have own `__proto__`, `toString`... */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; array: unknown[]; object: Record<string, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 4 }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 5 }).map((entries) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) define(out, k, v);
    return out;
  }),
})).value;

type Edit = { path: number[]; value: unknown } | { path: number[]; remove: true };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ path: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), value: hostileValue }),
  fc.record({ path: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), remove: fc.constant(true as const) }),
);

/** Applies an edit to a deep copy of `value`: each path step picks an existing key (or a new hostile one). */
function applyEdit(value: unknown, e: Edit): unknown {
  const root = structuredClone(value);
  let node = root as Record<string, unknown>;
  for (let i = 0; i < e.path.length; i++) {
    if (typeof node !== 'object' || node === null) return root;
    const keys = Object.keys(node);
    const pick = e.path[i]! % (keys.length + 1);
    // Arrays get an index (one past the end appends); objects an existing key or a hostile new one.
    const key = pick < keys.length ? keys[pick]! : Array.isArray(node) ? String(keys.length) : HOSTILE_KEYS[e.path[i]! % HOSTILE_KEYS.length]!;
    if (i === e.path.length - 1) {
      if ('remove' in e) delete node[key];
      else define(node, key, e.value);
    } else {
      // Own properties only: walking into `__proto__` would edit Object.prototype for the whole process.
      if (!Object.hasOwn(node, key)) return root;
      node = node[key] as Record<string, unknown>;
    }
  }
  return root;
}

/** A valid message from `base` with zero to three fields replaced or removed, anywhere in its tree. */
export function nearValid(base: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.tuple(base, fc.array(edit, { maxLength: 3 })).map(([value, edits]) => edits.reduce(applyEdit, value));
}

/** Payload bytes for a JSON parser: near-valid messages, hostile JSON, random JSON, mutated JSON, random bytes. */
export function jsonPayload(base: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  const text = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');
  return fc.oneof(
    { weight: 4, arbitrary: nearValid(base).map(text) },
    { weight: 2, arbitrary: hostileValue.map(text) },
    { weight: 1, arbitrary: fc.json().map((s) => Buffer.from(s, 'utf8')) },
    { weight: 2, arbitrary: mutated(base.map(text)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b)) },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Valid messages, as their senders build them (the bases that nearValid breaks)

export const OPS: readonly ControlOp[] = ['expose', 'unexpose', 'resolve', 'reach', 'unreach', 'list', 'access', 'health'];
/** A string of min..max characters: usually short, sometimes right at the limit (which must still pass). */
export const text = (max: number, min = 0) =>
  fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: min, maxLength: max }) }, { weight: 1, arbitrary: fc.string({ minLength: Math.max(min, max - 2), maxLength: max, size: 'max' }) });
export const base64Of = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('base64'));
export const safeInt = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
/** A base64 Noise handshake message: IK message 2 or 1 with an empty payload, or any length up to the limit. */
const handshakeMessage = fc.oneof(base64Of(48), base64Of(96), fc.uint8Array({ minLength: 1, maxLength: MAX_HANDSHAKE_BYTES }).map((b) => Buffer.from(b).toString('base64')));
/** The e2e field of an OPEN: a new session's IK message 1, or a stream of a session (its id and a number in it). */
export const offer = fc.oneof(
  fc.record({ v: fc.constant(2 as const), hs: handshakeMessage }),
  fc.record({ v: fc.constant(2 as const), sid: base64Of(E2E_SESSION_ID_BYTES), n: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })) }),
);
/** The e2e field of an OPEN_OK: IK message 2 for a new session, nothing more for a stream of one. */
export const answer = fc.oneof(fc.constant({ v: 2 as const }), fc.record({ v: fc.constant(2 as const), hs: handshakeMessage }));

/** A valid hello, as an agent builds it. */
export const helloMessage = fc.record(
  {
    t: fc.constant('hello'),
    v: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.integer()),
    agent: fc.record({ version: text(64), label: text(MAX_LABEL), hostname: text(MAX_LABEL), platform: text(64) }, { requiredKeys: ['version'] }),
    identityKey: base64Of(32),
    staticKey: base64Of(32),
    staticSig: base64Of(64),
  },
  { requiredKeys: ['t', 'v', 'agent'] },
);
/** A valid control request. */
export const requestMessage = fc.record({ t: fc.constant('req'), id: fc.maxSafeNat(), op: fc.constantFrom(...OPS), args: fc.dictionary(text(8), fc.jsonValue({ maxDepth: 2 })) });
/** A valid OPEN payload from an agent. */
export const openRequestMessage = fc.record({ service: text(255), e2e: offer, plain: fc.constant(true) }, { requiredKeys: ['service'] });

/**
 * Whole WebSocket messages an agent might send the hub: any frame bytes, valid frames, and CONTROL and OPEN frames
 * (odd stream ids) whose JSON is valid, near-valid (one field broken) or hostile. Many are acceptable, so that a
 * sequence of them gets past the first message into the relay and the control handler.
 */
export const agentMessage: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 1, arbitrary: frameBytes },
  { weight: 1, arbitrary: validFrame(64).map((f) => encodeAll([f])) },
  { weight: 1, arbitrary: jsonPayload(helloMessage).map((payload) => encodeFrame(FrameType.CONTROL, 0, payload)) },
  { weight: 2, arbitrary: jsonPayload(requestMessage).map((payload) => encodeFrame(FrameType.CONTROL, 0, payload)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 4 }), fc.oneof(openRequestMessage.map((m) => Buffer.from(JSON.stringify(m))), jsonPayload(openRequestMessage)))
      .map(([n, payload]) => encodeFrame(FrameType.OPEN, 2 * n + 1, payload)),
  },
);

// ---------------------------------------------------------------------------------------------------------------
// Properties and outcomes

/** A named fast-check property. */
export interface FuzzProperty {
  name: string;
  property: fc.IProperty<unknown>;
}

/**
 * Runs `fn`; returns its value, or undefined when it threw a ConnectError (of one of `codes`, when given) with a
 * message. Anything else thrown fails the property, naming what was thrown.
 */
export function refusedOr<T>(fn: () => T, codes?: readonly ErrorCode[], only: typeof ConnectError = ConnectError): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof only)) {
      const name = (err as Error)?.constructor?.name ?? typeof err;
      throw new Error(`threw ${name} instead of a ${only.name}: ${(err as Error)?.message}`, { cause: err });
    }
    if (codes && !codes.includes(err.code)) throw new Error(`refused with ${err.code}, expected one of ${codes.join(', ')}: ${err.message}`);
    assert.ok(Object.hasOwn(ERROR_CODES, err.code), `unknown code ${err.code}`);
    assert.ok(err.message.length > 0, `${err.code} without a message`);
    return undefined;
  }
}
