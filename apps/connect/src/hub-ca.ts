/** `--ca <file>` / CONNECT_CA_FILE: a CA certificate to trust for the hub (a hub with a private certificate). */

import { readFile } from 'node:fs/promises';
import { ConnectError } from '@private-connect/protocol';
import { trustHubCa } from '@private-connect/sdk';

/** Reads the CA file and trusts it for every hub connection of this process; no file, nothing to do. */
export async function loadHubCa(file: string | undefined): Promise<void> {
  if (!file) return;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConnectError('BAD_REQUEST', `cannot read the CA file ${file} (${(err as { code?: string }).code ?? (err as Error).message}); pass --ca <PEM file>`);
  }
  try {
    trustHubCa(pem);
  } catch {
    throw new ConnectError('BAD_REQUEST', `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); pass the CA certificate that signed the hub's`);
  }
}
