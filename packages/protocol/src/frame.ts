/**
 * The Private Connect wire format: binary frames multiplexing many TCP streams over one agent ↔ hub WebSocket.
 *
 * Protocol flow
 * -------------
 *   agent                                  hub                                   agent
 *   (reaching, B)                                                                (exposing, A)
 *   ── WebSocket upgrade, Authorization: Bearer <agent token> ──▶   (401 + JSON error before upgrade if refused)
 *   CONTROL hello {v, agent}          ──▶
 *                                     ◀──  CONTROL welcome {agentId, workspaceId, limits}
 *   CONTROL request {id, op, ...}     ──▶                                        (expose / resolve / list / ...)
 *                                     ◀──  CONTROL reply {id, ok, result|error}
 *   OPEN   s=1 {service:"prod-db", e2e}  ──▶  looks the name up in B's workspace only
 *                                          OPEN  s=2 {service, from, e2e}    ──▶ dials its local target
 *                                          OPEN_OK s=2 {e2e}                 ◀──
 *   OPEN_OK s=1 {e2e}                 ◀──
 *   DATA s=1 <sealed bytes>           ──▶  DATA s=2 <same bytes>             ──▶
 *   WINDOW s=1 +n                     ◀──  WINDOW s=2 +n                     ◀── (credit: A consumed n bytes)
 *   CLOSE s=1 (half close)            ──▶  CLOSE s=2                         ──▶
 *   RESET s=… {code, message}         ◀─▶  aborts both directions, the hub forwards it to the other side
 *
 * The `e2e` fields are the end-to-end handshake (e2e.ts): DATA between two agents is sealed with keys the hub
 * never learns, and carries FrameFlag.ENCRYPTED. The hub reads only the header: it rewrites the stream id and
 * forwards the payload bytes untouched. Stream ids
 * are per WebSocket: the agent allocates odd ids, the hub allocates even ids, id 0 is the connection itself.
 *
 * Flow control (credit, like HTTP/2 windows), on two levels:
 *   stream      each side of a stream may send at most INITIAL_STREAM_WINDOW bytes of DATA payload before the
 *               receiving agent grants more with WINDOW s=<id>. This credit is end to end (agent to agent): the
 *               receiver grants it once its local socket took the bytes.
 *   connection  besides, an agent may have at most CONNECTION_WINDOW bytes of DATA payload (all its streams
 *               together) that the hub has received and not yet written out to the receiving agents' sockets. The
 *               hub grants it back with WINDOW s=0 as those writes complete. This credit is hop by hop (agent to
 *               hub), granted by the hub only: an agent never sends WINDOW s=0.
 *
 *   DATA s=1 <n bytes>                ──▶  (stream 1 credit -n, connection credit -n)
 *                                          DATA s=2 ──▶ written to A's socket
 *   WINDOW s=0 +n                     ◀──  (the hub wrote n bytes of B's DATA out; sent in steps of at least
 *                                          CONNECTION_WINDOW_UPDATE_THRESHOLD)
 *
 * The hub tracks both and closes a connection that sends beyond either with FLOW_CONTROL, so what it holds for one
 * agent connection is at most CONNECTION_WINDOW, whatever its number of streams; a receiver that stops reading
 * holds back the senders that feed it (and is closed with IDLE_TIMEOUT once nothing it was sent has left the hub
 * for WRITE_STALL_TIMEOUT_MS, which gives their connection credit back). Between hubs (hub-link.ts), the hub that
 * receives relayed DATA acknowledges it with WINDOW s=0 on the link as it writes it out, and the sending hub returns
 * its agents' connection credit only then.
 *
 * Frame layout (big-endian), FRAME_HEADER_SIZE = 10 bytes, then `length` bytes of payload:
 *   offset 0  u8   type       one of FrameType
 *   offset 1  u8   flags      FrameFlag bits; bits not defined in this version must be 0
 *   offset 2  u32  stream id  0 for connection-level frames (CONTROL, PING, PONG, GOAWAY, and WINDOW of the connection)
 *   offset 6  u32  length     payload length, at most MAX_FRAME_PAYLOAD
 *
 * Over a WebSocket every binary message is exactly one frame. Over a byte stream (tests, hub-to-hub links) frames
 * are concatenated and FrameDecoder splits them.
 */

import { ProtocolError } from './errors.js';
import { MAX_CONTROL_MESSAGE, MAX_FRAME_PAYLOAD, MAX_SMALL_JSON } from './limits.js';

/**
 * Version history:
 *   1  first version: OPEN/OPEN_OK/OPEN_ERROR/DATA/WINDOW/CLOSE/RESET/PING/PONG/CONTROL/GOAWAY.
 *   2  end-to-end encryption: hello carries the agent's identity key, OPEN and OPEN_OK carry the handshake (OPEN_OK
 *      may have a JSON payload), DATA may be ENCRYPTED; the `health` op and the hub's `token` message.
 *   3  the connection window: an agent may have at most CONNECTION_WINDOW bytes of DATA unwritten in the hub; the
 *      hub grants connection credit with WINDOW on stream 0 (issue 20: 4,096 streams × 2 MiB fitted in the hub's
 *      memory for one agent that stopped reading).
 */
export const PROTOCOL_VERSION = 3;

export const FRAME_HEADER_SIZE = 10;

/** Frame types. The byte layout of each payload is in the comment beside it. */
export const FrameType = {
  /** Open a stream. Payload: JSON OpenPayload ({service} from an agent; {service, from} from the hub). */
  OPEN: 0x01,
  /** The target accepted the stream. Payload: empty, or JSON {e2e} (the handshake answer), at most MAX_SMALL_JSON. */
  OPEN_OK: 0x02,
  /** The stream could not be opened; the id is free again. Payload: JSON {code, message}. */
  OPEN_ERROR: 0x03,
  /** Stream bytes, relayed untouched. Payload: raw bytes (encrypted when FLAG_ENCRYPTED is set). */
  DATA: 0x04,
  /**
   * Grant the peer more credit on this stream, or, on stream 0 (hub to agent only), on the connection.
   * Payload: u32 big-endian increment, 1 ..= MAX_WINDOW.
   */
  WINDOW: 0x05,
  /** The sender will send no more DATA on this stream (half close). Empty payload. */
  CLOSE: 0x06,
  /** Abort the stream in both directions. Payload: JSON {code, message}. */
  RESET: 0x07,
  /** Liveness and round-trip time, stream 0. Payload: 8 opaque bytes, echoed in PONG. */
  PING: 0x08,
  /** Answer to PING, stream 0. Payload: the 8 bytes of the PING. */
  PONG: 0x09,
  /** Control message, stream 0. Payload: UTF-8 JSON, at most MAX_CONTROL_MESSAGE bytes (see control.ts). */
  CONTROL: 0x0a,
  /** The sender is going away (hub shutdown). Payload: JSON {code, message, reconnectMs}. */
  GOAWAY: 0x0b,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));
const TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, value]) => [value, name]));

/** Flag bits. ENCRYPTED marks a DATA payload sealed end to end (e2e.ts); no other frame may carry it. */
export const FrameFlag = { ENCRYPTED: 0x01 } as const;
const KNOWN_FLAGS = FrameFlag.ENCRYPTED;

/** Largest WINDOW increment and largest window a receiver may grant (2^31 - 1, as in HTTP/2). */
export const MAX_WINDOW = 0x7fffffff;
/** Stream ids are u32; 0 is the connection. */
export const MAX_STREAM_ID = 0xffffffff;

export interface Frame {
  type: FrameType;
  flags: number;
  streamId: number;
  payload: Buffer;
  /**
   * A DATA frame's payload as the pieces it arrived in, from a FrameDecoder made with `dataPieces` (`payload` is
   * then empty): a large record is not joined into one buffer on its way to being decrypted.
   */
  pieces?: Buffer[];
}

/** Human name of a frame type, for errors and logs. */
export function frameTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

/** Encodes one frame into a new buffer (header + payload). */
export function encodeFrame(type: FrameType, streamId: number, payload: Uint8Array = EMPTY, flags = 0): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) {
    throw new ProtocolError('FRAME_TOO_LARGE', `frame payload of ${payload.length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
  }
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  writeHeader(buf, type, flags, streamId, payload.length);
  buf.set(payload, FRAME_HEADER_SIZE);
  return buf;
}

/** Writes a header into the first FRAME_HEADER_SIZE bytes of `buf`. */
export function writeHeader(buf: Buffer, type: FrameType, flags: number, streamId: number, length: number): void {
  buf[0] = type;
  buf[1] = flags;
  buf.writeUInt32BE(streamId >>> 0, 2);
  buf.writeUInt32BE(length >>> 0, 6);
}

/** Rewrites the stream id of an encoded frame in place: all the hub does to a frame it relays. */
export function setStreamId(frame: Buffer, streamId: number): void {
  frame.writeUInt32BE(streamId >>> 0, 2);
}

/** Reads the stream id of an encoded frame without decoding it. */
export function getStreamId(frame: Buffer): number {
  return frame.readUInt32BE(2);
}

/**
 * Decodes a buffer that must hold exactly one frame (one WebSocket message).
 * The payload is a view into `buf`, not a copy. Throws ProtocolError on anything malformed.
 */
export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < FRAME_HEADER_SIZE) {
    throw new ProtocolError('PROTOCOL_ERROR', `a frame needs a ${FRAME_HEADER_SIZE}-byte header, got ${buf.length} bytes`);
  }
  const header = readHeader(buf);
  if (buf.length !== FRAME_HEADER_SIZE + header.length) {
    throw new ProtocolError(
      'PROTOCOL_ERROR',
      `frame header announces ${header.length} payload bytes but the message carries ${buf.length - FRAME_HEADER_SIZE}`,
    );
  }
  const { type, flags, streamId } = header;
  return { type, flags, streamId, payload: buf.subarray(FRAME_HEADER_SIZE) };
}

interface Header {
  type: FrameType;
  flags: number;
  streamId: number;
  length: number;
}

function readHeader(buf: Buffer): Header {
  const type = buf[0]!;
  const flags = buf[1]!;
  const streamId = buf.readUInt32BE(2);
  const length = buf.readUInt32BE(6);
  if (!KNOWN_TYPES.has(type)) {
    throw new ProtocolError('PROTOCOL_ERROR', `unknown frame type ${frameTypeName(type)}`);
  }
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new ProtocolError('PROTOCOL_ERROR', `frame flags 0x${flags.toString(16)} use reserved bits`);
  }
  if (length > MAX_FRAME_PAYLOAD) {
    throw new ProtocolError('FRAME_TOO_LARGE', `frame payload of ${length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
  }
  const t = type as FrameType;
  const connectionLevel = t === FrameType.CONTROL || t === FrameType.PING || t === FrameType.PONG || t === FrameType.GOAWAY;
  // WINDOW belongs to either: a stream's credit, or (stream 0) the connection's.
  if (t !== FrameType.WINDOW && connectionLevel !== (streamId === 0)) {
    throw new ProtocolError(
      'PROTOCOL_ERROR',
      connectionLevel
        ? `${frameTypeName(type)} frames belong to stream 0, got stream ${streamId}`
        : `${frameTypeName(type)} frames need a stream id other than 0`,
    );
  }
  if (t === FrameType.CONTROL && length > MAX_CONTROL_MESSAGE) {
    throw new ProtocolError('CONTROL_TOO_LARGE', `control message of ${length} bytes exceeds the limit of ${MAX_CONTROL_MESSAGE}`);
  }
  if ((t === FrameType.PING || t === FrameType.PONG) && length !== 8) {
    throw new ProtocolError('PROTOCOL_ERROR', `${frameTypeName(type)} carries exactly 8 bytes, got ${length}`);
  }
  if (t === FrameType.WINDOW && length !== 4) {
    throw new ProtocolError('PROTOCOL_ERROR', `WINDOW carries exactly 4 bytes, got ${length}`);
  }
  if (flags !== 0 && t !== FrameType.DATA) {
    throw new ProtocolError('PROTOCOL_ERROR', `only DATA frames may carry flags, got ${frameTypeName(type)} with 0x${flags.toString(16)}`);
  }
  if (t === FrameType.OPEN_OK && length > MAX_SMALL_JSON) {
    throw new ProtocolError('PROTOCOL_ERROR', `OPEN_OK carries at most ${MAX_SMALL_JSON} bytes, got ${length}`);
  }
  if (t === FrameType.CLOSE && length !== 0) {
    throw new ProtocolError('PROTOCOL_ERROR', `${frameTypeName(type)} carries no payload, got ${length} bytes`);
  }
  return { type: t, flags, streamId, length };
}

/**
 * Splits a byte stream into frames. Chunks may be cut anywhere, down to single bytes.
 * Holds at most one partial frame (bounded by MAX_FRAME_PAYLOAD, checked as soon as the header is complete).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: Header | undefined;

  /** `dataPieces`: DATA frames come with their payload in `pieces`, as it arrived (see Frame.pieces). */
  constructor(private readonly options: { dataPieces?: boolean } = {}) {}

  /** Feeds bytes; returns every frame completed by them. Throws ProtocolError; the decoder is then unusable. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (!this.header) {
        if (this.buffered < FRAME_HEADER_SIZE) break;
        this.header = readHeader(this.peek(FRAME_HEADER_SIZE));
      }
      const total = FRAME_HEADER_SIZE + this.header.length;
      if (this.buffered < total) break;
      const { type, flags, streamId } = this.header;
      if (this.options.dataPieces && type === FrameType.DATA) {
        this.take(FRAME_HEADER_SIZE);
        frames.push({ type, flags, streamId, payload: NO_PAYLOAD, pieces: this.takePieces(this.header.length) });
      } else {
        const bytes = this.take(total);
        frames.push({ type, flags, streamId, payload: bytes.subarray(FRAME_HEADER_SIZE) });
      }
      this.header = undefined;
    }
    return frames;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  /** The next `n` bytes as the pieces of the chunks they are in (no copy). */
  private takePieces(n: number): Buffer[] {
    this.buffered -= n;
    return shiftBytes(this.chunks, n);
  }

  private take(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      this.chunks = [Buffer.concat(this.chunks)];
      first = this.chunks[0]!;
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

/**
 * Removes the first `n` bytes from `chunks` (which must hold them) and returns them as the pieces they were in: whole
 * chunks, and a subarray of the last one (its rest stays in front). Nothing is copied.
 */
export function shiftBytes(chunks: Buffer[], n: number): Buffer[] {
  const pieces: Buffer[] = [];
  let left = n;
  while (left > 0) {
    const head = chunks[0]!;
    if (head.length <= left) {
      pieces.push(head);
      chunks.shift();
      left -= head.length;
    } else {
      pieces.push(head.subarray(0, left));
      chunks[0] = head.subarray(left);
      left = 0;
    }
  }
  return pieces;
}

/** Encodes a WINDOW frame: credit for stream `streamId`, or for the connection when it is 0. */
export function encodeWindow(streamId: number, increment: number): Buffer {
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_WINDOW) {
    throw new RangeError(`WINDOW increment must be 1..${MAX_WINDOW}, got ${increment}`);
  }
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  writeHeader(buf, FrameType.WINDOW, 0, streamId, 4);
  buf.writeUInt32BE(increment, FRAME_HEADER_SIZE);
  return buf;
}

/** Reads a WINDOW increment, refusing 0 and values above MAX_WINDOW. */
export function readWindowIncrement(frame: Frame): number {
  const increment = frame.payload.readUInt32BE(0);
  if (increment === 0 || increment > MAX_WINDOW) {
    throw new ProtocolError('PROTOCOL_ERROR', `WINDOW increment must be 1..${MAX_WINDOW}, got ${increment}`);
  }
  return increment;
}

/** Encodes a frame whose payload is JSON (OPEN, OPEN_ERROR, RESET, CONTROL, GOAWAY). */
export function encodeJsonFrame(type: FrameType, streamId: number, value: unknown): Buffer {
  return encodeFrame(type, streamId, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** Parses the JSON payload of a frame into an object, or throws ProtocolError naming the frame type. */
export function readJsonPayload(frame: Frame): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(frame.payload.toString('utf8'));
  } catch {
    throw new ProtocolError('BAD_MESSAGE', `${frameTypeName(frame.type)} payload is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('BAD_MESSAGE', `${frameTypeName(frame.type)} payload must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

const EMPTY = new Uint8Array(0);
const NO_PAYLOAD = Buffer.alloc(0);
