/** The end-to-end handshake and record layer (e2e.ts): what must verify, and everything that must be refused. */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  E2EInitiator,
  E2E_TAG_BYTES,
  generateIdentity,
  identityFromPem,
  keyFingerprint,
  parseAnswer,
  parseOffer,
  respond,
  type E2EAnswer,
  type E2ESession,
} from '../src/e2e.js';
import { ConnectError, ProtocolError } from '../src/errors.js';

const exposer = generateIdentity();
const SELF = { agentId: '0b6c2d1e-2f5a-4c39-9d7e-0a1b2c3d4e5f', label: 'db-server', service: 'prod-db' };

function handshake(): { initiator: E2ESession; responder: E2ESession; answer: E2EAnswer; peer: ReturnType<E2EInitiator['finish']>['peer'] } {
  const init = new E2EInitiator();
  const { answer, session } = respond(parseOffer(init.offer), exposer, SELF);
  const { session: initiator, peer } = init.finish(parseAnswer(JSON.parse(JSON.stringify(answer))));
  return { initiator, responder: session, answer, peer };
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

describe('handshake (Noise NX, responder signed with Ed25519)', () => {
  test('both sides derive matching keys in each direction, and the initiator learns who answered', () => {
    const { initiator, responder, peer } = handshake();
    assert.deepEqual(peer, { identityKey: exposer.publicKey.toString('base64'), agentId: SELF.agentId, label: SELF.label, service: SELF.service });
    const request = Buffer.from('SELECT 1;');
    assert.deepEqual(responder.open(seal(initiator, request)), request);
    const reply = randomBytes(70_000);
    assert.deepEqual(initiator.open(seal(responder, reply)), reply);
  });

  test('a record sealed for one direction does not open in the other', () => {
    const { initiator } = handshake();
    assertCode(() => initiator.open(seal(initiator, Buffer.from('echo'))), 'E2E_DECRYPT_FAILED');
  });

  test('every handshake has fresh keys: a record of one stream does not open in another (forward secrecy per stream)', () => {
    const a = handshake();
    const b = handshake();
    assert.notEqual(a.answer.e, b.answer.e);
    assertCode(() => b.responder.open(seal(a.initiator, Buffer.from('same identities, other stream'))), 'E2E_DECRYPT_FAILED');
  });

  test('the record is not the plaintext: ciphertext differs and carries a tag', () => {
    const { initiator } = handshake();
    const plaintext = Buffer.alloc(4096, 'A');
    const record = seal(initiator, plaintext);
    assert.equal(record.length, plaintext.length + E2E_TAG_BYTES);
    assert.equal(record.includes(Buffer.from('AAAAAAAA')), false);
  });

  test('a swapped ephemeral key (answer or offer) breaks the signature', () => {
    const init = new E2EInitiator();
    const { answer } = respond(init.offer, exposer, SELF);
    const swapped = { ...answer, e: new E2EInitiator().offer.e };
    assertCode(() => init.finish(swapped), 'E2E_HANDSHAKE_FAILED', /signature does not verify/);

    // The hub replaced the initiator's offer with its own before it reached the exposing agent.
    const victim = new E2EInitiator();
    const { answer: toHub } = respond(new E2EInitiator().offer, exposer, SELF);
    assertCode(() => victim.finish(toHub), 'E2E_HANDSHAKE_FAILED');
  });

  test('a swapped identity key with the real signature fails; with its own signature it verifies and is the pin\'s to refuse', () => {
    const init = new E2EInitiator();
    const { answer } = respond(init.offer, exposer, SELF);
    const impostor = generateIdentity();
    assertCode(() => init.finish({ ...answer, id: impostor.publicKey.toString('base64') }), 'E2E_HANDSHAKE_FAILED');

    const init2 = new E2EInitiator();
    const forged = respond(init2.offer, impostor, SELF).answer;
    const { peer } = init2.finish(forged);
    assert.notEqual(peer.identityKey, exposer.publicKey.toString('base64'));
    assert.notEqual(keyFingerprint(peer.identityKey), keyFingerprint(exposer.publicKey));
  });

  test('the signed fields (agent, label, service) cannot be changed on the way', () => {
    for (const field of ['agentId', 'label', 'service'] as const) {
      const init = new E2EInitiator();
      const { answer } = respond(init.offer, exposer, SELF);
      assertCode(() => init.finish({ ...answer, [field]: `${answer[field]}x` }), 'E2E_HANDSHAKE_FAILED');
    }
  });

  test('an all-zero (low-order) ephemeral key is refused instead of giving a known key', () => {
    const zero = Buffer.alloc(32).toString('base64');
    assertCode(() => respond({ v: 1, e: zero }, exposer, SELF), 'E2E_HANDSHAKE_FAILED', /low-order/);
  });

  test('a handshake finishes once', () => {
    const init = new E2EInitiator();
    const { answer } = respond(init.offer, exposer, SELF);
    init.finish(answer);
    assertCode(() => init.finish(answer), 'E2E_HANDSHAKE_FAILED');
  });
});

describe('records: counters, replay and tampering', () => {
  test('a replayed record is refused', () => {
    const { initiator, responder } = handshake();
    const first = seal(initiator, Buffer.from('transfer $100'));
    responder.open(first);
    assertCode(() => responder.open(first), 'E2E_DECRYPT_FAILED', /altered, replayed or reordered/);
  });

  test('reordered and dropped records are refused', () => {
    const { initiator, responder } = handshake();
    const r0 = seal(initiator, Buffer.from('zero'));
    const r1 = seal(initiator, Buffer.from('one'));
    assertCode(() => responder.open(r1), 'E2E_DECRYPT_FAILED');
    // The failed record did not advance the counter: the right one still opens.
    assert.equal(responder.open(r0).toString(), 'zero');
  });

  test('a flipped bit anywhere (body or tag) is refused, and so is a record shorter than a tag', () => {
    for (const at of [0, 5, 12, 13 + E2E_TAG_BYTES - 1]) {
      const { initiator, responder } = handshake();
      const record = seal(initiator, Buffer.from('thirteen byte'));
      record[at]! ^= 0x01;
      assertCode(() => responder.open(record), 'E2E_DECRYPT_FAILED');
    }
    const { responder } = handshake();
    assertCode(() => responder.open(Buffer.alloc(E2E_TAG_BYTES - 1)), 'E2E_DECRYPT_FAILED', /at least 16 bytes/);
  });

  test('an empty record (the end marker) authenticates like any other', () => {
    const { initiator, responder } = handshake();
    const marker = seal(initiator, Buffer.alloc(0));
    assert.equal(marker.length, E2E_TAG_BYTES);
    assert.equal(responder.open(marker).length, 0);
  });

  test('sealInto seals several pieces as one record, at an offset, as the agent does into a frame buffer', () => {
    const { initiator, responder } = handshake();
    const pieces = [randomBytes(300), Buffer.alloc(0), randomBytes(1), randomBytes(299)];
    const frame = Buffer.alloc(10 + 600 + E2E_TAG_BYTES);
    initiator.sealInto(pieces, frame, 10);
    assert.deepEqual(responder.open(frame.subarray(10)), Buffer.concat(pieces));
  });
});

describe('parsing what arrives from the hub', () => {
  test('offers and answers of the wrong shape are BAD_MESSAGE, never a crash', () => {
    const { answer } = handshake();
    const badOffers: unknown[] = [null, [], 'x', {}, { v: 2, e: answer.e }, { v: 1, e: 'short' }, { v: 1, e: Buffer.alloc(33).toString('base64') }, { v: 1, e: 42 }];
    for (const offer of badOffers) assert.throws(() => parseOffer(offer), ProtocolError);
    const badAnswers: unknown[] = [
      { ...answer, v: 0 },
      { ...answer, id: 'AAAA' },
      { ...answer, sig: Buffer.alloc(63).toString('base64') },
      { ...answer, agentId: '' },
      { ...answer, label: 'x'.repeat(129) },
      { ...answer, service: 7 },
    ];
    for (const bad of badAnswers) assert.throws(() => parseAnswer(bad), ProtocolError);
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
