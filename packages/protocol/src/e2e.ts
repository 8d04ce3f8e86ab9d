/**
 * End-to-end encryption of streams between two agents: the hub relays the bytes and cannot read them.
 *
 * Handshake: Noise NX (`Noise_NX_25519_AESGCM_SHA256`), with the responder's identity proved by an Ed25519
 * signature instead of Noise's static-key DH. It rides on the stream open, so it costs no extra round trip:
 *
 *   OPEN     (reaching agent → hub → exposing agent)  e2e offer  { v, e }                 → e
 *   OPEN_OK  (exposing agent → hub → reaching agent)  e2e answer { v, e, id, agent, sig } ← e, ee, s (signed)
 *
 * Why NX: the hub already authenticates the reaching agent (its token, its workspace, the share it came through),
 * so the one question end-to-end encryption must answer is the reaching agent's: "am I talking to the agent that
 * exposes this service, and nobody else can read it?". NX answers exactly that in one round trip. The exposing
 * agent's static key is transmitted (the reaching agent cannot know it beforehand: it pins it on first use, like
 * ssh's known_hosts). The `es` DH of textbook NX is replaced by a signature over the handshake hash because
 * agent identities are Ed25519 signing keys (the hub lists them, they sign nothing else) and Node cannot turn an
 * Ed25519 key into an X25519 one; the signature binds the identity to both ephemeral keys, so a hub that swaps
 * either ephemeral key breaks the signature, and a hub that swaps the identity key fails the pin.
 *
 * Forward secrecy: the stream keys come from the ephemeral-ephemeral DH only; both ephemeral private keys are
 * dropped once the keys are derived, so a stolen identity key later decrypts nothing recorded before.
 *
 * Records: each DATA payload of an encrypted stream is AES-256-GCM(plaintext) || 16-byte tag, with one key per
 * direction and the nonce a per-direction counter that both sides keep (never sent). A frame replayed, dropped,
 * reordered or altered by the hub fails authentication, and the stream is reset (E2E_DECRYPT_FAILED). The last
 * record before CLOSE is an empty one: a CLOSE without it means the hub cut the stream short (E2E_TRUNCATED).
 */

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  sign,
  verify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { ConnectError, ProtocolError } from './errors.js';

/** The protocol name, hashed into every handshake (a different name or version derives different keys). */
export const E2E_PROTOCOL = 'Noise_NX_25519_AESGCM_SHA256+Ed25519/private-connect/1';
export const E2E_VERSION = 1;
/** Bytes the AEAD adds to every record. */
export const E2E_TAG_BYTES = 16;
const CIPHER = 'aes-256-gcm';
const SIGN_CONTEXT = Buffer.from('private-connect e2e responder signature v1\0');
const KEY_INFO = Buffer.from('private-connect e2e stream keys v1');

/** The reaching agent's part of the handshake, carried in its OPEN payload. */
export interface E2EOffer {
  v: number;
  /** Ephemeral X25519 public key, base64. */
  e: string;
}

/** The exposing agent's part, carried in its OPEN_OK payload. */
export interface E2EAnswer {
  v: number;
  /** Ephemeral X25519 public key, base64. */
  e: string;
  /** The exposing agent's Ed25519 identity public key, base64. */
  id: string;
  /** Who signs: the exposing agent's id and label, and the service it serves this stream (covered by `sig`). */
  agentId: string;
  label: string;
  service: string;
  /** Ed25519 signature over the handshake hash, base64. */
  sig: string;
}

/** An agent's long-term identity: the private key never leaves the agent; the public key is registered with the hub. */
export interface Identity {
  privateKey: KeyObject;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

/** Makes a new identity; `privateKeyPem` is what the agent stores (mode 0600). */
export function generateIdentity(): Identity & { privateKeyPem: string } {
  const { privateKey, publicKey } = freshKeyPair('ed25519');
  return { privateKey, publicKey, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/** Loads an identity from the PEM written by generateIdentity. */
export function identityFromPem(pem: string): Identity {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new ConnectError('BAD_REQUEST', 'the identity key is not an Ed25519 key');
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

/** "SHA256:<base64>" of a raw public key, as ssh prints host keys: what a person compares. */
export function keyFingerprint(publicKey: Buffer | string): string {
  const raw = typeof publicKey === 'string' ? Buffer.from(publicKey, 'base64') : publicKey;
  return `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
}

/** Validates a base64 raw 32-byte public key (as sent in hello and handshakes); returns the bytes. */
export function decodePublicKey(value: unknown, field: string): Buffer {
  if (typeof value !== 'string' || value.length > 64) throw badHandshake(`${field} must be a base64 key`);
  const raw = Buffer.from(value, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== value) throw badHandshake(`${field} must be a base64 32-byte key`);
  return raw;
}

/** Parses the `e2e` field of an OPEN payload (either direction). */
export function parseOffer(value: unknown): E2EOffer {
  const v = object(value, 'OPEN.e2e');
  version(v.v);
  decodePublicKey(v.e, 'OPEN.e2e.e');
  return { v: E2E_VERSION, e: v.e as string };
}

/** Parses the e2e answer in an OPEN_OK payload; shape only (the signature is checked by finish()). */
export function parseAnswer(value: unknown): E2EAnswer {
  const v = object(value, 'OPEN_OK.e2e');
  version(v.v);
  decodePublicKey(v.e, 'OPEN_OK.e2e.e');
  decodePublicKey(v.id, 'OPEN_OK.e2e.id');
  const text = (field: string, max: number): string => {
    const s = v[field];
    if (typeof s !== 'string' || s.length === 0 || s.length > max) throw badHandshake(`OPEN_OK.e2e.${field} must be a string of at most ${max} characters`);
    return s;
  };
  const sig = text('sig', 128);
  if (Buffer.from(sig, 'base64').length !== 64) throw badHandshake('OPEN_OK.e2e.sig must be a base64 64-byte signature');
  return { v: E2E_VERSION, e: v.e as string, id: v.id as string, agentId: text('agentId', 64), label: text('label', 128), service: text('service', 255), sig };
}

/** The reaching side: makes the offer, then checks the answer and derives the stream keys. */
export class E2EInitiator {
  readonly offer: E2EOffer;
  private privateKey: KeyObject | undefined;

  constructor() {
    const pair = freshKeyPair('x25519');
    this.privateKey = pair.privateKey;
    this.offer = { v: E2E_VERSION, e: pair.publicKey.toString('base64') };
  }

  /**
   * Checks the exposing agent's answer: its signature over both ephemeral keys and its identity. Throws
   * E2E_HANDSHAKE_FAILED if anything does not verify. Whether the identity is the one expected (the pin) is the
   * caller's decision, made on the returned `peer` before any byte is sent.
   */
  finish(answer: E2EAnswer): { session: E2ESession; peer: { identityKey: string; agentId: string; label: string; service: string } } {
    const privateKey = this.privateKey;
    if (!privateKey) throw new ConnectError('E2E_HANDSHAKE_FAILED', 'this handshake was already finished');
    this.privateKey = undefined;
    const transcript = handshakeHash(this.offer, answer);
    const identity = publicKeyObject('Ed25519', decodePublicKey(answer.id, 'OPEN_OK.e2e.id'));
    if (!verify(null, Buffer.concat([SIGN_CONTEXT, transcript]), identity, Buffer.from(answer.sig, 'base64'))) {
      throw new ConnectError(
        'E2E_HANDSHAKE_FAILED',
        'the exposing agent\'s handshake signature does not verify: something between the agents (the hub?) altered the key exchange',
      );
    }
    const keys = deriveKeys(agree(privateKey, answer.e), transcript);
    return {
      session: new E2ESession(keys.initiatorToResponder, keys.responderToInitiator),
      peer: { identityKey: answer.id, agentId: answer.agentId, label: answer.label, service: answer.service },
    };
  }
}

/** The exposing side: answers an offer with its identity and derives the stream keys. */
export function respond(offer: E2EOffer, identity: Identity, self: { agentId: string; label: string; service: string }): { answer: E2EAnswer; session: E2ESession } {
  const pair = freshKeyPair('x25519');
  const unsigned = {
    v: E2E_VERSION,
    e: pair.publicKey.toString('base64'),
    id: identity.publicKey.toString('base64'),
    agentId: self.agentId,
    label: self.label.slice(0, 128),
    service: self.service,
  };
  const transcript = handshakeHash(offer, unsigned);
  const sig = sign(null, Buffer.concat([SIGN_CONTEXT, transcript]), identity.privateKey).toString('base64');
  const keys = deriveKeys(agree(pair.privateKey, offer.e), transcript);
  return { answer: { ...unsigned, sig }, session: new E2ESession(keys.responderToInitiator, keys.initiatorToResponder) };
}

/**
 * The record layer of one stream: seal() what this side sends, open() what it receives. Each direction counts its
 * records; the count is the nonce, so a record out of place (replayed, dropped, reordered) fails authentication.
 */
export class E2ESession {
  private sent = 0;
  private received = 0;
  private readonly sendNonce = Buffer.alloc(12);
  private readonly receiveNonce = Buffer.alloc(12);

  constructor(
    private readonly sendKey: Buffer,
    private readonly receiveKey: Buffer,
  ) {}

  /**
   * Encrypts the concatenation of `parts` as one record into `out` at `offset` (ciphertext then tag; `out` needs
   * their total length + E2E_TAG_BYTES bytes there). Writing into the caller's frame buffer saves a copy per record;
   * taking pieces lets the caller seal several socket reads as one record without joining them first.
   */
  sealInto(parts: readonly Buffer[], out: Buffer, offset: number): void {
    nonce(this.sendNonce, this.sent++);
    const cipher = createCipheriv(CIPHER, this.sendKey, this.sendNonce, { authTagLength: E2E_TAG_BYTES });
    let at = offset;
    for (const part of parts) if (part.length > 0) at += cipher.update(part).copy(out, at);
    at += cipher.final().copy(out, at);
    cipher.getAuthTag().copy(out, at);
  }

  /** Decrypts one record; throws E2E_DECRYPT_FAILED when it does not authenticate as the next record. */
  open(record: Buffer): Buffer {
    if (record.length < E2E_TAG_BYTES) throw new ConnectError('E2E_DECRYPT_FAILED', `an encrypted record needs at least ${E2E_TAG_BYTES} bytes`);
    nonce(this.receiveNonce, this.received);
    const body = record.subarray(0, record.length - E2E_TAG_BYTES);
    const decipher = createDecipheriv(CIPHER, this.receiveKey, this.receiveNonce, { authTagLength: E2E_TAG_BYTES });
    decipher.setAuthTag(record.subarray(record.length - E2E_TAG_BYTES));
    try {
      const head = decipher.update(body);
      const tail = decipher.final();
      this.received++;
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      throw new ConnectError(
        'E2E_DECRYPT_FAILED',
        `encrypted record ${this.received} of this stream does not authenticate: it was altered, replayed or reordered on the way`,
      );
    }
  }
}

/** SHA-256 over the protocol name and every handshake field, each length-prefixed (what the signature covers). */
function handshakeHash(offer: E2EOffer, answer: Omit<E2EAnswer, 'sig'>): Buffer {
  const hash = createHash('sha256');
  for (const part of [E2E_PROTOCOL, offer.e, answer.e, answer.id, answer.agentId, answer.label, answer.service]) {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(bytes.length, 0);
    hash.update(length).update(bytes);
  }
  return hash.digest();
}

/** X25519 with the peer's ephemeral key; a low-order key (all-zero result) is refused, by OpenSSL or by us. */
function agree(privateKey: KeyObject, peerKey: string): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: x25519Key(peerKey) });
  } catch {
    throw new ConnectError('E2E_HANDSHAKE_FAILED', 'the peer sent a low-order X25519 key');
  }
  if (shared.every((b) => b === 0)) throw new ConnectError('E2E_HANDSHAKE_FAILED', 'the peer sent a low-order X25519 key');
  return shared;
}

function deriveKeys(shared: Buffer, transcript: Buffer): { initiatorToResponder: Buffer; responderToInitiator: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', shared, transcript, KEY_INFO, 64));
  return { initiatorToResponder: okm.subarray(0, 32), responderToInitiator: okm.subarray(32, 64) };
}

function nonce(buf: Buffer, counter: number): void {
  if (!Number.isSafeInteger(counter)) throw new ConnectError('E2E_DECRYPT_FAILED', 'the stream used up its record counter');
  buf.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4);
  buf.writeUInt32BE(counter >>> 0, 8);
}

// Raw keys go in and out of node:crypto as JWK: the same 32 bytes as the DER forms, several times cheaper to
// convert (OpenSSL's DER encoder and decoder cost some 250 µs a key, which would dominate a stream's handshake).
//
// A fresh pair's public key is encoded by generateKeyPairSync itself, while its key-generation job is alive, and
// never by KeyObject.export({ format: 'jwk' }) afterwards: Node 20's JWK export holds the key's mutex while it
// allocates, and a garbage collection at that moment that frees the job of the same key takes that mutex again.
// The process then deadlocks for good (a `connect reach` in the benchmark stopped serving so; the backtrace is in
// docs/BENCHMARKS.md, and e2e-key-deadlock.test.ts hangs within a second with the export). Same cost per handshake.
function freshKeyPair(type: 'x25519' | 'ed25519'): { privateKey: KeyObject; publicKey: Buffer } {
  // @types/node has no overload for a JWK public key with a KeyObject private key; Node returns exactly that.
  const options = { publicKeyEncoding: { format: 'jwk' } } as unknown as Parameters<typeof generateKeyPairSync>[1];
  const pair = generateKeyPairSync(type as 'x25519', options) as unknown as { publicKey: JsonWebKey; privateKey: KeyObject };
  return { privateKey: pair.privateKey, publicKey: Buffer.from(pair.publicKey.x!, 'base64url') };
}

/** The raw public key of a key loaded from storage (no key-generation job shares its mutex). */
function rawPublicKey(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
}

function publicKeyObject(curve: 'X25519' | 'Ed25519', raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: curve, x: raw.toString('base64url') }, format: 'jwk' });
}

function x25519Key(base64: string): KeyObject {
  return publicKeyObject('X25519', Buffer.from(base64, 'base64'));
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badHandshake(`${field} must be an object`);
  return value as Record<string, unknown>;
}

function version(v: unknown): void {
  if (v !== E2E_VERSION) throw badHandshake(`end-to-end encryption version ${JSON.stringify(v)} is not supported (this agent speaks ${E2E_VERSION})`);
}

function badHandshake(message: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', message);
}
