/** A Noise key pair as noise-handshake holds it: raw 32-byte X25519 halves. */
export interface KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}
