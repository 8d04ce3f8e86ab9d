/** Tests for the shared error table and helpers in src/errors.ts. */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConnectError,
  ERROR_CODES,
  ProtocolError,
  closeReason,
  errorFromBody,
  isErrorCode,
  parseCloseReason,
  type ErrorCode,
} from '../src/errors.js';

const ALL_CODES = Object.keys(ERROR_CODES) as ErrorCode[];
const MAX_CLOSE_REASON_BYTES = 123;

/** True when `text` is well-formed UTF-16 (no lone surrogates) and so encodes to UTF-8 and back unchanged. */
function isWellFormed(text: string): boolean {
  return Buffer.from(text, 'utf8').toString('utf8') === text;
}

describe('ERROR_CODES', () => {
  test('gives every code an HTTP status from 400 to 599', () => {
    for (const code of ALL_CODES) {
      const { status } = ERROR_CODES[code];
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: status ${status}`);
    }
  });

  test('gives every code a WebSocket close code that is 1011 or in the private range 4000-4999', () => {
    for (const code of ALL_CODES) {
      const { close } = ERROR_CODES[code];
      assert.ok(close === 1011 || (Number.isInteger(close) && close >= 4000 && close <= 4999), `${code}: close ${close}`);
    }
  });

  test('gives every code a summary sentence and a name in upper snake case', () => {
    for (const code of ALL_CODES) {
      assert.match(code, /^[A-Z][A-Z0-9_]*[A-Z]$/);
      const { summary } = ERROR_CODES[code];
      assert.ok(summary.length > 0 && summary.endsWith('.'), `${code}: summary ${JSON.stringify(summary)}`);
    }
  });

  test('maps INTERNAL to HTTP 500 and WebSocket close 1011', () => {
    assert.equal(ERROR_CODES.INTERNAL.status, 500);
    assert.equal(ERROR_CODES.INTERNAL.close, 1011);
  });
});

describe('isErrorCode', () => {
  test('accepts every code of the table', () => {
    for (const code of ALL_CODES) assert.equal(isErrorCode(code), true, code);
  });

  test('refuses other strings, inherited property names and non-strings', () => {
    for (const value of ['internal', 'Internal', '', 'NOPE', 'toString', 'constructor', '__proto__', 'hasOwnProperty', 1, null, undefined, {}, ['INTERNAL']]) {
      assert.equal(isErrorCode(value), false, String(value));
    }
  });
});

describe('ConnectError', () => {
  test('carries its code, the status and close code of the table, and the summary as default message', () => {
    for (const code of ALL_CODES) {
      const err = new ConnectError(code);
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'ConnectError');
      assert.equal(err.code, code);
      assert.equal(err.message, ERROR_CODES[code].summary);
      assert.equal(err.status, ERROR_CODES[code].status);
      assert.equal(err.closeCode, ERROR_CODES[code].close);
    }
  });

  test('keeps a given message and cause', () => {
    const cause = new Error('ECONNREFUSED');
    const err = new ConnectError('TARGET_UNREACHABLE', 'could not connect to localhost:5432', { cause });
    assert.equal(err.message, 'could not connect to localhost:5432');
    assert.equal(err.cause, cause);
  });

  test('toJSON gives exactly {code, message}, without stack or cause', () => {
    const err = new ConnectError('SERVICE_NOT_FOUND', 'no service named "prod-db"', { cause: new Error('secret detail') });
    assert.deepEqual(err.toJSON(), { code: 'SERVICE_NOT_FOUND', message: 'no service named "prod-db"' });
    assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'SERVICE_NOT_FOUND', message: 'no service named "prod-db"' });
    assert.deepEqual(JSON.parse(JSON.stringify({ error: new ConnectError('INTERNAL') })), { error: { code: 'INTERNAL', message: 'Internal error.' } });
  });
});

describe('ProtocolError', () => {
  test('is a ConnectError with its own name', () => {
    const err = new ProtocolError('FRAME_TOO_LARGE', 'too big');
    assert.ok(err instanceof ConnectError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'ProtocolError');
    assert.equal(err.code, 'FRAME_TOO_LARGE');
    assert.equal(err.closeCode, 4003);
    assert.deepEqual(err.toJSON(), { code: 'FRAME_TOO_LARGE', message: 'too big' });
  });
});

describe('errorFromBody', () => {
  test('rebuilds a ConnectError from a known code and its message', () => {
    const err = errorFromBody({ code: 'SERVICE_OFFLINE', message: 'the agent exposing "db" is offline' });
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, 'SERVICE_OFFLINE');
    assert.equal(err.message, 'the agent exposing "db" is offline');
    assert.equal(err.status, 503);
  });

  test('round-trips every code through toJSON', () => {
    for (const code of ALL_CODES) {
      const back = errorFromBody(JSON.parse(JSON.stringify(new ConnectError(code, `m ${code}`))));
      assert.deepEqual(back.toJSON(), { code, message: `m ${code}` });
    }
  });

  test('uses the summary when the message is missing or not a string', () => {
    for (const message of [undefined, null, 5, { text: 'x' }]) {
      assert.equal(errorFromBody({ code: 'NOT_FOUND', message }).message, ERROR_CODES.NOT_FOUND.summary);
    }
  });

  test('turns an unknown code into INTERNAL with its summary, never showing the raw message', () => {
    for (const body of [{ code: 'NOPE', message: 'raw internals' }, { code: 'toString' }, { code: '__proto__' }, { code: 42 }, { message: 'x' }, {}]) {
      const err = errorFromBody(body);
      assert.equal(err.code, 'INTERNAL');
      assert.equal(err.message, 'Internal error.');
    }
  });

  test('turns a body that is not an object into INTERNAL', () => {
    for (const body of [null, undefined, 'SERVICE_NOT_FOUND', 404, true, ['SERVICE_NOT_FOUND']]) {
      assert.equal(errorFromBody(body).code, 'INTERNAL');
    }
  });
});

describe('closeReason and parseCloseReason', () => {
  test('writes CODE: message when it fits', () => {
    assert.equal(closeReason('SHUTTING_DOWN', 'bye'), 'SHUTTING_DOWN: bye');
  });

  test('round-trip a short reason for every code', () => {
    for (const code of ALL_CODES) {
      for (const message of ['', 'x', 'a: b: c', 'line\nbreak', 'ünïcødé ✈ 😀']) {
        const reason = closeReason(code, message);
        assert.ok(Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES);
        assert.deepEqual(parseCloseReason(reason), { code, message });
      }
    }
  });

  test('keeps a reason of exactly 123 bytes and cuts one of 124', () => {
    const prefix = 'INTERNAL: ';
    const exact = closeReason('INTERNAL', 'x'.repeat(MAX_CLOSE_REASON_BYTES - prefix.length));
    assert.equal(Buffer.byteLength(exact), MAX_CLOSE_REASON_BYTES);
    assert.ok(!exact.endsWith('...'));
    const cut = closeReason('INTERNAL', 'x'.repeat(MAX_CLOSE_REASON_BYTES - prefix.length + 1));
    assert.ok(Buffer.byteLength(cut) <= MAX_CLOSE_REASON_BYTES);
    assert.ok(cut.endsWith('...'));
  });

  test('fits in 123 bytes of well-formed UTF-8 even with long multibyte messages cut at every offset', () => {
    // 2-, 3- and 4-byte characters, shifted by 0..7 ASCII bytes so that the cut falls inside a character every way.
    for (const char of ['é', '€', '東', '😀', '👩‍👩‍👧', 'a€😀']) {
      for (let shift = 0; shift < 8; shift++) {
        for (const code of ['INTERNAL', 'SERVICE_NAME_TAKEN', 'UNSUPPORTED_VERSION'] as const) {
          const reason = closeReason(code, 'x'.repeat(shift) + char.repeat(200));
          const bytes = Buffer.byteLength(reason, 'utf8');
          assert.ok(bytes <= MAX_CLOSE_REASON_BYTES, `${code} ${char} shift ${shift}: ${bytes} bytes`);
          assert.ok(bytes >= MAX_CLOSE_REASON_BYTES - 6, `${code} ${char} shift ${shift}: only ${bytes} bytes kept`);
          assert.ok(reason.endsWith('...'));
          assert.ok(!reason.includes('\uFFFD'), `${code} ${char} shift ${shift}: replacement character in ${JSON.stringify(reason)}`);
          // A lone surrogate left by the cut would not survive UTF-8 encoding (the WebSocket close frame).
          assert.ok(isWellFormed(reason), `${code} ${char} shift ${shift}: not well-formed: ${JSON.stringify(reason.slice(-6))}`);
          assert.equal(parseCloseReason(reason)?.code, code);
        }
      }
    }
  });

  test('still yields the code when a long reason was cut', () => {
    const parsed = parseCloseReason(closeReason('TOKEN_EXPIRED', 'the token expired '.repeat(20)));
    assert.equal(parsed?.code, 'TOKEN_EXPIRED');
    assert.ok(parsed?.message.startsWith('the token expired'));
    assert.ok(parsed?.message.endsWith('...'));
  });

  test('parseCloseReason refuses reasons not written by closeReason', () => {
    for (const reason of ['', 'bye', 'INTERNAL', 'INTERNAL:', 'INTERNAL:x', 'internal: x', 'NOPE: x', ' INTERNAL: x', 'TO_STRING: x', 'toString: x']) {
      assert.equal(parseCloseReason(reason), undefined, JSON.stringify(reason));
    }
  });
});
