/**
 * The end-to-end pieces protocol owns (e2e.ts): per-stream key derivation and the record layer with its ratchet, the
 * static key bound to the identity, and the v2 offer and answer shapes. The Noise handshake is the SDK's.
 */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  E2E_SESSION_ID_BYTES,
  E2E_TAG_BYTES,
  MAX_HANDSHAKE_BYTES,
  decodeIdentityKey,
  deriveStreamSession,
  generateIdentity,
  isWeakIdentityKey,
  generateStaticKey,
  identityFromPem,
  keyFingerprint,
  parseAnswer,
  parseOffer,
  signStaticKey,
  staticKeyFromPem,
  verifyStaticKey,
  type E2ESession,
  type E2EUsage,
} from '../src/e2e.js';
import { ConnectError, ProtocolError } from '../src/errors.js';

const SERVICE = 'prod-db';

/** One session's two roots (a Noise split) and id; `pair` gives both ends of one stream of it. */
function session() {
  const opener = randomBytes(32);
  const exposer = randomBytes(32);
  const sid = randomBytes(E2E_SESSION_ID_BYTES);
  const pair = (n = 1, service = SERVICE, options: Parameters<typeof deriveStreamSession>[5] = {}) => ({
    a: deriveStreamSession(opener, exposer, sid, n, service, options),
    b: deriveStreamSession(exposer, opener, sid, n, service, options),
  });
  return { opener, exposer, sid, pair };
}

function seal(session: E2ESession, plaintext: Buffer): Buffer {
  const out = Buffer.alloc(plaintext.length + E2E_TAG_BYTES);
  session.sealInto([plaintext], out, 0);
  return out;
}

function assertCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const record = (i: number) => Buffer.from(`record ${i}`);

describe('stream keys derived from the session (deriveStreamSession)', () => {
  test('both ends (roots swapped) open what the other seals, in each direction', () => {
    const { a, b } = session().pair();
    const request = Buffer.from('SELECT 1;');
    assert.deepEqual(b.open(seal(a, request)), request);
    const reply = randomBytes(70_000);
    assert.deepEqual(a.open(seal(b, reply)), reply);
  });

  test('a record sealed for one direction does not open in the other', () => {
    const { a } = session().pair();
    assertCode(() => a.open(seal(a, Buffer.from('echo'))), 'E2E_DECRYPT_FAILED');
  });

  test('another stream number, another service, another session id or swapped roots derive keys that do not open the record', () => {
    const s = session();
    const sealed = seal(s.pair(7, SERVICE).a, Buffer.from('to prod-db, stream 7'));
    const others: [string, E2ESession][] = [
      ['stream 8', s.pair(8, SERVICE).b],
      ['stream 7 + 2^32', s.pair(7 + 2 ** 32, SERVICE).b],
      ['another service', s.pair(7, 'prod-db2').b],
      ['another session id', deriveStreamSession(s.exposer, s.opener, randomBytes(E2E_SESSION_ID_BYTES), 7, SERVICE)],
      ['the roots not swapped', deriveStreamSession(s.opener, s.exposer, s.sid, 7, SERVICE)],
    ];
    for (const [what, other] of others) assert.throws(() => other.open(sealed), (err: unknown) => err instanceof ConnectError && err.code === 'E2E_DECRYPT_FAILED', what);
    assert.equal(s.pair(7, SERVICE).b.open(sealed).toString(), 'to prod-db, stream 7');
  });

  test('the keys are HKDF-Expand-SHA256(PRK root, info sid "private-connect stream keys v2" 0 n:u64 len:u16 service), the nonce 4 zero bytes then the u64 counter', () => {
    // Pins the derivation and the record layout: both ends of a stream may run different releases.
    const s = session();
    const n = 2 ** 40 + 3;
    const name = Buffer.from('é-svc');
    const info = Buffer.concat([Buffer.from('private-connect stream keys v2\0', 'latin1'), Buffer.alloc(8), Buffer.alloc(2), name]);
    info.writeBigUInt64BE(BigInt(n), 31);
    info.writeUInt16BE(name.length, 39);
    // HKDF-Expand with L = 32 is one block: HMAC(PRK, info || 0x01) (RFC 5869 section 2.3).
    const key = createHmac('sha256', s.opener).update(Buffer.concat([s.sid, info, Buffer.from([1])])).digest();
    const sender = s.pair(n, 'é-svc').a;
    seal(sender, Buffer.from('first'));
    const sealed = seal(sender, Buffer.from('second'));
    const iv = Buffer.alloc(12);
    iv.writeBigUInt64BE(1n, 4);
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: E2E_TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - E2E_TAG_BYTES));
    assert.equal(Buffer.concat([decipher.update(sealed.subarray(0, -E2E_TAG_BYTES)), decipher.final()]).toString(), 'second');
  });

  test('the record is not the plaintext: ciphertext differs and carries a tag', () => {
    const { a } = session().pair();
    const plaintext = Buffer.alloc(4096, 'A');
    const sealed = seal(a, plaintext);
    assert.equal(sealed.length, plaintext.length + E2E_TAG_BYTES);
    assert.equal(sealed.includes(Buffer.from('AAAAAAAA')), false);
  });
});

describe('records: counters, replay and tampering', () => {
  test('a replayed record is refused', () => {
    const { a, b } = session().pair();
    const first = seal(a, Buffer.from('transfer $100'));
    b.open(first);
    assertCode(() => b.open(first), 'E2E_DECRYPT_FAILED', /altered, replayed or reordered/);
  });

  test('reordered and dropped records are refused; the failed record does not advance the counter', () => {
    const { a, b } = session().pair();
    const r0 = seal(a, Buffer.from('zero'));
    const r1 = seal(a, Buffer.from('one'));
    const r2 = seal(a, Buffer.from('two'));
    assertCode(() => b.open(r1), 'E2E_DECRYPT_FAILED');
    assert.equal(b.open(r0).toString(), 'zero');
    assertCode(() => b.open(r2), 'E2E_DECRYPT_FAILED', /record 1 /);
    assert.equal(b.open(r1).toString(), 'one');
    assert.equal(b.open(r2).toString(), 'two');
  });

  test('a flipped bit anywhere (body or tag) is refused, and so are a record cut short and one shorter than a tag', () => {
    for (const at of [0, 5, 12, 13 + E2E_TAG_BYTES - 1]) {
      const { a, b } = session().pair();
      const sealed = seal(a, Buffer.from('thirteen byte'));
      sealed[at]! ^= 0x01;
      assertCode(() => b.open(sealed), 'E2E_DECRYPT_FAILED');
    }
    for (const cut of [1, E2E_TAG_BYTES, 13]) {
      const { a, b } = session().pair();
      const sealed = seal(a, Buffer.from('thirteen byte'));
      assertCode(() => b.open(sealed.subarray(0, sealed.length - cut)), 'E2E_DECRYPT_FAILED');
    }
    const { b } = session().pair();
    assertCode(() => b.open(Buffer.alloc(E2E_TAG_BYTES - 1)), 'E2E_DECRYPT_FAILED', /at least 16 bytes/);
  });

  test('an empty record (the end marker) authenticates like any other', () => {
    const { a, b } = session().pair();
    const marker = seal(a, Buffer.alloc(0));
    assert.equal(marker.length, E2E_TAG_BYTES);
    assert.equal(b.open(marker).length, 0);
  });

  test('sealInto seals several pieces as one record, at an offset, as the agent does into a frame buffer', () => {
    const { a, b } = session().pair();
    const pieces = [randomBytes(300), Buffer.alloc(0), randomBytes(1), randomBytes(299)];
    const frame = Buffer.alloc(10 + 600 + E2E_TAG_BYTES);
    a.sealInto(pieces, frame, 10);
    assert.deepEqual(b.open(frame.subarray(10)), Buffer.concat(pieces));
  });
});

describe('the record key ratchet', () => {
  const RECORDS_PER_KEY = 4;

  test('with 4 records per key, 20 records each way open in order', () => {
    const { a, b } = session().pair(1, SERVICE, { recordsPerKey: RECORDS_PER_KEY });
    for (let i = 0; i < 20; i++) {
      assert.equal(b.open(seal(a, record(i))).toString(), `record ${i}`);
      assert.equal(a.open(seal(b, record(i))).toString(), `record ${i}`);
    }
  });

  test('the key changes after 4 records: a sender that does not ratchet fails at record 4, and so does a receiver that does not', () => {
    const s = session();
    const ratcheting = s.pair(1, SERVICE, { recordsPerKey: RECORDS_PER_KEY });
    const fixed = s.pair(1, SERVICE);
    for (let i = 0; i < RECORDS_PER_KEY; i++) {
      assert.equal(ratcheting.b.open(seal(fixed.a, record(i))).toString(), `record ${i}`);
      assert.equal(fixed.a.open(seal(ratcheting.b, record(i))).toString(), `record ${i}`);
    }
    assertCode(() => ratcheting.b.open(seal(fixed.a, record(4))), 'E2E_DECRYPT_FAILED', /record 4 /);
    assertCode(() => fixed.a.open(seal(ratcheting.b, record(4))), 'E2E_DECRYPT_FAILED', /record 4 /);
  });

  test('a failed record at a key boundary does not move the receive key twice: the right record still opens', () => {
    const { a, b } = session().pair(1, SERVICE, { recordsPerKey: RECORDS_PER_KEY });
    for (let i = 0; i < RECORDS_PER_KEY; i++) b.open(seal(a, record(i)));
    const r4 = seal(a, record(4));
    const r5 = seal(a, record(5));
    const altered = Buffer.from(r4);
    altered[0]! ^= 0x80;
    assertCode(() => b.open(altered), 'E2E_DECRYPT_FAILED');
    assertCode(() => b.open(r5), 'E2E_DECRYPT_FAILED');
    assertCode(() => b.open(Buffer.alloc(E2E_TAG_BYTES)), 'E2E_DECRYPT_FAILED');
    assert.equal(b.open(r4).toString(), 'record 4');
    assert.equal(b.open(r5).toString(), 'record 5');
    for (let i = 6; i < 20; i++) assert.equal(b.open(seal(a, record(i))).toString(), `record ${i}`);
  });

  test('a record of an earlier key does not open under the next one (a replay across the boundary)', () => {
    const { a, b } = session().pair(1, SERVICE, { recordsPerKey: RECORDS_PER_KEY });
    const early = [0, 1, 2, 3].map((i) => seal(a, record(i)));
    for (const r of early) b.open(r);
    for (const r of early) assertCode(() => b.open(r), 'E2E_DECRYPT_FAILED');
  });
});

describe('usage: bytes sealed and opened under one session', () => {
  test('counts plaintext bytes sealed and opened, summed over the streams that share the counter; a failed record counts nothing', () => {
    const s = session();
    const usageA: E2EUsage = { bytes: 0 };
    const usageB: E2EUsage = { bytes: 0 };
    const one = { a: deriveStreamSession(s.opener, s.exposer, s.sid, 1, SERVICE, { usage: usageA }), b: deriveStreamSession(s.exposer, s.opener, s.sid, 1, SERVICE, { usage: usageB }) };
    const two = { a: deriveStreamSession(s.opener, s.exposer, s.sid, 2, SERVICE, { usage: usageA }), b: deriveStreamSession(s.exposer, s.opener, s.sid, 2, SERVICE, { usage: usageB }) };

    one.b.open(seal(one.a, randomBytes(1000)));
    assert.deepEqual([usageA.bytes, usageB.bytes], [1000, 1000]);
    two.a.open(seal(two.b, randomBytes(300)));
    one.b.open(seal(one.a, Buffer.alloc(0)));
    assert.deepEqual([usageA.bytes, usageB.bytes], [1300, 1300]);

    const sealed = seal(two.a, randomBytes(50));
    assert.equal(usageA.bytes, 1350);
    sealed[0]! ^= 1;
    assertCode(() => two.b.open(sealed), 'E2E_DECRYPT_FAILED');
    assert.equal(usageB.bytes, 1300);
  });
});

describe('the static key bound to the identity (signStaticKey, verifyStaticKey)', () => {
  const identity = generateIdentity();
  const staticKey = generateStaticKey();
  const identityKey = identity.publicKey.toString('base64');
  const staticB64 = staticKey.publicKey.toString('base64');
  const sig = signStaticKey(identity, staticKey.publicKey);

  test('the signature verifies for that identity and that static key', () => {
    assert.equal(Buffer.from(sig, 'base64').length, 64);
    assert.equal(verifyStaticKey(identityKey, staticB64, sig), true);
  });

  test('another identity\'s signature, another static key or a flipped bit does not verify', () => {
    const other = generateIdentity();
    assert.equal(verifyStaticKey(identityKey, staticB64, signStaticKey(other, staticKey.publicKey)), false);
    assert.equal(verifyStaticKey(other.publicKey.toString('base64'), staticB64, sig), false);
    assert.equal(verifyStaticKey(identityKey, generateStaticKey().publicKey.toString('base64'), sig), false);
    for (const bit of [0, 7, 200, 511]) {
      const flipped = Buffer.from(sig, 'base64');
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(verifyStaticKey(identityKey, staticB64, flipped.toString('base64')), false, `bit ${bit} of the signature`);
    }
    const flippedKey = Buffer.from(staticKey.publicKey);
    flippedKey[31]! ^= 0x01;
    assert.equal(verifyStaticKey(identityKey, flippedKey.toString('base64'), sig), false);
  });

  test('a malformed key or signature is false, never a throw', () => {
    const malformed: [string, string, string][] = [
      ['', staticB64, sig],
      ['AAAA', staticB64, sig],
      [Buffer.alloc(33).toString('base64'), staticB64, sig],
      [identityKey, 'not base64 at all!', sig],
      [identityKey, Buffer.alloc(31).toString('base64'), sig],
      [identityKey, `${staticB64}\n`, sig],
      [identityKey, staticB64, ''],
      [identityKey, staticB64, Buffer.from(sig, 'base64').subarray(0, 63).toString('base64')],
      [identityKey, staticB64, Buffer.concat([Buffer.from(sig, 'base64'), Buffer.alloc(1)]).toString('base64')],
      [identityKey, staticB64, 'x'.repeat(100_000)],
    ];
    for (const [id, key, signature] of malformed) assert.equal(verifyStaticKey(id, key, signature), false, JSON.stringify([id.slice(0, 20), key.slice(0, 20), signature.slice(0, 20)]));
    for (const junk of [undefined, null, 42, {}, []]) {
      assert.equal(verifyStaticKey(junk as unknown as string, staticB64, sig), false);
      assert.equal(verifyStaticKey(identityKey, junk as unknown as string, sig), false);
      assert.equal(verifyStaticKey(identityKey, staticB64, junk as unknown as string), false);
    }
  });

  test('a small-order or non-canonical identity key binds nothing, though OpenSSL verifies signatures under it', () => {
    // The all-zero key with an all-zero signature verifies in OpenSSL for about one static key in four: the forgery
    // a weak key allows. Every small-order encoding (with either sign bit) and y >= p is refused before verifying.
    const zero = Buffer.alloc(32).toString('base64');
    const zeroSig = Buffer.alloc(64).toString('base64');
    for (let i = 0; i < 40; i++) assert.equal(verifyStaticKey(zero, generateStaticKey().publicKey.toString('base64'), zeroSig), false);
    const weak = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ];
    for (const hex of weak) {
      for (const sign of [0, 0x80]) {
        const raw = Buffer.from(hex, 'hex');
        raw[31]! |= sign;
        assert.equal(isWeakIdentityKey(raw), true, raw.toString('hex'));
        assert.throws(() => decodeIdentityKey(raw.toString('base64'), 'identityKey'), ProtocolError);
      }
    }
    for (let i = 0; i < 20; i++) assert.equal(isWeakIdentityKey(generateIdentity().publicKey), false);
  });
});

describe('keys on disk', () => {
  test('a static key round-trips through its PEM; an Ed25519 PEM is refused as a static key', () => {
    const made = generateStaticKey();
    assert.equal(made.publicKey.length, 32);
    assert.equal(made.secretKey.length, 32);
    assert.match(made.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const loaded = staticKeyFromPem(made.privateKeyPem);
    assert.deepEqual(loaded.publicKey, made.publicKey);
    assert.deepEqual(loaded.secretKey, made.secretKey);
    assert.notDeepEqual(generateStaticKey().publicKey, made.publicKey);
    assertCode(() => staticKeyFromPem(generateIdentity().privateKeyPem), 'BAD_REQUEST', /not an X25519 key/);
  });

  test('identities round-trip through their PEM, and fingerprints look like ssh\'s', () => {
    const made = generateIdentity();
    const loaded = identityFromPem(made.privateKeyPem);
    assert.deepEqual(loaded.publicKey, made.publicKey);
    assert.match(keyFingerprint(made.publicKey), /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(keyFingerprint(made.publicKey.toString('base64')), keyFingerprint(made.publicKey));
    const x25519 = generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    assertCode(() => identityFromPem(x25519), 'BAD_REQUEST', /not an Ed25519 key/);
  });
});

describe('parsing the e2e fields of OPEN and OPEN_OK', () => {
  const hs = randomBytes(96).toString('base64');
  const sid = randomBytes(E2E_SESSION_ID_BYTES).toString('base64');

  test('a handshake offer, a stream offer and both answers parse to exactly their fields', () => {
    assert.deepEqual(parseOffer({ v: 2, hs }), { v: 2, hs });
    assert.deepEqual(parseOffer({ v: 2, sid, n: 1 }), { v: 2, sid, n: 1 });
    assert.deepEqual(parseOffer({ v: 2, sid, n: Number.MAX_SAFE_INTEGER, extra: 'dropped' }), { v: 2, sid, n: Number.MAX_SAFE_INTEGER });
    const atLimit = randomBytes(MAX_HANDSHAKE_BYTES).toString('base64');
    assert.deepEqual(parseOffer({ v: 2, hs: atLimit }), { v: 2, hs: atLimit });
    assert.deepEqual(parseAnswer({ v: 2 }), { v: 2 });
    assert.deepEqual(parseAnswer({ v: 2, hs }), { v: 2, hs });
    assert.deepEqual(parseAnswer({ v: 2, hs: atLimit }), { v: 2, hs: atLimit });
  });

  test('offers of the wrong shape are BAD_MESSAGE', () => {
    const bad: [string, unknown][] = [
      ['null', null],
      ['an array', []],
      ['a string', 'x'],
      ['no version', { hs }],
      ['v1 (the per-stream handshake)', { v: 1, e: randomBytes(32).toString('base64') }],
      ['v1 with hs', { v: 1, hs }],
      ['v "2"', { v: '2', hs }],
      ['neither hs nor sid', { v: 2 }],
      ['both hs and sid', { v: 2, hs, sid, n: 1 }],
      ['hs and n', { v: 2, hs, n: 1 }],
      ['sid without n', { v: 2, sid }],
      ['n without sid', { v: 2, n: 1 }],
      ['sid of 15 bytes', { v: 2, sid: randomBytes(15).toString('base64'), n: 1 }],
      ['sid of 17 bytes', { v: 2, sid: randomBytes(17).toString('base64'), n: 1 }],
      ['sid not canonical base64', { v: 2, sid: sid.replace(/=*$/, ''), n: 1 }],
      ['sid a number', { v: 2, sid: 16, n: 1 }],
      ['n 0', { v: 2, sid, n: 0 }],
      ['n negative', { v: 2, sid, n: -1 }],
      ['n a fraction', { v: 2, sid, n: 1.5 }],
      ['n past 2^53', { v: 2, sid, n: 2 ** 53 }],
      ['n huge', { v: 2, sid, n: 1e300 }],
      ['n a string', { v: 2, sid, n: '1' }],
      ['hs empty', { v: 2, hs: '' }],
      ['hs not base64', { v: 2, hs: 'not base64!' }],
      ['hs with a newline', { v: 2, hs: `${hs}\n` }],
      ['hs a number', { v: 2, hs: 96 }],
      ...[1, 2, 3, 1024].map((over): [string, unknown] => [`hs of MAX_HANDSHAKE_BYTES + ${over}`, { v: 2, hs: randomBytes(MAX_HANDSHAKE_BYTES + over).toString('base64') }]),
    ];
    for (const [what, offer] of bad) assert.throws(() => parseOffer(offer), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE', what);
  });

  test('answers of the wrong shape are BAD_MESSAGE', () => {
    const bad: [string, unknown][] = [
      ['null', null],
      ['an array', [{ v: 2 }]],
      ['v1', { v: 1 }],
      ['v1 with hs', { v: 1, hs }],
      ['hs empty', { v: 2, hs: '' }],
      ['hs not base64', { v: 2, hs: '***' }],
      ['hs an object', { v: 2, hs: {} }],
      ...[1, 2, 3].map((over): [string, unknown] => [`hs of MAX_HANDSHAKE_BYTES + ${over}`, { v: 2, hs: randomBytes(MAX_HANDSHAKE_BYTES + over).toString('base64') }]),
    ];
    for (const [what, answer] of bad) assert.throws(() => parseAnswer(answer), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE', what);
  });
});

describe('records as pieces (direct connections: seal() and openPieces())', () => {
  /** Cuts `buf` into pieces at the given offsets. */
  const cut = (buf: Buffer, at: number[]) => [0, ...at, buf.length].slice(1).map((end, i, ends) => buf.subarray(i === 0 ? 0 : ends[i - 1], end)).filter((p, i, all) => p.length > 0 || all.length === 1);

  test('seal() gives the bytes sealInto() gives, record after record, whatever the parts', () => {
    const s = session();
    const x = s.pair(3);
    const y = s.pair(3);
    for (let i = 0; i < 5; i++) {
      const parts = [randomBytes(1000 + i), Buffer.alloc(0), randomBytes(17 * i)];
      const whole = Buffer.alloc(parts.reduce((n, p) => n + p.length, 0) + E2E_TAG_BYTES);
      x.a.sealInto(parts, whole, 0);
      assert.deepEqual(Buffer.concat(y.a.seal(parts)), whole);
    }
  });

  test('openPieces() opens a record cut anywhere, the tag straddling pieces included, as open() does', () => {
    const s = session();
    const { a, b } = s.pair(4);
    const plain = randomBytes(5000);
    for (const at of [[], [1], [2500], [4990, 5001], [5000], [5008], [1, 2, 3, 5015], [4999, 5000, 5001, 5002]]) {
      const sealed = Buffer.concat(a.seal([plain]));
      const opened = b.openPieces(cut(sealed, at), sealed.length);
      assert.deepEqual(Buffer.concat(opened), plain, `cut at ${at.join(',')}`);
    }
  });

  test('a piece altered, dropped or the record replayed fails with E2E_DECRYPT_FAILED', () => {
    const s = session();
    const { a, b } = s.pair(5);
    const sealed = Buffer.concat(a.seal([randomBytes(3000)]));
    const pieces = cut(Buffer.from(sealed), [1000, 2000, 3010]);
    const altered = pieces[1]!;
    altered[7] = altered[7]! ^ 1;
    assertCode(() => b.openPieces(pieces, sealed.length), 'E2E_DECRYPT_FAILED');
    const { a: a2, b: b2 } = s.pair(6);
    const second = Buffer.concat(a2.seal([randomBytes(100)]));
    const good = cut(second, [50]);
    assert.equal(Buffer.concat(b2.openPieces(good, second.length)).length, 100);
    assertCode(() => b2.openPieces(good, second.length), 'E2E_DECRYPT_FAILED', /altered, replayed or reordered/);
    assertCode(() => b2.openPieces([second.subarray(0, 10)], 10), 'E2E_DECRYPT_FAILED');
  });
});
