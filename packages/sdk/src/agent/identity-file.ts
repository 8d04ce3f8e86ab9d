/**
 * The agent's keys on disk, made on first use, mode 0600: `~/.connect/identity.pem` (Ed25519 identity, PKCS#8 PEM)
 * and `~/.connect/static_key.pem` (X25519 static key of end-to-end sessions, PKCS#8 PEM).
 */

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConnectError, generateIdentity, generateStaticKey, identityFromPem, staticKeyFromPem, type Identity, type StaticKeyPair } from '@private-connect/protocol';

/** Loads the identity in `file`, or makes one and writes it there (never overwriting a file that appeared meanwhile). */
export function loadOrCreateIdentity(file: string): Identity {
  return loadOrCreate(file, generateIdentity, identityFromPem, 'an Ed25519 identity key');
}

/** Loads the static key in `file`, or makes one and writes it there, as loadOrCreateIdentity. */
export function loadOrCreateStaticKey(file: string): StaticKeyPair {
  return loadOrCreate(file, generateStaticKey, staticKeyFromPem, 'an X25519 static key');
}

function loadOrCreate<K>(file: string, generate: () => K & { privateKeyPem: string }, fromPem: (pem: string) => K, what: string): K {
  let pem: string | undefined;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem === undefined) {
    const created = generate();
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, created.privateKeyPem, { mode: 0o600, flag: 'wx' });
      return created;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      pem = readFileSync(file, 'utf8');
    }
  }
  try {
    const key = fromPem(pem);
    chmodSync(file, 0o600);
    return key;
  } catch (err) {
    throw new ConnectError('BAD_REQUEST', `${file} does not hold ${what} (${err instanceof Error ? err.message : String(err)}); move it away and a new one is made`);
  }
}
