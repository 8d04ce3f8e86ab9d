/**
 * X25519 for noise-handshake through node:crypto (OpenSSL): the library's own curve goes through libsodium's
 * JavaScript port, several times slower. Same keys, same results: the Noise test vectors pass with either
 * (test/noise-vectors.test.ts). A low-order public key makes OpenSSL refuse the DH (an all-zero secret), which fails
 * the handshake, as Noise asks of it.
 */

import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { KeyPair } from './noise-types.js';

/** The PKCS#8 DER of an X25519 private key, up to its 32 raw bytes (RFC 8410). */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** KeyObjects of the secret keys in use: importing a key costs more than the DH itself. */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

export const nodeCurve = {
  DHLEN: 32,
  PKLEN: 32,
  SKLEN: 32,
  ALG: '25519',
  generateKeyPair(secretKey?: Uint8Array): KeyPair {
    if (secretKey) {
      const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, secretKey]), format: 'der', type: 'pkcs8' });
      const publicKey = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
      return { secretKey, publicKey };
    }
    // Both halves encoded by the generation itself (see e2e.ts freshKeyPair: exporting a fresh key later can deadlock).
    const pair = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } }) as unknown as {
      publicKey: JsonWebKey;
      privateKey: JsonWebKey;
    };
    return { secretKey: Buffer.from(pair.privateKey.d!, 'base64url'), publicKey: Buffer.from(pair.publicKey.x!, 'base64url') };
  },
  dh(publicKey: Uint8Array, local: KeyPair): Uint8Array {
    let privateKey = privateKeys.get(local.secretKey);
    if (!privateKey) {
      const jwk = { kty: 'OKP', crv: 'X25519', d: Buffer.from(local.secretKey).toString('base64url'), x: Buffer.from(local.publicKey).toString('base64url') };
      privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
      privateKeys.set(local.secretKey, privateKey);
    }
    const peer = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return diffieHellman({ privateKey, publicKey: peer });
  },
};
