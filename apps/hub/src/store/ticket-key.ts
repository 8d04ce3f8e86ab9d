/**
 * The deployment's key for direct tickets (docs/direct.md): one Ed25519 key pair every hub of the database shares
 * (deployment.ticket_key, migration 014), so that a ticket any hub signs is good at any exposing agent, whichever
 * hub it is connected to. The first hub to start makes it; the others read it.
 */

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ConnectError } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import { withBootstrap } from './system.js';

export interface TicketKey {
  /** Signs tickets (signDirectTicket). Never leaves the hub. */
  privateKey: KeyObject;
  /** The public half as every welcome carries it (`ticketKey`): base64 of the raw 32 bytes. */
  publicKey: string;
}

/** The deployment's ticket key, made and stored by this call when the database has none yet. */
export async function loadTicketKey(db: Database): Promise<TicketKey> {
  const fresh = generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' });
  const der = await withBootstrap(db, async (tx) => {
    // Hubs starting at once: the first update wins, the others' find the column set and change nothing.
    await tx.query('update deployment set ticket_key = $1 where ticket_key is null', [fresh]);
    const [row] = await tx.query<{ ticket_key: Buffer | Uint8Array | null }>('select ticket_key from deployment');
    return row?.ticket_key;
  });
  if (!der) throw new ConnectError('INTERNAL', 'the database has no deployment row (migration 007 did not run)');
  const privateKey = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return { privateKey, publicKey: Buffer.from(jwk.x!, 'base64url').toString('base64') };
}
