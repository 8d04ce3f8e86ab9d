/**
 * End-to-end encryption between two agents: the hub relays the bytes and cannot read them.
 *
 * Sessions: one per pair of agents (reaching agent, exposing agent), made by the Noise handshake
 * Noise_IK_25519_ChaChaPoly_BLAKE2b (packages/sdk/src/e2e/, through the noise-handshake library). Both agents prove
 * their X25519 static keys; each static key is bound to its agent's Ed25519 identity by a signature (signStaticKey),
 * so the pin of the identity key (known_agents.json) covers it. The handshake rides on a stream's open:
 *
 *   OPEN     (reaching agent → hub → exposing agent)  e2e { v: 2, hs: IK message 1 }   → e, es, s, ss
 *   OPEN_OK  (exposing agent → hub → reaching agent)  e2e { v: 2, hs: IK message 2 }   ← e, ee, se
 *
 * Streams inside a session carry no handshake: OPEN has e2e { v: 2, sid, n } (the session's id and the stream's
 * number in it, strictly increasing), OPEN_OK has e2e { v: 2 }. Each stream's keys are derived from the session's
 * keys with the session id, the stream number and the service in the derivation (deriveStreamSession), so no
 * asymmetric crypto runs per stream, and the opener sends its first records right behind OPEN without waiting.
 *
 * This module holds what needs only node:crypto (the hub checks static-key signatures, everyone parses messages):
 * identities, the static-key binding, the wire shapes, per-stream key derivation and the record layer.
 *
 * Records: each DATA payload of an encrypted stream is AES-256-GCM(plaintext) || 16-byte tag, with one key per
 * direction and the nonce a per-direction counter that both sides keep (never sent). A frame replayed, dropped,
 * reordered or altered by the hub fails authentication, and the stream is reset (E2E_DECRYPT_FAILED). The last
 * record before CLOSE is an empty one: a CLOSE without it means the hub cut the stream short (E2E_TRUNCATED).
 * After RECORDS_PER_KEY records a direction's key is replaced by one derived from it (a one-way ratchet), so a
 * long stream never uses one key for more than that, and a key taken from memory does not read earlier records.
 */

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  sign,
  verify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { ConnectError, ProtocolError } from './errors.js';

export const E2E_VERSION = 2;
/** The Noise protocol of a session's handshake. */
export const E2E_NOISE_PROTOCOL = 'Noise_IK_25519_ChaChaPoly_BLAKE2b';
/** Bytes the AEAD adds to every record. */
export const E2E_TAG_BYTES = 16;
/** Bytes of a session id. */
export const E2E_SESSION_ID_BYTES = 16;
/** Records sealed with one key before that direction moves to the next key of its ratchet (2^20: 16 GiB of full records). */
export const RECORDS_PER_KEY = 1 << 20;
/** The largest handshake message accepted (IK message 1 with a small payload is 96 bytes plus the payload). */
export const MAX_HANDSHAKE_BYTES = 1024;
const CIPHER = 'aes-256-gcm';
const STATIC_KEY_CONTEXT = Buffer.from('private-connect static key v2\0');
const STREAM_KEY_INFO = 'private-connect stream keys v2';
/** HKDF-Expand's counter byte for the first (and only) output block. */
const EXPAND_BLOCK_1 = Buffer.from([1]);
const RATCHET_INFO = Buffer.from('private-connect record key ratchet v2');

/**
 * The e2e field of an OPEN: a new session's handshake (`hs`, IK message 1, base64), or a stream of an existing
 * session (`sid`, base64, and `n`, the stream's number in it).
 */
export type E2EOffer = { v: 2; hs: string } | { v: 2; sid: string; n: number };

/** The e2e field of an OPEN_OK: IK message 2 (base64) for a new session, nothing more for a stream of one. */
export interface E2EAnswer {
  v: 2;
  hs?: string;
}

/** An agent's long-term identity: the private key never leaves the agent; the public key is registered with the hub. */
export interface Identity {
  privateKey: KeyObject;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

/** An agent's X25519 static key for sessions (kept beside the identity, mode 0600), with raw 32-byte halves. */
export interface StaticKeyPair {
  publicKey: Buffer;
  secretKey: Buffer;
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

/** Makes a new X25519 static key; `privateKeyPem` is what the agent stores (mode 0600). */
export function generateStaticKey(): StaticKeyPair & { privateKeyPem: string } {
  const pair = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } }) as unknown as {
    publicKey: JsonWebKey;
    privateKey: JsonWebKey;
  };
  const secretKey = Buffer.from(pair.privateKey.d!, 'base64url');
  const publicKey = Buffer.from(pair.publicKey.x!, 'base64url');
  const pem = createPrivateKey({ key: pair.privateKey, format: 'jwk' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  return { publicKey, secretKey, privateKeyPem: pem };
}

/** Loads a static key from the PEM written by generateStaticKey. */
export function staticKeyFromPem(pem: string): StaticKeyPair {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'x25519') throw new ConnectError('BAD_REQUEST', 'the static key is not an X25519 key');
  const jwk = key.export({ format: 'jwk' });
  return { publicKey: Buffer.from(jwk.x!, 'base64url'), secretKey: Buffer.from(jwk.d!, 'base64url') };
}

/** The identity's signature binding `staticKey` (raw X25519 public key) to it, base64: sent in hello, listed by the hub. */
export function signStaticKey(identity: Identity, staticKey: Buffer): string {
  return sign(null, Buffer.concat([STATIC_KEY_CONTEXT, staticKey]), identity.privateKey).toString('base64');
}

/**
 * Whether `sig` (base64) is `identityKey`'s signature binding `staticKey` (both base64 raw keys); false on any
 * malformed input, and for a small-order identity key (one that "signs" anything: see decodeIdentityKey).
 */
export function verifyStaticKey(identityKey: string, staticKey: string, sig: string): boolean {
  try {
    const identity = publicKeyObject('Ed25519', decodeIdentityKey(identityKey, 'identityKey'));
    const raw = decodePublicKey(staticKey, 'staticKey');
    const signature = Buffer.from(sig, 'base64');
    if (signature.length !== 64) return false;
    return verify(null, Buffer.concat([STATIC_KEY_CONTEXT, raw]), identity, signature);
  } catch {
    return false;
  }
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

/**
 * The y coordinates (sign bit cleared) of the small-order points of edwards25519 (orders 1, 2, 4 and 8). OpenSSL
 * verifies Ed25519 signatures under such a public key, and some signatures (an all-zero one, for the all-zero key)
 * verify for any message; so is any y at or above the field prime (non-canonical encodings of small values).
 */
const SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map((hex) => Buffer.from(hex, 'hex'));

/** Whether a raw Ed25519 public key is a small-order point or a non-canonical encoding: never a real agent's key. */
export function isWeakIdentityKey(raw: Buffer): boolean {
  const y = Buffer.from(raw);
  y[31]! &= 0x7f;
  if (SMALL_ORDER_Y.some((weak) => weak.equals(y))) return true;
  // y >= p = 2^255 - 19: ed ff .. ff 7f and above.
  return y[31] === 0x7f && y[0]! >= 0xed && y.subarray(1, 31).every((b) => b === 0xff);
}

/** Validates a base64 Ed25519 identity key: 32 bytes, and not a weak one (isWeakIdentityKey). */
export function decodeIdentityKey(value: unknown, field: string): Buffer {
  const raw = decodePublicKey(value, field);
  if (isWeakIdentityKey(raw)) throw badHandshake(`${field} is a small-order or non-canonical Ed25519 key, which signs anything`);
  return raw;
}

/** Validates a base64 Ed25519 signature (64 bytes), as hello's staticSig. */
export function decodeSignature(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length > 128) throw badHandshake(`${field} must be a base64 signature`);
  const raw = Buffer.from(value, 'base64');
  if (raw.length !== 64 || raw.toString('base64') !== value) throw badHandshake(`${field} must be a base64 64-byte signature`);
  return value;
}

/** Parses the `e2e` field of an OPEN payload (either direction). */
export function parseOffer(value: unknown): E2EOffer {
  const v = object(value, 'OPEN.e2e');
  version(v.v);
  if (v.hs !== undefined) {
    if (v.sid !== undefined || v.n !== undefined) throw badHandshake('OPEN.e2e has either hs or sid and n');
    return { v: E2E_VERSION, hs: handshakeMessage(v.hs, 'OPEN.e2e.hs') };
  }
  if (typeof v.sid !== 'string' || v.sid.length > 32 || Buffer.from(v.sid, 'base64').length !== E2E_SESSION_ID_BYTES || Buffer.from(v.sid, 'base64').toString('base64') !== v.sid) {
    throw badHandshake(`OPEN.e2e.sid must be a base64 ${E2E_SESSION_ID_BYTES}-byte session id`);
  }
  if (typeof v.n !== 'number' || !Number.isSafeInteger(v.n) || v.n < 1) throw badHandshake('OPEN.e2e.n must be a positive integer');
  return { v: E2E_VERSION, sid: v.sid, n: v.n };
}

/** Parses the e2e answer in an OPEN_OK payload (shape only: the handshake is checked by the session code). */
export function parseAnswer(value: unknown): E2EAnswer {
  const v = object(value, 'OPEN_OK.e2e');
  version(v.v);
  return v.hs === undefined ? { v: E2E_VERSION } : { v: E2E_VERSION, hs: handshakeMessage(v.hs, 'OPEN_OK.e2e.hs') };
}

/**
 * The record layer of one stream inside a session: its two directions' keys, derived from the session's keys
 * (`sendRoot`, `receiveRoot`: the Noise handshake's split) with the session id, the stream's number and the service
 * it reaches. A stream the hub moved to another service, another number or another session derives other keys, and
 * its first record fails.
 */
export function deriveStreamSession(
  sendRoot: Uint8Array,
  receiveRoot: Uint8Array,
  sid: Buffer,
  n: number,
  service: string,
  options: { usage?: E2EUsage; recordsPerKey?: number } = {},
): E2ESession {
  const info = streamInfo(n, service);
  // HKDF-Expand (RFC 5869) of one block: the roots are already uniform keys (the Noise handshake's HKDF made them),
  // so they are the PRK and need no extract step. One HMAC per direction: about 2 µs, against 12 for hkdfSync.
  const key = (root: Uint8Array) => createHmac('sha256', root).update(sid).update(info).update(EXPAND_BLOCK_1).digest();
  return new E2ESession(key(sendRoot), key(receiveRoot), options.recordsPerKey, options.usage);
}

/** Bytes sealed and opened under one session, summed over its streams (what its volume rekey counts). */
export interface E2EUsage {
  bytes: number;
}

function streamInfo(n: number, service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const info = Buffer.alloc(STREAM_KEY_INFO.length + 1 + 8 + 2 + name.length);
  let at = info.write(STREAM_KEY_INFO, 0, 'latin1');
  info[at++] = 0;
  info.writeUInt32BE(Math.floor(n / 0x1_0000_0000), at);
  info.writeUInt32BE(n >>> 0, at + 4);
  info.writeUInt16BE(name.length, at + 8);
  name.copy(info, at + 10);
  return info;
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
  /** The record count at which the receive key last moved on (a failed record must not move it twice). */
  private receiveRatchetAt = 0;

  constructor(
    private sendKey: Buffer,
    private receiveKey: Buffer,
    private readonly recordsPerKey = RECORDS_PER_KEY,
    private readonly usage?: E2EUsage,
  ) {}

  /**
   * Encrypts the concatenation of `parts` as one record into `out` at `offset` (ciphertext then tag; `out` needs
   * their total length + E2E_TAG_BYTES bytes there). Writing into the caller's frame buffer saves a copy per record;
   * taking pieces lets the caller seal several socket reads as one record without joining them first.
   */
  sealInto(parts: readonly Buffer[], out: Buffer, offset: number): void {
    if (this.sent > 0 && this.sent % this.recordsPerKey === 0) this.sendKey = ratchet(this.sendKey);
    nonce(this.sendNonce, this.sent++);
    const cipher = createCipheriv(CIPHER, this.sendKey, this.sendNonce, { authTagLength: E2E_TAG_BYTES });
    let at = offset;
    for (const part of parts) if (part.length > 0) at += cipher.update(part).copy(out, at);
    at += cipher.final().copy(out, at);
    cipher.getAuthTag().copy(out, at);
    if (this.usage) this.usage.bytes += at - offset;
  }

  /**
   * Encrypts the concatenation of `parts` as one record, returned as pieces (ciphertext parts, then the tag) for a
   * transport that writes pieces as they are: nothing is copied into a frame buffer.
   */
  seal(parts: readonly Buffer[]): Buffer[] {
    if (this.sent > 0 && this.sent % this.recordsPerKey === 0) this.sendKey = ratchet(this.sendKey);
    nonce(this.sendNonce, this.sent++);
    const cipher = createCipheriv(CIPHER, this.sendKey, this.sendNonce, { authTagLength: E2E_TAG_BYTES });
    const out: Buffer[] = [];
    let bytes = 0;
    for (const part of parts) {
      if (part.length === 0) continue;
      const sealed = cipher.update(part);
      bytes += sealed.length;
      out.push(sealed);
    }
    const last = cipher.final();
    if (last.length > 0) out.push(last);
    out.push(cipher.getAuthTag());
    if (this.usage) this.usage.bytes += bytes + last.length;
    return out;
  }

  /**
   * Decrypts one record given as the pieces it arrived in (`length` bytes in all), into plaintext pieces; throws
   * E2E_DECRYPT_FAILED as open() does. Nothing is joined but the tag, when it straddles two pieces.
   */
  openPieces(pieces: readonly Buffer[], length: number): Buffer[] {
    if (pieces.length === 1) {
      const plain = this.open(pieces[0]!);
      return plain.length > 0 ? [plain] : [];
    }
    if (length < E2E_TAG_BYTES) throw new ConnectError('E2E_DECRYPT_FAILED', `an encrypted record needs at least ${E2E_TAG_BYTES} bytes`);
    if (this.received > 0 && this.received % this.recordsPerKey === 0 && this.receiveRatchetAt !== this.received) {
      this.receiveKey = ratchet(this.receiveKey);
      this.receiveRatchetAt = this.received;
    }
    nonce(this.receiveNonce, this.received);
    const bodyLength = length - E2E_TAG_BYTES;
    const decipher = createDecipheriv(CIPHER, this.receiveKey, this.receiveNonce, { authTagLength: E2E_TAG_BYTES });
    const body: Buffer[] = [];
    const tag: Buffer[] = [];
    let at = 0;
    for (const piece of pieces) {
      const end = at + piece.length;
      if (end <= bodyLength) body.push(piece);
      else if (at >= bodyLength) tag.push(piece);
      else {
        body.push(piece.subarray(0, bodyLength - at));
        tag.push(piece.subarray(bodyLength - at));
      }
      at = end;
    }
    decipher.setAuthTag(tag.length === 1 ? tag[0]! : Buffer.concat(tag));
    try {
      const out: Buffer[] = [];
      for (const piece of body) {
        const plain = decipher.update(piece);
        if (plain.length > 0) out.push(plain);
      }
      const tail = decipher.final();
      if (tail.length > 0) out.push(tail);
      this.received++;
      if (this.usage) this.usage.bytes += bodyLength;
      return out;
    } catch {
      throw new ConnectError(
        'E2E_DECRYPT_FAILED',
        `encrypted record ${this.received} of this stream does not authenticate: it was altered, replayed or reordered on the way`,
      );
    }
  }

  /** Decrypts one record; throws E2E_DECRYPT_FAILED when it does not authenticate as the next record. */
  open(record: Buffer): Buffer {
    if (record.length < E2E_TAG_BYTES) throw new ConnectError('E2E_DECRYPT_FAILED', `an encrypted record needs at least ${E2E_TAG_BYTES} bytes`);
    if (this.received > 0 && this.received % this.recordsPerKey === 0 && this.receiveRatchetAt !== this.received) {
      this.receiveKey = ratchet(this.receiveKey);
      this.receiveRatchetAt = this.received;
    }
    nonce(this.receiveNonce, this.received);
    const body = record.subarray(0, record.length - E2E_TAG_BYTES);
    const decipher = createDecipheriv(CIPHER, this.receiveKey, this.receiveNonce, { authTagLength: E2E_TAG_BYTES });
    decipher.setAuthTag(record.subarray(record.length - E2E_TAG_BYTES));
    try {
      const head = decipher.update(body);
      const tail = decipher.final();
      this.received++;
      if (this.usage) this.usage.bytes += body.length;
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      throw new ConnectError(
        'E2E_DECRYPT_FAILED',
        `encrypted record ${this.received} of this stream does not authenticate: it was altered, replayed or reordered on the way`,
      );
    }
  }
}

/** The next key of a direction's ratchet: one-way, so the key in use does not give the ones before it. */
function ratchet(key: Buffer): Buffer {
  const next = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), RATCHET_INFO, 32));
  key.fill(0);
  return next;
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

function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badHandshake(`${field} must be an object`);
  return value as Record<string, unknown>;
}

function version(v: unknown): void {
  if (v !== E2E_VERSION) throw badHandshake(`end-to-end encryption version ${JSON.stringify(v)} is not supported (this agent speaks ${E2E_VERSION})`);
}

function handshakeMessage(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > Math.ceil(MAX_HANDSHAKE_BYTES / 3) * 4) {
    throw badHandshake(`${field} must be a base64 handshake message of at most ${MAX_HANDSHAKE_BYTES} bytes`);
  }
  const raw = Buffer.from(value, 'base64');
  if (raw.toString('base64') !== value) throw badHandshake(`${field} must be base64`);
  // The text-length check alone lets 1025 and 1026 bytes through: their base64 is as long as 1024 bytes'.
  if (raw.length > MAX_HANDSHAKE_BYTES) throw badHandshake(`${field} must be a handshake message of at most ${MAX_HANDSHAKE_BYTES} bytes`);
  return value;
}

function badHandshake(message: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', message);
}
