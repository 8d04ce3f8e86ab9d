/** Tests for service names, targets and auto-naming in src/names.ts. */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { WELL_KNOWN_PORTS, autoName, formatTarget, parseReachName, parseTarget, validateServiceName } from '../src/names.js';
import { ConnectError, type ErrorCode } from '../src/errors.js';
import { MAX_SERVICE_NAME } from '../src/limits.js';

function assertConnectError(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('validateServiceName', () => {
  test('accepts DNS labels and returns them unchanged', () => {
    for (const name of ['prod-db', 'a', '0', 'db1', '1db', 'a-b-c', 'a--b', 'x'.repeat(MAX_SERVICE_NAME), `a${'-'.repeat(61)}b`]) {
      assert.equal(validateServiceName(name), name);
    }
  });

  test('accepts a name of exactly 63 characters and refuses one of 64', () => {
    assert.equal(MAX_SERVICE_NAME, 63);
    assert.equal(validateServiceName('a'.repeat(63)), 'a'.repeat(63));
    assertConnectError(() => validateServiceName('a'.repeat(64)), 'INVALID_NAME', /at most 63 characters/);
  });

  test('refuses upper case letters', () => {
    for (const name of ['Prod-db', 'PROD', 'prodDb', 'A']) assertConnectError(() => validateServiceName(name), 'INVALID_NAME');
  });

  test('refuses a dash at either end', () => {
    for (const name of ['-prod', 'prod-', '-', '--', '-a-']) assertConnectError(() => validateServiceName(name), 'INVALID_NAME');
  });

  test('refuses the empty name', () => {
    assertConnectError(() => validateServiceName(''), 'INVALID_NAME', /"" is not a valid service name/);
  });

  test('refuses dots, underscores, spaces and other punctuation', () => {
    for (const name of ['prod.db', 'a.b.c', '.', 'prod_db', 'prod db', ' prod', 'prod ', 'prod\n', '\nprod', 'prod/db', 'prod:5432', 'a*', 'a@b']) {
      assertConnectError(() => validateServiceName(name), 'INVALID_NAME');
    }
  });

  test('refuses non-ASCII letters, including ones that look like ASCII', () => {
    // 'е' is Cyrillic, 'ı' dotless i, 'ａ' fullwidth, 'K' the Kelvin sign.
    for (const name of ['prod-dé', 'café', 'db-😀', 'db-\u0435', 'd\u0131b', '\uff41', '\u212a', 'a\u200bb', 'xn--caf-dma\u00a0']) {
      assertConnectError(() => validateServiceName(name), 'INVALID_NAME');
    }
  });

  test('cuts a very long invalid name in its error message', () => {
    assert.throws(
      () => validateServiceName('x'.repeat(10_000)),
      (err: unknown) => err instanceof ConnectError && err.message.length < 300 && err.message.includes('x'.repeat(80)) && !err.message.includes('x'.repeat(81)),
    );
  });
});

describe('parseReachName', () => {
  test('a plain name is a service of the workspace; share/service a service shared by another workspace', () => {
    assert.deepEqual(parseReachName('prod-db'), { service: 'prod-db' });
    assert.deepEqual(parseReachName('acme/prod-db'), { alias: 'acme', service: 'prod-db' });
    const long = 'x'.repeat(MAX_SERVICE_NAME);
    assert.deepEqual(parseReachName(`${long}/${long}`), { alias: long, service: long });
  });

  test('validates both halves and allows one slash only', () => {
    for (const name of ['/db', 'acme/', 'Acme/db', 'acme/DB', 'a/b/c', '/', `${'x'.repeat(MAX_SERVICE_NAME + 1)}/db`, `acme/${'x'.repeat(MAX_SERVICE_NAME + 1)}`, 'ac me/db']) {
      assertConnectError(() => parseReachName(name), 'INVALID_NAME');
    }
  });
});

describe('parseTarget', () => {
  test('parses host:port', () => {
    assert.deepEqual(parseTarget('localhost:5432'), { host: 'localhost', port: 5432 });
    assert.deepEqual(parseTarget('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
    assert.deepEqual(parseTarget('db.internal.example.com:3306'), { host: 'db.internal.example.com', port: 3306 });
    assert.deepEqual(parseTarget('my_host-1:1'), { host: 'my_host-1', port: 1 });
  });

  test('asks for brackets around an IPv6 address instead of guessing the port', () => {
    assert.throws(() => parseTarget('::1:6379'), (err: Error & { code?: string }) => err.code === 'INVALID_TARGET' && /brackets/.test(err.message));
  });

  test('parses a bracketed IPv6 address', () => {
    assert.deepEqual(parseTarget('[::1]:6379'), { host: '::1', port: 6379 });
    assert.deepEqual(parseTarget('[fe80::1:2]:443'), { host: 'fe80::1:2', port: 443 });
    assert.deepEqual(parseTarget('[::ffff:127.0.0.1]:80'), { host: '::ffff:127.0.0.1', port: 80 });
  });

  test('reads a bare port as a port on localhost', () => {
    assert.deepEqual(parseTarget('5432'), { host: 'localhost', port: 5432 });
    assert.deepEqual(parseTarget('1'), { host: 'localhost', port: 1 });
    assert.deepEqual(parseTarget('65535'), { host: 'localhost', port: 65535 });
  });

  test('strips a tcp:// prefix', () => {
    assert.deepEqual(parseTarget('tcp://host:1'), { host: 'host', port: 1 });
    assert.deepEqual(parseTarget('tcp://[::1]:6379'), { host: '::1', port: 6379 });
    assert.deepEqual(parseTarget('tcp://8080'), { host: 'localhost', port: 8080 });
  });

  test('ignores spaces around the whole target', () => {
    assert.deepEqual(parseTarget('  localhost:5432\n'), { host: 'localhost', port: 5432 });
  });

  test('accepts ports 1 and 65535 and refuses 0 and 65536', () => {
    assert.equal(parseTarget('host:1').port, 1);
    assert.equal(parseTarget('host:65535').port, 65535);
    for (const input of ['host:0', 'host:65536', '0', '65536', '[::1]:0', '[::1]:65536', 'host:99999999999999999999']) {
      assertConnectError(() => parseTarget(input), 'INVALID_TARGET', /expected host:port/);
    }
  });

  test('refuses a missing or non-numeric port', () => {
    for (const input of ['host:', 'host:abc', 'host:80a', 'host:-1', 'host:+80', 'host:1e3', 'host:0x50', 'host:8.0', 'host', 'localhost', '', '[::1]', '[::1]:', 'tcp://']) {
      assertConnectError(() => parseTarget(input), 'INVALID_TARGET');
    }
  });

  test('refuses spaces inside the target', () => {
    for (const input of ['local host:5432', 'localhost :5432', 'localhost: 5432', 'host:54 32', '54 32', '[::1] :6379']) {
      assertConnectError(() => parseTarget(input), 'INVALID_TARGET');
    }
  });

  test('refuses an empty, over-long or oddly spelled host', () => {
    for (const input of [':5432', 'ho/st:1', 'host?x:1', 'ho st:1', 'user@host:22', 'hôst:1', `${'a'.repeat(254)}:1`, 'http://host:80']) {
      assertConnectError(() => parseTarget(input), 'INVALID_TARGET');
    }
    assert.equal(parseTarget(`${'a'.repeat(253)}:1`).host.length, 253);
  });

  test('names the refused input, cut to 80 characters', () => {
    assertConnectError(() => parseTarget('host:abc'), 'INVALID_TARGET', /^"host:abc" is not a target/);
    assert.throws(
      () => parseTarget('x'.repeat(500)),
      (err: unknown) => err instanceof ConnectError && err.message.includes('x'.repeat(80)) && !err.message.includes('x'.repeat(81)),
    );
  });
});

describe('formatTarget', () => {
  test('writes host:port', () => {
    assert.equal(formatTarget({ host: 'localhost', port: 5432 }), 'localhost:5432');
    assert.equal(formatTarget({ host: '127.0.0.1', port: 80 }), '127.0.0.1:80');
  });

  test('puts brackets around an IPv6 host', () => {
    assert.equal(formatTarget({ host: '::1', port: 6379 }), '[::1]:6379');
    assert.equal(formatTarget({ host: 'fe80::1', port: 22 }), '[fe80::1]:22');
  });

  test('round-trips through parseTarget', () => {
    for (const input of ['localhost:5432', '127.0.0.1:80', '[::1]:6379', 'db.example.com:65535', '[fe80::1:2]:1']) {
      assert.equal(formatTarget(parseTarget(input)), input);
    }
    assert.equal(formatTarget(parseTarget('5432')), 'localhost:5432');
    assert.equal(formatTarget(parseTarget('tcp://host:1')), 'host:1');
  });
});

describe('autoName', () => {
  test('names well-known ports after their service', () => {
    const expected: [number, string][] = [
      [5432, 'postgres'],
      [6379, 'redis'],
      [3306, 'mysql'],
      [27017, 'mongodb'],
      [80, 'http'],
      [8080, 'http'],
    ];
    for (const [port, name] of expected) {
      assert.equal(autoName({ host: 'localhost', port }), name);
      assert.equal(autoName(parseTarget(`10.0.0.1:${port}`)), name);
    }
  });

  test('names an unknown port port-N', () => {
    for (const port of [1, 1234, 5433, 65535]) assert.equal(autoName({ host: 'localhost', port }), `port-${port}`);
  });

  test('gives every port a valid service name', () => {
    for (const port of [...Object.keys(WELL_KNOWN_PORTS).map(Number), 1, 65535]) {
      const name = autoName({ host: 'localhost', port });
      assert.equal(validateServiceName(name), name);
    }
  });
});
