// noise-handshake asks for sodium-universal (libsodium, as a native addon or its JavaScript/WebAssembly port). It
// calls five of its functions, all of which OpenSSL has through node:crypto: BLAKE2b-512 (unkeyed, 64-byte output)
// and ChaCha20-Poly1305 with a 96-bit nonce (RFC 8439, libsodium's "ietf" variant). This package gives it those and
// nothing else, so an agent loads no second crypto library (the WebAssembly port costs every agent some 10 MiB).
// X25519 is not here: packages/sdk/src/e2e/noise-curve.ts hands noise-handshake a curve on node:crypto.
// The published Noise test vectors pass through it (packages/sdk/test/noise-vectors.test.ts).
'use strict';

const { createCipheriv, createDecipheriv, createHash } = require('node:crypto');

const ABYTES = 16;
const NPUBBYTES = 12;
const KEYBYTES = 32;
const HASH_BYTES = 64;

function sodium_memzero(buffer) {
  buffer.fill(0);
}

/** BLAKE2b of `input` into `out` (64 bytes: the only length noise-handshake asks for, and OpenSSL's blake2b512). */
function crypto_generichash(out, input, key) {
  crypto_generichash_batch(out, [input], key);
}

function crypto_generichash_batch(out, inputs, key) {
  if (key !== undefined && key !== null) throw new Error('keyed BLAKE2b is not available here');
  if (out.byteLength !== HASH_BYTES) throw new Error(`BLAKE2b output must be ${HASH_BYTES} bytes here`);
  const hash = createHash('blake2b512');
  for (const input of inputs) hash.update(input);
  out.set(hash.digest());
}

function crypto_aead_chacha20poly1305_ietf_encrypt(ciphertext, message, additionalData, nsec, nonce, key) {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: ABYTES });
  if (additionalData) cipher.setAAD(additionalData, { plaintextLength: message.byteLength });
  const body = Buffer.concat([cipher.update(message), cipher.final()]);
  ciphertext.set(body, 0);
  ciphertext.set(cipher.getAuthTag(), body.byteLength);
  return ciphertext.byteLength;
}

function crypto_aead_chacha20poly1305_ietf_decrypt(message, nsec, ciphertext, additionalData, nonce, key) {
  if (ciphertext.byteLength < ABYTES) throw new Error('could not verify data');
  const bodyLength = ciphertext.byteLength - ABYTES;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: ABYTES });
  decipher.setAuthTag(ciphertext.subarray(bodyLength));
  if (additionalData) decipher.setAAD(additionalData, { plaintextLength: bodyLength });
  let body;
  try {
    body = Buffer.concat([decipher.update(ciphertext.subarray(0, bodyLength)), decipher.final()]);
  } catch {
    throw new Error('could not verify data');
  }
  message.set(body, 0);
  return body.byteLength;
}

module.exports = {
  sodium_memzero,
  crypto_generichash,
  crypto_generichash_batch,
  crypto_generichash_BYTES: HASH_BYTES,
  crypto_aead_chacha20poly1305_ietf_encrypt,
  crypto_aead_chacha20poly1305_ietf_decrypt,
  crypto_aead_chacha20poly1305_ietf_ABYTES: ABYTES,
  crypto_aead_chacha20poly1305_ietf_NPUBBYTES: NPUBBYTES,
  crypto_aead_chacha20poly1305_ietf_KEYBYTES: KEYBYTES,
  // noise-handshake's own curve module reads these at load; the curve in use is the SDK's (noise-curve.ts).
  crypto_scalarmult_BYTES: 32,
  crypto_scalarmult_SCALARBYTES: 32,
  crypto_kx_SEEDBYTES: 32,
};
