/**
 * Tests for src/http1.ts, read as an attacker would: readFastRequestHead must read only its strict subset and say
 * `other` for every message two parsers could frame differently (request smuggling) or that Node's parser would
 * treat otherwise, and ResponseReader must frame the app's answers exactly, whatever the cuts between pushes, or
 * break with HttpFramingError and stay broken.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HttpFramingError,
  MAX_HEAD_BYTES,
  ResponseReader,
  readFastRequestHead,
  type BodyFraming,
  type FastRequestHead,
  type ResponseHead,
  type ResponseSink,
} from '../src/http1.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The bytes of `text`, one byte per character (latin1), so that a test can write any byte. */
const bytes = (text: string) => Buffer.from(text, 'latin1');

/** A message head: its lines joined with CRLF, ended by the empty line. */
const headOf = (...lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;

/** A GET for a link with a Host, then `lines`. */
const get = (...lines: string[]) => headOf('GET /l/tok/ HTTP/1.1', 'Host: hub.test', ...lines);

/** A request head with `requestLine` and a Host. */
const withLine = (requestLine: string) => headOf(requestLine, 'Host: hub.test');

/** readFastRequestHead of `text`, asserting that it is a head in the subset. */
function parsed(text: string): FastRequestHead {
  const head = readFastRequestHead(bytes(text));
  assert.ok(typeof head === 'object', `expected a head, got '${String(head)}' for ${JSON.stringify(text)}`);
  return head;
}

/** `text` for a failure message: CR, LF and any byte outside printable ASCII escaped. */
const shown = (text: string) =>
  text.replace(/[^\x20-\x7e]/g, (c) => ({ '\r': '\\r', '\n': '\\n', '\t': '\\t' })[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** Asserts that every case is `other`; a failure lists every case that was not, with what it gave. */
function assertAllOther(cases: ReadonlyArray<readonly [label: string, text: string]>): void {
  const wrong = cases.flatMap(([label, text]) => {
    const got = readFastRequestHead(bytes(text));
    return got === 'other' ? [] : [`${label} '${shown(text)}': ${typeof got === 'string' ? got : 'a head'}`];
  });
  assert.deepEqual(wrong, []);
}

type Event = ['head', ResponseHead] | ['body', string] | ['done'] | ['switched', string];

/** A ResponseSink that records what it is told; adjacent body pieces are joined, so cuts between pushes do not show. */
class Recording implements ResponseSink {
  readonly events: Event[] = [];
  head(head: ResponseHead): void {
    this.events.push(['head', head]);
  }
  body(chunk: Buffer): void {
    const last = this.events.at(-1);
    if (last?.[0] === 'body') last[1] += chunk.toString('latin1');
    else this.events.push(['body', chunk.toString('latin1')]);
  }
  done(): void {
    this.events.push(['done']);
  }
  switched(rest: Buffer): void {
    this.events.push(['switched', rest.toString('latin1')]);
  }
}

/** A request sent on the connection: its method, and whether its answer's body is to be decoded. */
type Sent = readonly [method: string, decode?: boolean];

/** A reader that expects answers to `sent`, and the recording of what it reports. */
function readerFor(sent: readonly Sent[]): { reader: ResponseReader; sink: Recording } {
  const sink = new Recording();
  const reader = new ResponseReader(sink);
  for (const [method, decode = false] of sent) reader.expect(method, decode);
  return { reader, sink };
}

/** The events of a new reader expecting `sent`, fed `pieces` (then `end()` when asked). */
function eventsOf(pieces: readonly string[], sent: readonly Sent[] = [['GET']], end = false): Event[] {
  const { reader, sink } = readerFor(sent);
  for (const piece of pieces) reader.push(bytes(piece));
  if (end) reader.end();
  return sink.events;
}

/** `events` with the body pieces after a 101 joined to its switched bytes: where the cut fell does not show. */
function joined(events: Event[]): Event[] {
  const out: Event[] = [];
  for (const event of events) {
    const last = out.at(-1);
    if (event[0] === 'body' && last?.[0] === 'switched') out[out.length - 1] = ['switched', last[1] + event[1]];
    else out.push(event);
  }
  return out;
}

/** Asserts that `text` gives the same events however it is cut: at every offset, and one byte at a time. */
function assertSameWhateverTheCuts(text: string, sent: readonly Sent[] = [['GET']], end = false): Event[] {
  const whole = eventsOf([text], sent, end);
  for (let at = 1; at < text.length; at++) {
    assert.deepEqual(joined(eventsOf([text.slice(0, at), text.slice(at)], sent, end)), whole, `cut at byte ${at}`);
  }
  assert.deepEqual(joined(eventsOf([...text], sent, end)), whole, 'one byte at a time');
  return whole;
}

/** The head a reader should report; reason `OK`, no length and keep-alive unless said. */
function expectedHead(status: number, rawHeaders: string[], framing: BodyFraming, more: Partial<ResponseHead> = {}): ResponseHead {
  return { status, reason: 'OK', rawHeaders, framing, length: 0, close: false, ...more };
}

/** A response head and body: `status line`, header lines, body. */
const response = (statusLine: string, lines: string[], body = '') => `${headOf(statusLine, ...lines)}${body}`;

const OK_2 = response('HTTP/1.1 200 OK', ['Content-Length: 2'], 'ok');

/**
 * What happens to a new reader expecting `sent` when fed `pieces` (then `end()`): `broken` when it throws an
 * HttpFramingError and then stays broken (a valid response pushed after is neither reported nor an error), else
 * what happened instead.
 */
function outcome(pieces: readonly string[], sent: readonly Sent[] = [['GET']], end = false): string {
  const { reader, sink } = readerFor(sent);
  try {
    for (const piece of pieces) reader.push(bytes(piece));
    if (end) reader.end();
    return `no error (${JSON.stringify(sink.events.map((e) => e[0]))})`;
  } catch (err) {
    if (!(err instanceof HttpFramingError)) return `threw ${String(err)}`;
  }
  const reported = sink.events.length;
  reader.expect('GET', false);
  try {
    reader.push(bytes(OK_2));
  } catch (err) {
    return `threw again after breaking: ${String(err)}`;
  }
  if (sink.events.length !== reported) return 'read on after breaking';
  if (reader.midResponse) return 'mid-response after breaking';
  return 'broken';
}

/** Asserts that every case breaks the reader; a failure lists every case that did not, with what it did. */
function assertAllBreak(cases: ReadonlyArray<readonly [label: string, pieces: readonly string[], sent?: readonly Sent[], end?: boolean]>): void {
  const wrong = cases.flatMap(([label, pieces, sent, end]) => {
    const got = outcome(pieces, sent, end);
    return got === 'broken' ? [] : [`${label}: ${got}`];
  });
  assert.deepEqual(wrong, []);
}

/** `name: value` padded so that the head `before` + it + the final CRLFCRLF is exactly `size` bytes. */
function paddedTo(size: number, before: string): string {
  const fixed = `${before}X-Pad: \r\n\r\n`.length;
  return `${before}X-Pad: ${'a'.repeat(size - fixed)}\r\n\r\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// readFastRequestHead

describe('readFastRequestHead', () => {
  it('reads a plain GET: method, target, Host, headers in order with their case and no body', () => {
    const text = get('User-Agent: t/1', 'x-Mixed-CASE:   v a\t ', 'Accept: */*', 'Empty:');
    assert.deepEqual(parsed(text), {
      method: 'GET',
      target: '/l/tok/',
      rawHeaders: ['Host', 'hub.test', 'User-Agent', 't/1', 'x-Mixed-CASE', 'v a', 'Accept', '*/*', 'Empty', ''],
      host: 'hub.test',
      bodyLength: 0,
      close: false,
      size: text.length,
    });
  });

  it('reads a POST with Content-Length and leaves the body bytes after `size` untouched', () => {
    const head = headOf('POST /l/tok/api?x=1&y=%2F HTTP/1.1', 'host: Hub.Test:8080', 'Content-Length: 38', 'Content-Type: text/plain');
    // A body that looks like a head must not be read as one.
    const body = 'GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'.slice(0, 38);
    const buf = bytes(head + body + 'GET /next HTTP/1.1\r\n');
    const got = readFastRequestHead(buf);
    assert.ok(typeof got === 'object');
    assert.equal(got.method, 'POST');
    assert.equal(got.target, '/l/tok/api?x=1&y=%2F');
    assert.equal(got.host, 'Hub.Test:8080');
    assert.deepEqual(got.rawHeaders, ['host', 'Hub.Test:8080', 'Content-Length', '38', 'Content-Type', 'text/plain']);
    assert.equal(got.bodyLength, 38);
    assert.equal(got.size, head.length);
    assert.equal(buf.subarray(got.size).toString('latin1'), body + 'GET /next HTTP/1.1\r\n');
  });

  it('reads Content-Length 0, with leading zeros, and of 15 digits', () => {
    assert.equal(parsed(get('Content-Length: 0')).bodyLength, 0);
    assert.equal(parsed(get('Content-Length: 007')).bodyLength, 7);
    assert.equal(parsed(get('Content-Length: 999999999999999')).bodyLength, 999_999_999_999_999);
  });

  it('reads the methods of ordinary requests', () => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      assert.equal(parsed(withLine(`${method} /l/tok/ HTTP/1.1`)).method, method);
    }
  });

  it('sets close for Connection: close in any case, alone or in a list, in any Connection header', () => {
    for (const line of ['Connection: close', 'connection: CLOSE', 'Connection: keep-alive, Close', 'CONNECTION:foo ,close\t,bar']) {
      assert.equal(parsed(get(line)).close, true, line);
    }
    assert.equal(parsed(get('Connection: keep-alive', 'Connection: close')).close, true);
    for (const line of ['Connection: keep-alive', 'Connection: closed', 'Connection: x-close', 'X-Connection: close']) {
      assert.equal(parsed(get(line)).close, false, line);
    }
  });

  it('says incomplete for every prefix of a head, wherever it is cut', () => {
    for (const text of [get('User-Agent: t', 'Connection: close'), headOf('POST / HTTP/1.1', 'Host: h', 'Content-Length: 5')]) {
      const whole = parsed(text);
      for (let at = 0; at < text.length; at++) {
        assert.equal(readFastRequestHead(bytes(text.slice(0, at))), 'incomplete', `prefix of ${at} bytes`);
      }
      // With the body arriving after it, bit by bit, the head read is the same.
      for (const body of ['h', 'hello', 'hello, and more']) assert.deepEqual(parsed(text + body), whole);
    }
  });

  it('says other for Content-Length and Transfer-Encoding together, in either order', () => {
    assertAllOther([
      ['CL then TE', get('Content-Length: 5', 'Transfer-Encoding: chunked')],
      ['TE then CL', get('Transfer-Encoding: chunked', 'Content-Length: 5')],
      ['CL then TE, other case', get('content-length: 5', 'TRANSFER-ENCODING: chunked')],
    ]);
  });

  it('says other for two Content-Lengths, the same or different, in two headers or one list', () => {
    assertAllOther([
      ['same twice', get('Content-Length: 5', 'Content-Length: 5')],
      ['different', get('Content-Length: 5', 'Content-Length: 6')],
      ['differing case', get('Content-Length: 5', 'content-LENGTH: 5')],
      ['list of the same', get('Content-Length: 5, 5')],
      ['list of different', get('Content-Length: 5,6')],
      ['zero twice', get('Content-Length: 0', 'Content-Length: 0')],
    ]);
  });

  it('says other for a Content-Length that is not plain digits, or of 16 digits and more', () => {
    const values = ['+5', '-5', '-0', '1 0', '5 5', '0x5', '5a', 'a', '5.0', '5e1', '', '1234567890123456', '99999999999999999999', '5;', '"5"'];
    assertAllOther(values.map((v) => [`Content-Length '${shown(v)}'`, get(`Content-Length: ${v}`)]));
  });

  it('says other for any Transfer-Encoding, however it is spelt', () => {
    const lines = [
      'Transfer-Encoding: chunked',
      'Transfer-Encoding:  chunked',
      'Transfer-Encoding: chunked, identity',
      'Transfer-Encoding: identity',
      'Transfer-Encoding: Chunked',
      'transfer-encoding: chunked',
      'TRANSFER-ENCODING: CHUNKED',
      'Transfer-Encoding: gzip, chunked',
      'Transfer-Encoding:',
      'Transfer-Encoding:\tchunked\t',
    ];
    assertAllOther(lines.map((line) => [line, get(line)]));
  });

  it('says other for obs-fold: a line that starts with a space or a tab', () => {
    assertAllOther([
      ['space fold', get('X-A: a', ' b')],
      ['tab fold', get('X-A: a', '\tb')],
      ['folded Transfer-Encoding', get('Transfer-Encoding:', ' chunked')],
      ['folded Content-Length', get('Content-Length:', ' 5')],
      ['fold right after the request line', headOf('GET / HTTP/1.1', ' Host: hub.test', 'Host: hub.test')],
      ['a header line that starts with a space', get(' X-A: a')],
    ]);
  });

  it('says other for a space or a tab before the colon, and for a line without a colon', () => {
    assertAllOther([
      ['space before the colon', headOf('GET / HTTP/1.1', 'Host : hub.test')],
      ['tab before the colon', headOf('GET / HTTP/1.1', 'Host\t: hub.test')],
      ['space before the colon of Content-Length', get('Content-Length : 5')],
      ['space before the colon of Transfer-Encoding', get('Transfer-Encoding : chunked')],
      ['no colon', get('X-A a')],
    ]);
  });

  it('says other for an empty header name or one with a byte outside token', () => {
    assertAllOther([
      ['empty name', get(': x')],
      ['space inside the name', get('X A: b')],
      ['@ in the name', get('X@: b')],
      ['parenthesis in the name', get('X(: b')],
      ['quote in the name', get('"X": b')],
      ['slash in the name', get('X/Y: b')],
      ['obs-text in the name', get('X\xe9: b')],
      ['NUL in the name', get('X\0: b')],
    ]);
  });

  it('says other for a bare LF or bare CR where CRLF belongs, or a bare CR inside a value', () => {
    assertAllOther([
      ['bare LF ending the request line', 'GET / HTTP/1.1\nHost: hub.test\r\n\r\n'],
      ['bare LF ending a header line', 'GET / HTTP/1.1\r\nHost: hub.test\nX-A: b\r\n\r\n'],
      ['bare LF inside a value', get('X-A: a\nb')],
      ['bare CR inside a value', get('X-A: a\rb')],
      ['bare CR ending a value', get('X-A: a\r')],
      ['bare CR inside the target', withLine('GET /a\rb HTTP/1.1')],
      ['bare CR before the header name', get('\rX-A: b')],
    ]);
  });

  // A head whose line ends are all bare LF never contains CRLFCRLF: it must still be `other` at once (Node's parser
  // answers 400), not `incomplete` until MAX_HEAD_BYTES or the headers timeout.
  it('says other at once for a head whose lines end with a bare LF, not incomplete', () => {
    assertAllOther([
      ['LF line ends', 'GET / HTTP/1.1\nHost: hub.test\n\n'],
      ['CRLF, then a bare LF ending the head', 'GET / HTTP/1.1\r\nHost: hub.test\r\n\n'],
      ['a bare LF then CRLF ending the head', 'GET / HTTP/1.1\r\nHost: hub.test\n\r\n'],
      ['LF line ends, a body after', 'POST / HTTP/1.1\nHost: hub.test\nContent-Length: 2\n\nhi'],
    ]);
  });

  it('says other for NUL, DEL and other control bytes in a value or the target', () => {
    const controls = ['\0', '\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f'];
    assertAllOther([
      ...controls.map((c): [string, string] => ['control byte in a value', get(`X-A: a${c}b`)]),
      ...controls.map((c): [string, string] => ['control byte in the target', withLine(`GET /a${c}b HTTP/1.1`)]),
      ['VT and FF around Content-Length', get('Content-Length: \x0b5\x0c')],
      ['NUL in Host', headOf('GET / HTTP/1.1', 'Host: hub.test\0evil')],
      ['NUL in Content-Length', get('Content-Length: 5\0')],
    ]);
  });

  it('says other for obs-text (bytes 0x80 and up) in a value or the target', () => {
    assertAllOther([
      ['latin1 in a value', get('X-A: caf\xe9')],
      ['0xff in a value', get('X-A: \xff')],
      ['0x80 in a value', get('X-A: \x80')],
      ['0x85 (NEL) in a value', get('X-A: a\x85b')],
      ['0xa0 (NBSP) in Content-Length', get('Content-Length: 5\xa0')],
      ['UTF-8 in a value', get(Buffer.from('X-A: café', 'utf8').toString('latin1'))],
      ['latin1 in the target', withLine('GET /caf\xe9 HTTP/1.1')],
      ['UTF-8 in the target', withLine(Buffer.from('GET /café HTTP/1.1', 'utf8').toString('latin1'))],
      ['obs-text in Host', headOf('GET / HTTP/1.1', 'Host: h\xfcb.test')],
    ]);
  });

  it('says other for any version but HTTP/1.1, and for a request line out of shape', () => {
    const lines = [
      'GET / HTTP/1.0',
      'GET / HTTP/2.0',
      'GET / HTTP/1.2',
      'GET / HTTP/1',
      'GET / HTTP/11',
      'GET / http/1.1',
      'GET / HTTP/1.1 ',
      'GET /',
      'GET / HTTP/1.1 extra',
      'PRI * HTTP/2.0',
      'GET  / HTTP/1.1',
      'GET\t/ HTTP/1.1',
      ' GET / HTTP/1.1',
      'GET / \tHTTP/1.1',
      'GET /a b HTTP/1.1',
      '',
    ];
    assertAllOther(lines.map((line) => ['request line', withLine(line)]));
  });

  it('says other for lowercase or odd methods', () => {
    const methods = ['get', 'Get', 'gET', 'G3T', 'GET-X', 'GET_X', 'G.T', 'A'.repeat(25), ''];
    assertAllOther(methods.map((m) => ['method', withLine(`${m} / HTTP/1.1`)]));
  });

  // Node's parser answers 400 to a method it does not know: the fast path must not accept what the hub refused.
  it('says other for a method Node does not know', () => {
    assertAllOther([
      ['FOO', withLine('FOO / HTTP/1.1')],
      ['24 letters', withLine(`${'A'.repeat(24)} / HTTP/1.1`)],
      ['GETX', withLine('GETX / HTTP/1.1')],
    ]);
  });

  // A 2xx answer to CONNECT turns the connection into a tunnel whatever its headers say (RFC 9112 6.3): Node's server
  // gives it to 'connect', and no reader of ordinary responses frames it right.
  it('says other for CONNECT, whatever its target', () => {
    assertAllOther([
      ['authority-form', withLine('CONNECT hub.test:443 HTTP/1.1')],
      ['origin-form', withLine('CONNECT / HTTP/1.1')],
      ['origin-form of a link', withLine('CONNECT /l/tok/ HTTP/1.1')],
    ]);
  });

  it('says other for absolute-form, authority-form and asterisk-form targets, and a target not starting with /', () => {
    assertAllOther([
      ['absolute-form', withLine('GET http://x/ HTTP/1.1')],
      ['absolute-form of the hub', withLine('GET http://hub.test/l/tok/ HTTP/1.1')],
      ['authority-form', withLine('CONNECT x:443 HTTP/1.1')],
      ['asterisk-form', withLine('OPTIONS * HTTP/1.1')],
      ['relative', withLine('GET l/tok/ HTTP/1.1')],
      ['empty', withLine('GET  HTTP/1.1')],
    ]);
  });

  it('says other with no Host or two Hosts', () => {
    assertAllOther([
      ['no Host', headOf('GET / HTTP/1.1', 'User-Agent: t')],
      ['no headers', headOf('GET / HTTP/1.1')],
      ['two Hosts', get('Host: evil.test')],
      ['two equal Hosts', get('Host: hub.test')],
      ['two Hosts, other case', get('HOST: evil.test')],
    ]);
  });

  it('says other with Expect, Upgrade, or Connection: Upgrade in any case', () => {
    assertAllOther([
      ['Expect: 100-continue', get('Content-Length: 5', 'Expect: 100-continue')],
      ['expect, other case', get('expect: 100-Continue')],
      ['another Expect', get('Expect: something')],
      ['Upgrade: websocket', get('Upgrade: websocket', 'Connection: Upgrade')],
      ['Upgrade alone', get('Upgrade: websocket')],
      ['upgrade: h2c', get('upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA')],
      ['Connection: Upgrade alone', get('Connection: Upgrade')],
      ['connection: upgrade', get('connection: upgrade')],
      ['Upgrade in a list', get('Connection: keep-alive, UPGRADE')],
      ['Upgrade in a second Connection', get('Connection: keep-alive', 'Connection: upgrade')],
      ['Upgrade with spaces and tabs', get('Connection: close ,\tUpgrade\t')],
    ]);
  });

  it('reads a head of exactly MAX_HEAD_BYTES and says other for a longer one', () => {
    const start = 'GET / HTTP/1.1\r\nHost: hub.test\r\n';
    const exact = paddedTo(MAX_HEAD_BYTES, start);
    assert.equal(exact.length, MAX_HEAD_BYTES);
    assert.equal(parsed(exact).size, MAX_HEAD_BYTES);
    assert.equal(readFastRequestHead(bytes(paddedTo(MAX_HEAD_BYTES + 1, start))), 'other');
    assert.equal(readFastRequestHead(bytes(paddedTo(4 * MAX_HEAD_BYTES, start))), 'other');
  });

  it('says other once a buffer with no end of head reaches MAX_HEAD_BYTES', () => {
    const start = 'GET / HTTP/1.1\r\nHost: hub.test\r\nX-Pad: ';
    assert.equal(readFastRequestHead(bytes(start.padEnd(MAX_HEAD_BYTES - 1, 'a'))), 'incomplete');
    assert.equal(readFastRequestHead(bytes(start.padEnd(MAX_HEAD_BYTES, 'a'))), 'other');
    assert.equal(readFastRequestHead(bytes(start.padEnd(MAX_HEAD_BYTES + 100, 'a'))), 'other');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// ResponseReader

describe('ResponseReader', () => {
  it('frames a Content-Length body and is then ready for the next response', () => {
    const { reader, sink } = readerFor([['GET']]);
    reader.push(bytes(response('HTTP/1.1 200 OK', ['Content-Length: 5', 'x-Case: V'])));
    assert.equal(reader.midResponse, true);
    reader.push(bytes('hel'));
    reader.push(bytes('lo'));
    assert.deepEqual(sink.events, [['head', expectedHead(200, ['Content-Length', '5', 'x-Case', 'V'], 'length', { length: 5 })], ['body', 'hello'], ['done']]);
    assert.equal(reader.midResponse, false);
    assert.equal(reader.waiting, 0);
  });

  it('completes a response of Content-Length 0 at its head, with no body', () => {
    assert.deepEqual(eventsOf([response('HTTP/1.1 201 Created', ['Content-Length: 0'])]), [
      ['head', expectedHead(201, ['Content-Length', '0'], 'none', { reason: 'Created' })],
      ['done'],
    ]);
  });

  it('reads no body after an answer to HEAD with a Content-Length: the next response follows at once', () => {
    const text = response('HTTP/1.1 200 OK', ['Content-Length: 5']) + OK_2;
    assert.deepEqual(assertSameWhateverTheCuts(text, [['HEAD'], ['GET']]), [
      ['head', expectedHead(200, ['Content-Length', '5'], 'none')],
      ['done'],
      ['head', expectedHead(200, ['Content-Length', '2'], 'length', { length: 2 })],
      ['body', 'ok'],
      ['done'],
    ]);
    // Nor after an answer to HEAD that says chunked.
    const chunkedHead = response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked']);
    assert.deepEqual(eventsOf([chunkedHead + OK_2], [['HEAD'], ['GET']]).map((e) => e[0]), ['head', 'done', 'head', 'body', 'done']);
  });

  it('reads no body after a 204 or a 304, whatever their headers say', () => {
    const text =
      response('HTTP/1.1 204 No Content', ['Content-Length: 5']) +
      response('HTTP/1.1 304 Not Modified', ['Content-Length: 100', 'ETag: "x"']) +
      response('HTTP/1.1 204 No Content', ['Transfer-Encoding: chunked']) +
      OK_2;
    assert.deepEqual(assertSameWhateverTheCuts(text, [['GET'], ['GET'], ['DELETE'], ['GET']]), [
      ['head', expectedHead(204, ['Content-Length', '5'], 'none', { reason: 'No Content' })],
      ['done'],
      ['head', expectedHead(304, ['Content-Length', '100', 'ETag', '"x"'], 'none', { reason: 'Not Modified' })],
      ['done'],
      ['head', expectedHead(204, ['Transfer-Encoding', 'chunked'], 'none', { reason: 'No Content' })],
      ['done'],
      ['head', expectedHead(200, ['Content-Length', '2'], 'length', { length: 2 })],
      ['body', 'ok'],
      ['done'],
    ]);
  });

  const CHUNKED_BODY = '5;name=value\r\nhello\r\n6 ; a="b;c"\r\n world\r\nA\r\n0123456789\r\n000003\r\nabc\r\n0;last\r\nX-Trailer: t\r\nx-other:\tu \r\n\r\n';
  const CHUNKED = response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked']) + CHUNKED_BODY;

  it('decodes a chunked body with extensions and trailers to exactly its payload', () => {
    assert.deepEqual(assertSameWhateverTheCuts(CHUNKED, [['GET', true]]), [
      ['head', expectedHead(200, ['Transfer-Encoding', 'chunked'], 'chunked')],
      ['body', 'hello world0123456789abc'],
      ['done'],
    ]);
  });

  it('hands on a chunked body raw as exactly the bytes that came, framing and trailers included', () => {
    assert.deepEqual(assertSameWhateverTheCuts(CHUNKED, [['GET', false]]), [
      ['head', expectedHead(200, ['Transfer-Encoding', 'chunked'], 'chunked')],
      ['body', CHUNKED_BODY],
      ['done'],
    ]);
  });

  it('reads chunk sizes in either case and of up to 12 hex digits, and Transfer-Encoding in any case', () => {
    const body = 'f\r\n0123456789abcde\r\nF\r\n0123456789ABCDE\r\n00000000000\r\n\r\n';
    assert.deepEqual(eventsOf([response('HTTP/1.1 200 OK', ['transfer-encoding: CHUNKED ']) + body], [['GET', true]]), [
      ['head', expectedHead(200, ['transfer-encoding', 'CHUNKED'], 'chunked')],
      ['body', '0123456789abcde0123456789ABCDE'],
      ['done'],
    ]);
  });

  it('gives the same events for every response cut at every byte offset', () => {
    const cases: Array<[string, Sent[], boolean?]> = [
      [response('HTTP/1.1 200 OK', ['Content-Length: 11', 'Content-Type: text/plain'], 'hello world'), [['GET']]],
      [response('HTTP/1.1 404 Not Found', ['Content-Length: 0']), [['GET']]],
      [response('HTTP/1.1 200 OK', ['Content-Length: 5, 5'], 'hello'), [['POST']]],
      [CHUNKED + OK_2, [['GET', true], ['GET']]],
      [CHUNKED + CHUNKED, [['GET', false], ['GET', true]]],
      [response('HTTP/1.1 100 Continue', []) + OK_2, [['POST']]],
      [response('HTTP/1.0 200 OK', [], 'until the end'), [['GET']], true],
      [response('HTTP/1.1 101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade'], '\x81\x05hello'), [['GET']]],
    ];
    for (const [text, sent, end] of cases) assertSameWhateverTheCuts(text, sent, end);
  });

  it('reads several pipelined responses from one push, one per expected request, oldest first', () => {
    const { reader, sink } = readerFor([['GET'], ['GET', true], ['HEAD'], ['DELETE']]);
    assert.equal(reader.waiting, 4);
    reader.push(bytes(OK_2 + CHUNKED + response('HTTP/1.1 200 OK', ['Content-Length: 9']) + response('HTTP/1.1 204 No Content', [])));
    assert.deepEqual(sink.events, [
      ['head', expectedHead(200, ['Content-Length', '2'], 'length', { length: 2 })],
      ['body', 'ok'],
      ['done'],
      ['head', expectedHead(200, ['Transfer-Encoding', 'chunked'], 'chunked')],
      ['body', 'hello world0123456789abc'],
      ['done'],
      ['head', expectedHead(200, ['Content-Length', '9'], 'none')],
      ['done'],
      ['head', expectedHead(204, [], 'none', { reason: 'No Content' })],
      ['done'],
    ]);
    assert.equal(reader.waiting, 0);
  });

  it('counts the requests waiting as their responses complete', () => {
    const { reader } = readerFor([['GET'], ['GET']]);
    reader.push(bytes(OK_2.slice(0, -1)));
    assert.equal(reader.waiting, 2);
    reader.push(bytes('k'));
    assert.equal(reader.waiting, 1);
    reader.expect('GET', false);
    reader.push(bytes(OK_2 + OK_2));
    assert.equal(reader.waiting, 0);
  });

  it('drops 100 Continue and 103 Early Hints before the final answer', () => {
    const text =
      response('HTTP/1.1 100 Continue', []) +
      response('HTTP/1.1 103 Early Hints', ['Link: </style.css>; rel=preload']) +
      response('HTTP/1.1 102 Processing', []) +
      OK_2;
    const { reader, sink } = readerFor([['POST']]);
    reader.push(bytes(text.slice(0, text.indexOf('HTTP/1.1 200'))));
    assert.deepEqual(sink.events, []);
    assert.equal(reader.waiting, 1);
    reader.push(bytes(OK_2));
    assert.deepEqual(sink.events, [['head', expectedHead(200, ['Content-Length', '2'], 'length', { length: 2 })], ['body', 'ok'], ['done']]);
    assert.deepEqual(assertSameWhateverTheCuts(text, [['POST']]), sink.events);
  });

  it('reports a 101 and the bytes after its head as switched, and every later push as body', () => {
    const head = response('HTTP/1.1 101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade']);
    const { reader, sink } = readerFor([['GET']]);
    // What follows the 101 is not HTTP any more, even when it looks like it.
    reader.push(bytes(`${head}\x81\x02hi`));
    reader.push(bytes(OK_2));
    reader.push(bytes('HTTP/1.1 999 nonsense\r\n\r\n'));
    reader.end();
    assert.deepEqual(sink.events, [
      ['head', expectedHead(101, ['Upgrade', 'websocket', 'Connection', 'Upgrade'], 'none', { reason: 'Switching Protocols' })],
      ['switched', '\x81\x02hi'],
      ['body', OK_2 + 'HTTP/1.1 999 nonsense\r\n\r\n'],
    ]);
    assert.equal(reader.waiting, 0);
    assert.equal(reader.midResponse, false);
    // With nothing after the head, switched gets no bytes.
    assert.deepEqual(eventsOf([head], [['GET']]).slice(1), [['switched', '']]);
  });

  it('reads a body with neither length nor chunked until the app ends the connection', () => {
    const { reader, sink } = readerFor([['GET']]);
    reader.push(bytes(response('HTTP/1.1 200 OK', ['Content-Type: text/plain'], 'some')));
    reader.push(bytes(' more, and HTTP/1.1 200 OK\r\n\r\n'));
    assert.equal(reader.midResponse, true);
    reader.end();
    assert.deepEqual(sink.events, [
      ['head', expectedHead(200, ['Content-Type', 'text/plain'], 'close', { close: true })],
      ['body', 'some more, and HTTP/1.1 200 OK\r\n\r\n'],
      ['done'],
    ]);
    assert.equal(reader.waiting, 0);
  });

  it('sets close for an HTTP/1.0 response, unless it says keep-alive', () => {
    assert.deepEqual(eventsOf([response('HTTP/1.0 200 OK', ['Content-Length: 2'], 'ok')])[0], [
      'head',
      expectedHead(200, ['Content-Length', '2'], 'length', { length: 2, close: true }),
    ]);
    assert.deepEqual(eventsOf([response('HTTP/1.0 200 OK', ['Connection: Keep-Alive', 'Content-Length: 2'], 'ok')])[0], [
      'head',
      expectedHead(200, ['Connection', 'Keep-Alive', 'Content-Length', '2'], 'length', { length: 2 }),
    ]);
  });

  it('sets close for Connection: close in any case, alone or in a list', () => {
    for (const line of ['Connection: close', 'connection: CLOSE', 'Connection: keep-alive, Close', 'Connection: foo ,\tclose']) {
      const [first] = eventsOf([response('HTTP/1.1 200 OK', [line, 'Content-Length: 2'], 'ok')]);
      assert.ok(first?.[0] === 'head' && first[1].close, line);
    }
    const [first] = eventsOf([OK_2]);
    assert.ok(first?.[0] === 'head' && !first[1].close);
  });

  // Node's HTTP client closes such a connection too: an app that said close once will close.
  it('sets close when any of several Connection headers says close', () => {
    const [first] = eventsOf([response('HTTP/1.1 200 OK', ['Connection: close', 'Connection: keep-alive', 'Content-Length: 2'], 'ok')]);
    assert.ok(first?.[0] === 'head');
    assert.equal(first[1].close, true);
  });

  it('accepts a repeated Content-Length of one value, in a list or in two headers', () => {
    for (const lines of [['Content-Length: 5, 5'], ['Content-Length: 5', 'content-length: 5'], ['Content-Length: 5,5 , 5']]) {
      const events = eventsOf([response('HTTP/1.1 200 OK', lines, 'hello') + OK_2], [['GET'], ['GET']]);
      assert.deepEqual(events.slice(1, 3), [['body', 'hello'], ['done']], lines.join(' / '));
      assert.equal(events.length, 6, lines.join(' / '));
    }
  });

  it('reads a response head of exactly MAX_HEAD_BYTES', () => {
    const text = paddedTo(MAX_HEAD_BYTES, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n');
    assert.equal(text.length, MAX_HEAD_BYTES);
    assert.deepEqual(eventsOf([text]).map((e) => e[0]), ['head', 'done']);
  });

  it('is not broken by an end with no response begun, even with a request waiting', () => {
    const { reader } = readerFor([['GET']]);
    reader.push(bytes(OK_2));
    reader.end();
    const waiting = readerFor([['GET']]).reader;
    waiting.end();
    assert.equal(waiting.waiting, 1);
  });

  describe('breaks with HttpFramingError, and stays broken', () => {
    it('on Content-Length and Transfer-Encoding together', () => {
      assertAllBreak([
        ['CL then TE', [response('HTTP/1.1 200 OK', ['Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\n')]],
        ['TE then CL', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked', 'Content-Length: 5'], '0\r\n\r\n')]],
        ['CL with TE identity', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: identity', 'Content-Length: 5'], 'hello')]],
        ['CL 0 with TE', [response('HTTP/1.1 200 OK', ['content-length: 0', 'TRANSFER-ENCODING: chunked'], '0\r\n\r\n')]],
      ]);
    });

    it('on a transfer coding other than chunked alone (it would reach the client undeclared, or need decoding)', () => {
      assertAllBreak([
        ['gzip, chunked', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: gzip, chunked'], '1\r\nx\r\n0\r\n\r\n')]],
        ['chunked, gzip', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked, gzip'], 'x')]],
        ['two headers', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'], '1\r\nx\r\n0\r\n\r\n')]],
        ['identity', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: identity'], 'x')]],
      ]);
    });

    it('on differing Content-Lengths', () => {
      assertAllBreak([
        ['two headers', [response('HTTP/1.1 200 OK', ['Content-Length: 5', 'Content-Length: 6'], 'hello!')]],
        ['one list', [response('HTTP/1.1 200 OK', ['Content-Length: 5, 6'], 'hello!')]],
        ['an empty member', [response('HTTP/1.1 200 OK', ['Content-Length: 5,'], 'hello')]],
      ]);
    });

    it('on a Content-Length that is not plain digits', () => {
      const values = ['abc', '-1', '+5', '0x5', '5 5', '', '5.0', '1234567890123456', '5;', '"5"'];
      assertAllBreak(values.map((v) => [`Content-Length '${shown(v)}'`, [response('HTTP/1.1 200 OK', [`Content-Length: ${v}`], 'hello')]]));
    });

    // Only spaces and tabs surround a value (RFC 9110 5.5); String.prototype.trim also strips VT, FF and NBSP, so a
    // length a client reads as invalid would be framed here as 5.
    it('on a Content-Length padded with VT, FF or NBSP', () => {
      const values = ['5\xa0', '\xa05', '\x0b5', '5\x0c', '5,\xa05'];
      assertAllBreak(values.map((v) => [`Content-Length '${shown(v)}'`, [response('HTTP/1.1 200 OK', [`Content-Length: ${v}`], 'hello')]]));
    });

    it('on a bad chunk size, or a chunk not followed by CRLF', () => {
      const chunked = (body: string) => [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], body)];
      const cases: Array<[string, string]> = [
        ['non-hex size', 'zz\r\nhello\r\n0\r\n\r\n'],
        ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
        ['13 hex digits', '1000000000000\r\n'],
        ['negative', '-5\r\nhello\r\n0\r\n\r\n'],
        ['plus sign', '+5\r\nhello\r\n0\r\n\r\n'],
        ['space before the size', ' 5\r\nhello\r\n0\r\n\r\n'],
        ['empty size line', '\r\nhello\r\n0\r\n\r\n'],
        ['size line ending with a bare LF', '5\nhello\r\n0\r\n\r\n'],
        ['bare CR inside the size line', '5\r;x\r\nhello\r\n0\r\n\r\n'],
        ['NUL in an extension', '5;a\0b\r\nhello\r\n0\r\n\r\n'],
        ['a size line longer than its limit', `5;${'x'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`],
        ['chunk followed by a byte, not CRLF', '5\r\nhelloX\r\n0\r\n\r\n'],
        ['chunk followed by two bytes, not CRLF', '5\r\nhelloXY0\r\n\r\n'],
        ['chunk followed by a bare LF', '5\r\nhello\n0\r\n\r\n'],
        ['chunk longer than its size', '3\r\nhello\r\n0\r\n\r\n'],
        ['malformed trailer', '0\r\nnot a trailer\r\n\r\n'],
        ['obs-folded trailer', '0\r\nX-A: a\r\n b\r\n\r\n'],
      ];
      assertAllBreak(
        cases.flatMap(([label, body]): Array<[string, string[], Sent[]]> => [
          [`${label}, decoded`, chunked(body), [['GET', true]]],
          [`${label}, raw`, chunked(body), [['GET', false]]],
        ]),
      );
    });

    it('on a response to no request', () => {
      assertAllBreak([
        ['nothing expected', [OK_2], []],
        ['one more than expected', [OK_2 + OK_2], [['GET']]],
        ['a body longer than its Content-Length', [response('HTTP/1.1 200 OK', ['Content-Length: 2'], 'okHTTP/1.1 200 OK\r\n\r\n')]],
        ['a 100 Continue to nothing', [response('HTTP/1.1 100 Continue', [])], []],
      ]);
    });

    it('on a head longer than MAX_HEAD_BYTES, complete or not', () => {
      assertAllBreak([
        ['complete, one byte over', [paddedTo(MAX_HEAD_BYTES + 1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n')]],
        ['no end of head, MAX_HEAD_BYTES bytes', ['HTTP/1.1 200 OK\r\nX-Pad: '.padEnd(MAX_HEAD_BYTES, 'a')]],
        ['no end of head, over several pushes', Array.from({ length: 20 }, (_, i) => (i === 0 ? 'HTTP/1.1 200 OK\r\nX-Pad: ' : '').padEnd(1024, 'a'))],
      ]);
      // One byte short, with no end of head yet, it waits for more.
      assert.equal(outcome(['HTTP/1.1 200 OK\r\nX-Pad: '.padEnd(MAX_HEAD_BYTES - 1, 'a')]), 'no error ([])');
    });

    it('on a malformed status line or header line', () => {
      const statusLines = [
        'HTTP/1.1 20 OK',
        'HTTP/1.1 2000 OK',
        'HTTP/1.1 abc OK',
        'HTTP/1.1  200 OK',
        'HTTP/1.1 200OK',
        'HTTP/2 200 OK',
        'HTTP/2.0 200 OK',
        'HTTP/1.2 200 OK',
        'http/1.1 200 OK',
        'ICY 200 OK',
        ' HTTP/1.1 200 OK',
        'HTTP/1.1 200 O\0K',
        'HTTP/1.1 200 O\rK',
        '',
      ];
      const headerLines = ['Bad Header: x', 'X-A : b', ' X-A: b', ': b', 'X-A', 'X-A: a\0b', 'X-A: a\rb'];
      assertAllBreak([
        ...statusLines.map((line): [string, string[]] => [`status line '${shown(line)}'`, [response(line, ['Content-Length: 0'])]]),
        ...headerLines.map((line): [string, string[]] => [`header line '${shown(line)}'`, [response('HTTP/1.1 200 OK', ['Content-Length: 0', line])]]),
        ['head with bare LF line ends, then end', ['HTTP/1.1 200 OK\nContent-Length: 0\n\n'], [['GET']], true],
      ]);
    });

    // 0xx is no class of status (RFC 9110 15): Node's client takes `099` as a final answer, this reader as a 1xx.
    it('on a status below 100', () => {
      assertAllBreak([
        ['099', [response('HTTP/1.1 099 Odd', ['Content-Length: 0']) + OK_2]],
        ['000', [response('HTTP/1.1 000 Odd', ['Content-Length: 0']) + OK_2]],
      ]);
    });

    it('on an end in the middle of a head or a body', () => {
      assertAllBreak([
        ['mid head', ['HTTP/1.1 200 OK\r\nContent-Len'], [['GET']], true],
        ['mid Content-Length body', [response('HTTP/1.1 200 OK', ['Content-Length: 5'], 'hel')], [['GET']], true],
        ['Content-Length body not begun', [response('HTTP/1.1 200 OK', ['Content-Length: 5'])], [['GET']], true],
        ['mid chunk size', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], '5')], [['GET']], true],
        ['mid chunk', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], '5\r\nhel')], [['GET', true]], true],
        ['before the CRLF after a chunk', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], '5\r\nhello\r')], [['GET']], true],
        ['before the last chunk', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], '5\r\nhello\r\n')], [['GET']], true],
        ['mid trailers', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], '0\r\nX-T: a\r\n')], [['GET']], true],
        ['before the end of the last chunk', [response('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], '0\r\n')], [['GET', true]], true],
      ]);
    });
  });
});
