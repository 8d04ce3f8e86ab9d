/** The agent's identity key on disk: `~/.connect/identity.pem` (PKCS#8 PEM, mode 0600), made on first use. */

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConnectError, generateIdentity, identityFromPem, type Identity } from '@private-connect/protocol';

/** Loads the identity in `file`, or makes one and writes it there (never overwriting a file that appeared meanwhile). */
export function loadOrCreateIdentity(file: string): Identity {
  let pem: string | undefined;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem === undefined) {
    const created = generateIdentity();
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
    const identity = identityFromPem(pem);
    chmodSync(file, 0o600);
    return identity;
  } catch (err) {
    throw new ConnectError('BAD_REQUEST', `${file} does not hold an Ed25519 identity key (${err instanceof Error ? err.message : String(err)}); move it away and a new one is made`);
  }
}
