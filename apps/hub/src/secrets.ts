/** Secrets: generation, hashing (SHA-256 at rest) and constant-time comparison. */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `pc_` + 32 base62 characters from a CSPRNG (rejection sampling, no modulo bias). */
export function generateApiKey(): string {
  let out = 'pc_';
  while (out.length < 35) {
    for (const byte of randomBytes(48)) {
      if (byte < 248 && out.length < 35) out += BASE62[byte % 62];
    }
  }
  return out;
}

/** A share code: `pcs_` + 32 base62 characters (190 bits), like an API key with its own prefix. */
export function generateShareCode(): string {
  return 'pcs_' + generateApiKey().slice(3);
}

export function isShareCode(secret: string): boolean {
  return /^pcs_[A-Za-z0-9]{32}$/.test(secret);
}

/** A 256-bit random secret as 64 hex characters (agent tokens, session ids). */
export function generateToken(): string {
  return randomBytes(32).toString('hex');
}

/** SHA-256 of a secret: what the database stores. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Constant-time equality of two hashes. */
export function hashesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function isApiKey(secret: string): boolean {
  return /^pc_[A-Za-z0-9]{32}$/.test(secret);
}

export function isAgentToken(secret: string): boolean {
  return /^[a-f0-9]{64}$/.test(secret);
}

/** The part of an API key that may be shown again after creation. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, 7);
}
