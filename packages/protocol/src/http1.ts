/**
 * HTTP/1.1 message framing (RFC 9112) for the public-link proxy, which relays requests to an app over a tunnel
 * stream without Node's HTTP client. Two readers:
 *
 * - `readFastRequestHead` reads a client's request head, but only in a strict subset: HTTP/1.1, an origin-form
 *   target of visible ASCII, token header names, values of visible ASCII, spaces and tabs, CRLF line ends, one Host,
 *   at most one Content-Length of digits, and no Transfer-Encoding, Expect or Upgrade. Anything else is `other`:
 *   the caller hands the connection to Node's own parser (llhttp) instead, which refuses what is malformed and
 *   handles what is merely unusual. So this reader never has to decide an ambiguous message: a message whose
 *   length two parsers could read differently (request smuggling) is never in its subset.
 * - `ResponseReader` reads the app's responses on one connection, one per request sent, and finds where each ends:
 *   no body (HEAD, 1xx, 204, 304), Content-Length, chunked, or until the connection ends. What it cannot frame
 *   exactly (Content-Length and Transfer-Encoding together, differing lengths, a bad chunk size) is an
 *   `HttpFramingError`, answered 502 by the proxy. Informational answers other than 101 are dropped, as Node's
 *   HTTP client does. Body bytes are handed on either as they came (chunked framing included, for a client that
 *   reads HTTP/1.1) or decoded.
 */

/** Longest request or response head read (Node's default maxHeaderSize). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Longest chunk-size line (with extensions) or trailer line of a chunked body. */
const MAX_CHUNK_LINE = 4096;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** A request head in the fast subset. */
export interface FastRequestHead {
  method: string;
  /** The request target as sent (origin-form: starts with `/`). */
  target: string;
  /** Header names and values as sent, flat: name, value, name, value, ... */
  rawHeaders: string[];
  /** The Host header. */
  host: string;
  /** Length of the body that follows the head (Content-Length, 0 without one). */
  bodyLength: number;
  /** The client asked to close the connection after this request (`Connection: close`). */
  close: boolean;
  /** Bytes of the head, final CRLFCRLF included: the body starts there. */
  size: number;
}

const REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A request header value: visible ASCII, spaces and tabs only. */
const REQUEST_VALUE = /^[\x20-\x7e\t]*$/;
/** A response header value: anything but CR, LF and NUL (obs-text included, as Node's client reads it). */
const RESPONSE_VALUE = /^[^\r\n\0]*$/;

/**
 * Splits a header line into name and value (optional whitespace around the value removed), or undefined when the
 * name is not a token or the value has a byte `value` refuses. Cheaper than one regular expression with captures.
 */
function field(line: string, value: RegExp): [string, string] | undefined {
  const colon = line.indexOf(':');
  if (colon <= 0) return undefined;
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) return undefined;
  let start = colon + 1;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 32 || line.charCodeAt(start) === 9)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
  const text = line.slice(start, end);
  return value.test(text) ? [name, text] : undefined;
}
const DIGITS = /^\d{1,15}$/;

/** Whether `buf` has, before `end`, a line feed that does not follow a carriage return (Node's parser refuses those). */
function bareLf(buf: Buffer, end: number): boolean {
  for (let at = buf.indexOf(10); at >= 0 && at < end; at = buf.indexOf(10, at + 1)) if (at === 0 || buf[at - 1] !== 13) return true;
  return false;
}

/** Splits a list header's value into lower-case tokens, optional whitespace (spaces and tabs only) removed. */
function tokens(value: string): string[] {
  return value.toLowerCase().split(',').map(ows);
}

/** `text` without the spaces and tabs around it (String.trim removes more: a no-break space is not whitespace in HTTP). */
function ows(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/**
 * Reads the request head at the start of `buf`: the head when it is complete and in the fast subset, `incomplete`
 * when more bytes are needed, `other` when the request is outside the subset (or its head too long for it).
 */
export function readFastRequestHead(buf: Buffer): FastRequestHead | 'incomplete' | 'other' {
  const end = buf.indexOf(CRLFCRLF);
  if (end < 0) return buf.length >= MAX_HEAD_BYTES || bareLf(buf, buf.length) ? 'other' : 'incomplete';
  if (end + 4 > MAX_HEAD_BYTES || bareLf(buf, end)) return 'other';
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const first = REQUEST_LINE.exec(lines[0]!);
  if (!first) return 'other';
  const rawHeaders: string[] = [];
  let host: string | undefined;
  let bodyLength: number | undefined;
  let close = false;
  for (let i = 1; i < lines.length; i++) {
    const pair = field(lines[i]!, REQUEST_VALUE);
    if (!pair) return 'other'; // obs-fold, bare CR or LF, a space before the colon, obs-text, control bytes
    const [name, value] = pair;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          if (host !== undefined) return 'other';
          host = value;
        }
        break;
      case 6:
        if (name.toLowerCase() === 'expect') return 'other';
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') return 'other';
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          for (const token of value.toLowerCase().split(',')) {
            const t = token.trim();
            if (t === 'upgrade') return 'other';
            if (t === 'close') close = true;
          }
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          if (bodyLength !== undefined || !DIGITS.test(value)) return 'other';
          bodyLength = Number(value);
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return 'other';
        break;
    }
    rawHeaders.push(name, value);
  }
  if (host === undefined) return 'other';
  return { method: first[1]!, target: first[2]!, rawHeaders, host, bodyLength: bodyLength ?? 0, close, size: end + 4 };
}

/** A response the proxy cannot frame exactly: the app's fault, answered 502. */
export class HttpFramingError extends Error {}

/** How a response's body is delimited. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  status: number;
  reason: string;
  rawHeaders: string[];
  framing: BodyFraming;
  /** Content-Length with `length` framing. */
  length: number;
  /** The app closes the connection after this response (HTTP/1.0 without keep-alive, or `Connection: close`). */
  close: boolean;
}

/** What a ResponseReader reports, in order: head, body pieces, done; per response. */
export interface ResponseSink {
  head(head: ResponseHead): void;
  /** Body bytes: as they came (chunked framing included) or decoded, as the reader was made. */
  body(bytes: Buffer): void;
  /** The response is complete. */
  done(): void;
  /** After a 101 the connection is no longer HTTP: the bytes that followed the head, if any. */
  switched(rest: Buffer): void;
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n\0]*))?$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[ \t]*(;[^\r\n\0]*)?$/;

type State = 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailer' | 'switched' | 'broken';

/**
 * Reads the responses of one upstream connection. `expect(method, decode)` before each request is sent (a HEAD's
 * answer has no body); `push` the bytes as they arrive; `end` when the app ended the connection.
 */
export class ResponseReader {
  private state: State = 'head';
  private pending: Buffer | undefined;
  /** The requests sent whose responses are not complete, oldest first: method, and whether to decode its body. */
  private expected: Array<{ method: string; decode: boolean }> = [];
  private left = 0;
  private line = '';

  constructor(private readonly sink: ResponseSink) {}

  /**
   * A request was sent: its answer comes after those of the requests sent before. `decode`: hand its body on
   * decoded (chunk framing removed) rather than as it came.
   */
  expect(method: string, decode: boolean): void {
    this.expected.push({ method, decode });
  }

  /** Requests sent whose response is not complete yet. */
  get waiting(): number {
    return this.expected.length;
  }

  private get decode(): boolean {
    return this.expected[0]?.decode ?? false;
  }

  /** Whether a response has started (its head read) and is not complete. */
  get midResponse(): boolean {
    return this.state !== 'head' && this.state !== 'switched' && this.state !== 'broken';
  }

  push(chunk: Buffer): void {
    if (this.state === 'switched') return this.sink.body(chunk);
    if (this.state === 'broken') return;
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    try {
      while (buf.length > 0) {
        const used = this.step(buf);
        if (used < 0) {
          this.pending = buf;
          return;
        }
        buf = buf.subarray(used);
        if ((this.state as State) === 'switched') {
          this.sink.switched(buf);
          return;
        }
      }
    } catch (err) {
      this.state = 'broken';
      throw err;
    }
  }

  /** The app ended the connection: completes a body read until close; anything else mid-message is an error. */
  end(): void {
    if (this.state === 'body' && this.left < 0) {
      this.state = 'head';
      this.expected.shift();
      return this.sink.done();
    }
    if (this.midResponse || this.pending) {
      this.state = 'broken';
      throw new HttpFramingError('the app closed the connection in the middle of a response');
    }
  }

  /** Consumes from the start of `buf`; returns bytes used, or -1 when more are needed to go on. */
  private step(buf: Buffer): number {
    switch (this.state) {
      case 'head':
        return this.readHead(buf);
      case 'body': {
        if (this.left < 0) {
          this.sink.body(buf);
          return buf.length;
        }
        const n = Math.min(this.left, buf.length);
        this.sink.body(n === buf.length ? buf : buf.subarray(0, n));
        this.left -= n;
        if (this.left === 0) this.finish();
        return n;
      }
      case 'chunk-size':
      case 'trailer':
        return this.readChunkLine(buf);
      case 'chunk-data': {
        const n = Math.min(this.left, buf.length);
        this.sink.body(n === buf.length ? buf : buf.subarray(0, n));
        this.left -= n;
        if (this.left === 0) this.state = 'chunk-end';
        return n;
      }
      case 'chunk-end': {
        // The CRLF after a chunk's data.
        if (buf.length < 2) return -1;
        if (buf[0] !== 13 || buf[1] !== 10) throw new HttpFramingError('a chunk of the response does not end with CRLF');
        if (!this.decode) this.sink.body(buf.subarray(0, 2));
        this.state = 'chunk-size';
        return 2;
      }
      default:
        return buf.length;
    }
  }

  private readHead(buf: Buffer): number {
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0) {
      if (buf.length >= MAX_HEAD_BYTES) throw new HttpFramingError('the response head is too long');
      return -1;
    }
    if (end + 4 > MAX_HEAD_BYTES) throw new HttpFramingError('the response head is too long');
    const method = this.expected[0]?.method;
    if (method === undefined) throw new HttpFramingError('the app sent a response to no request');
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const first = STATUS_LINE.exec(lines[0]!);
    if (!first) throw new HttpFramingError('the response does not start with an HTTP/1.x status line');
    const status = Number(first[2]);
    const rawHeaders: string[] = [];
    const lengths = new Set<string>();
    let codings: string[] | undefined;
    let saysClose = false;
    let saysKeepAlive = false;
    let lengthAt = -1;
    for (let i = 1; i < lines.length; i++) {
      const pair = field(lines[i]!, RESPONSE_VALUE);
      if (!pair) throw new HttpFramingError('a response header line is malformed');
      const [name, value] = pair;
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        for (const v of value.split(',')) lengths.add(ows(v));
        // One Content-Length header for the client, where the first was (`5, 5` and repeats are made one below).
        if (lengthAt >= 0) continue;
        lengthAt = rawHeaders.length;
      }
      if (lower === 'transfer-encoding') (codings ??= []).push(...tokens(value));
      else if (lower === 'connection') {
        const list = tokens(value);
        if (list.includes('close')) saysClose = true;
        if (list.includes('keep-alive')) saysKeepAlive = true;
      }
      rawHeaders.push(name, value);
    }
    // Close when any Connection header says so; an HTTP/1.0 answer unless it asks to be kept alive.
    let close = saysClose || (first[1] === '0' && !saysKeepAlive);
    const used = end + 4;
    if (status < 100) throw new HttpFramingError(`the response has status ${first[2]}`);
    if (status < 200) {
      if (status === 101) {
        this.expected.shift();
        this.state = 'switched';
        this.sink.head({ status, reason: first[3] ?? '', rawHeaders, framing: 'none', length: 0, close: false });
        return used;
      }
      return used; // 100 Continue, 103 Early Hints: dropped; the final answer follows
    }
    let framing: BodyFraming;
    let length = 0;
    if (method === 'HEAD' || status === 204 || status === 304) framing = 'none';
    else if (codings) {
      if (lengths.size > 0) throw new HttpFramingError('the response has both Content-Length and Transfer-Encoding');
      // Only chunked is relayed: another coding would reach the client undeclared, or need decoding here.
      if (codings.length !== 1 || codings[0] !== 'chunked') throw new HttpFramingError(`the response uses the transfer coding "${codings.join(', ')}"; only chunked is supported`);
      framing = 'chunked';
      // An HTTP/1.0 message with a transfer coding is faulty framing (RFC 9112 6.1): the connection ends after it.
      if (first[1] === '0') close = true;
    } else if (lengths.size > 0) {
      const [only] = lengths;
      if (lengths.size > 1 || !DIGITS.test(only!)) throw new HttpFramingError('the response has an invalid or repeated Content-Length');
      length = Number(only);
      framing = length === 0 ? 'none' : 'length';
    } else framing = 'close';
    if (framing === 'length' || (framing === 'none' && lengths.size === 1 && DIGITS.test([...lengths][0]!))) rawHeaders[lengthAt + 1] = [...lengths][0]!;
    if (framing === 'close') close = true;
    this.sink.head({ status, reason: first[3] ?? '', rawHeaders, framing, length, close });
    if (framing === 'none') this.finish();
    else if (framing === 'length') {
      this.state = 'body';
      this.left = length;
    } else if (framing === 'close') {
      this.state = 'body';
      this.left = -1;
    } else this.state = 'chunk-size';
    return used;
  }

  /** A chunk-size line or a trailer line, possibly split across pushes. */
  private readChunkLine(buf: Buffer): number {
    const lf = buf.indexOf(10);
    if (lf < 0) {
      if (this.line.length + buf.length > MAX_CHUNK_LINE) throw new HttpFramingError('a chunk line of the response is too long');
      this.line += buf.toString('latin1');
      if (!this.decode) this.sink.body(buf);
      return buf.length;
    }
    const text = this.line + buf.toString('latin1', 0, lf + 1);
    this.line = '';
    if (text.length > MAX_CHUNK_LINE) throw new HttpFramingError('a chunk line of the response is too long');
    if (!text.endsWith('\r\n')) throw new HttpFramingError('a chunk line of the response does not end with CRLF');
    if (!this.decode) this.sink.body(buf.subarray(0, lf + 1));
    const line = text.slice(0, -2);
    if (this.state === 'trailer') {
      if (line === '') this.finish();
      else if (!field(line, RESPONSE_VALUE)) throw new HttpFramingError('a trailer line of the response is malformed');
      return lf + 1;
    }
    const size = CHUNK_SIZE.exec(line);
    if (!size) throw new HttpFramingError('a chunk size of the response is malformed');
    this.left = parseInt(size[1]!, 16);
    this.state = this.left === 0 ? 'trailer' : 'chunk-data';
    return lf + 1;
  }

  private finish(): void {
    this.state = 'head';
    this.left = 0;
    this.expected.shift();
    this.sink.done();
  }
}
