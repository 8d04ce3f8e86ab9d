/**
 * The published Noise test vectors (cacophony's, for Noise_IK_25519_ChaChaPoly_BLAKE2b and its XX sibling) through
 * noise-handshake as the agents run it: our X25519 curve (nodeCurve) and the node:crypto libsodium stand-in
 * (packages/noise-crypto, installed as sodium-universal). Every handshake message, the handshake hash and the
 * transport messages must come out byte for byte; a low-order X25519 key must fail the handshake.
 */

import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import NoiseState from 'noise-handshake';
import { nodeCurve } from '../src/e2e/noise-curve.js';
import type { KeyPair } from '../src/e2e/noise-types.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

/** noise-handshake's transport cipher (CommonJS, untyped): the part used here. */
interface CipherState {
  encrypt(plaintext: Buffer, ad?: Buffer): Uint8Array;
  decrypt(ciphertext: Buffer, ad?: Buffer): Uint8Array;
}
const CipherState = createRequire(import.meta.url)('noise-handshake/cipher.js') as new (key: Uint8Array) => CipherState;

const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/noise-vectors.json', import.meta.url), 'utf8')) as { source: string; vectors: Vector[] };
const hex = (s: string) => Buffer.from(s, 'hex');
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Messages of each pattern's handshake; the vectors' later messages are transport messages. */
const HANDSHAKE_MESSAGES: Record<string, number> = { IK: 2, XX: 3 };

/** Runs one vector: both parties with the vector's keys, messages alternating from the initiator. */
function runVector(v: Vector): void {
  const pattern = v.protocol_name.split('_')[1] as 'IK' | 'XX';
  const initiator = new NoiseState(pattern, true, nodeCurve.generateKeyPair(hex(v.init_static)), { curve: nodeCurve });
  const responder = new NoiseState(pattern, false, nodeCurve.generateKeyPair(hex(v.resp_static)), { curve: nodeCurve });
  initiator.e = nodeCurve.generateKeyPair(hex(v.init_ephemeral));
  responder.e = nodeCurve.generateKeyPair(hex(v.resp_ephemeral));
  initiator.initialise(hex(v.init_prologue), v.init_remote_static ? hex(v.init_remote_static) : undefined);
  responder.initialise(hex(v.resp_prologue));

  const steps = HANDSHAKE_MESSAGES[pattern]!;
  assert.ok(v.messages.length > steps, 'the vector has transport messages');
  for (let k = 0; k < steps; k++) {
    const [from, to] = k % 2 === 0 ? [initiator, responder] : [responder, initiator];
    const message = from.send(hex(v.messages[k]!.payload));
    assert.equal(toHex(message), v.messages[k]!.ciphertext, `handshake message ${k}`);
    assert.equal(toHex(to.recv(message)), v.messages[k]!.payload, `handshake payload ${k}`);
  }
  assert.ok(initiator.complete && responder.complete);
  assert.equal(toHex(initiator.hash!), v.handshake_hash);
  assert.equal(toHex(responder.hash!), v.handshake_hash);
  assert.equal(toHex(initiator.rs!), toHex(nodeCurve.generateKeyPair(hex(v.resp_static)).publicKey));
  assert.equal(toHex(responder.rs!), toHex(nodeCurve.generateKeyPair(hex(v.init_static)).publicKey));

  // Transport: the split keys, through the library's CipherState and through node:crypto with the Noise nonce.
  const send = { initiator: new CipherState(initiator.tx!), responder: new CipherState(responder.tx!) };
  const receive = { initiator: new CipherState(initiator.rx!), responder: new CipherState(responder.rx!) };
  const counters = { initiator: 0, responder: 0 };
  for (let k = steps; k < v.messages.length; k++) {
    const { payload, ciphertext } = v.messages[k]!;
    const [from, to] = k % 2 === 0 ? (['initiator', 'responder'] as const) : (['responder', 'initiator'] as const);
    assert.equal(toHex(send[from].encrypt(hex(payload))), ciphertext, `transport message ${k} (CipherState)`);
    assert.equal(toHex(receive[to].decrypt(hex(ciphertext))), payload, `transport payload ${k}`);
    const key = from === 'initiator' ? initiator.tx! : responder.tx!;
    assert.equal(toHex(chachaPoly(key, counters[from]++, hex(payload))), ciphertext, `transport message ${k} (node:crypto)`);
  }
}

/** ChaCha20-Poly1305 as Noise uses it: a 96-bit nonce of 4 zero bytes then the 64-bit little-endian counter, no AD. */
function chachaPoly(key: Uint8Array, counter: number, plaintext: Buffer): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(BigInt(counter), 4);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.alloc(0), { plaintextLength: plaintext.length });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

describe(`Noise test vectors (${fixture.source})`, () => {
  for (const name of ['Noise_IK_25519_ChaChaPoly_BLAKE2b', 'Noise_XX_25519_ChaChaPoly_BLAKE2b']) {
    test(`${name}: every handshake message, the handshake hash and the transport messages match`, () => {
      const v = fixture.vectors.find((x) => x.protocol_name === name);
      assert.ok(v, `${name} is in the fixture`);
      runVector(v);
    });
  }

  test('a vector with one byte of its expected ciphertext changed fails (the check compares bytes)', () => {
    const v = structuredClone(fixture.vectors.find((x) => x.protocol_name === 'Noise_IK_25519_ChaChaPoly_BLAKE2b')!);
    const c = hex(v.messages[0]!.ciphertext);
    c[40]! ^= 1;
    v.messages[0]!.ciphertext = toHex(c);
    assert.throws(() => runVector(v), /handshake message 0/);
  });

  test('nodeCurve derives the public keys the X25519 of RFC 7748 gives (its section 6.1 keys)', () => {
    const alice = nodeCurve.generateKeyPair(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const bob = nodeCurve.generateKeyPair(hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
    assert.equal(toHex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(toHex(bob.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    assert.equal(toHex(nodeCurve.dh(bob.publicKey, alice)), shared);
    assert.equal(toHex(nodeCurve.dh(alice.publicKey, bob)), shared);
  });
});

/**
 * The X25519 public keys of small order (RFC 7748 masks the top bit, so each also with it set): a DH with any of
 * them gives all zeros, a value the other side can predict. OpenSSL refuses that result, which fails the handshake.
 */
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].flatMap((h) => {
  const high = hex(h);
  high[31]! |= 0x80;
  return [hex(h), high];
});

/** A key pair whose public half is `publicKey`: what a peer that sends a low-order key claims to have. */
const claiming = (publicKey: Buffer): KeyPair => ({ publicKey, secretKey: randomBytes(32) });

/** An IK handshake between fresh keys, with `tamper` applied to the parties first; returns when both complete. */
function ikHandshake(tamper: { responderStatic?: Buffer; initiatorStatic?: Buffer; initiatorEphemeral?: Buffer; responderEphemeral?: Buffer } = {}): void {
  const responderKey = nodeCurve.generateKeyPair();
  const initiator = new NoiseState('IK', true, tamper.initiatorStatic ? claiming(tamper.initiatorStatic) : nodeCurve.generateKeyPair(), { curve: nodeCurve });
  const responder = new NoiseState('IK', false, responderKey, { curve: nodeCurve });
  if (tamper.initiatorEphemeral) initiator.e = claiming(tamper.initiatorEphemeral);
  initiator.initialise(Buffer.alloc(0), tamper.responderStatic ?? responderKey.publicKey);
  responder.initialise(Buffer.alloc(0));
  const first = initiator.send();
  responder.recv(first);
  if (tamper.responderEphemeral) responder.e = claiming(tamper.responderEphemeral);
  initiator.recv(responder.send());
  assert.ok(initiator.complete && responder.complete);
}

describe('low-order X25519 keys fail the handshake (nodeCurve)', () => {
  test('the same handshake with proper keys completes', () => {
    ikHandshake();
  });

  for (const role of ['responderStatic', 'initiatorStatic', 'initiatorEphemeral', 'responderEphemeral'] as const) {
    test(`a low-order key as the ${role.replace(/([A-Z])/g, ' $1').toLowerCase()} key throws, for each of the ${LOW_ORDER.length} encodings`, () => {
      for (const key of LOW_ORDER) {
        // OpenSSL's refusal of the all-zero result, not some later failure.
        assert.throws(() => ikHandshake({ [role]: key }), (err: unknown) => /^ERR_(OSSL|CRYPTO)_/.test(String((err as { code?: unknown }).code)), toHex(key));
        assert.throws(() => nodeCurve.dh(key, nodeCurve.generateKeyPair()), toHex(key));
      }
    });
  }
});
