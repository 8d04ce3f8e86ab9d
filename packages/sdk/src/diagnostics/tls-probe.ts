/**
 * Starts a TLS handshake over an open connection to learn whether the target speaks TLS, and if so its version
 * and certificate. Trust is NOT verified: the point is to report what the target presents, not to refuse it.
 */

import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';

/** What the target presented during a completed handshake. */
export interface TlsInfo {
  /** e.g. TLSv1.3 */
  version: string;
  subject: string;
  issuer: string;
  validFrom: Date;
  validTo: Date;
  /** The certificate signs itself (or its chain ends in a root it carries itself). */
  selfSigned: boolean;
  /** Why a client that verifies would refuse it (OpenSSL's code, e.g. CERT_HAS_EXPIRED), when it would. */
  authorizationError?: string;
}

export type TlsProbeResult =
  | { kind: 'tls'; info: TlsInfo }
  /** The target answered in TLS but the handshake failed (no common version or cipher, an alert, ...). */
  | { kind: 'failed'; message: string }
  /** The target does not speak TLS on this port; `silent` when it did not answer at all (nor would it to HTTP). */
  | { kind: 'not-tls'; reason: string; silent?: boolean };

/** TLS record types a server may answer a ClientHello with: alert (0x15) or handshake (0x16), version major 3. */
function looksLikeServerTls(first: Buffer): boolean {
  if (first.length < 2 || first[1] !== 0x03) return false;
  if (first[0] === 0x15) return true;
  // A handshake record whose first message is not a ClientHello (type 1): an echo service sends ours back.
  return first[0] === 0x16 && (first.length < 6 || first[5] !== 0x01);
}

/** Probes `raw` (a fresh connection to the target); the connection is destroyed when this resolves. */
export function probeTls(raw: Duplex, options: { host: string; timeoutMs: number }): Promise<TlsProbeResult> {
  return new Promise((resolve) => {
    let first = Buffer.alloc(0);
    let done = false;
    const socket = tlsConnect({
      socket: raw,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(isIP(options.host) === 0 ? { servername: options.host } : {}),
    });
    const finish = (result: TlsProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      resolve(result);
    };
    // Reads of the TLS layer pass through here too: keep the first bytes to tell "not TLS" from "TLS that failed".
    raw.on('data', (chunk: Buffer) => {
      if (first.length < 6) first = Buffer.concat([first, chunk]).subarray(0, 6);
    });
    const failed = (what: string) => {
      if (looksLikeServerTls(first)) return finish({ kind: 'failed', message: what });
      if (first.length === 0) return finish({ kind: 'not-tls', reason: 'closed the connection at a TLS hello' });
      finish({ kind: 'not-tls', reason: 'answered a TLS hello with something that is not TLS' });
    };
    const timer = setTimeout(() => {
      if (first.length === 0) finish({ kind: 'not-tls', reason: `no answer to a TLS hello within ${options.timeoutMs / 1000} s`, silent: true });
      else failed(`the handshake did not finish within ${options.timeoutMs / 1000} s`);
    }, options.timeoutMs);
    socket.once('secureConnect', () => finish({ kind: 'tls', info: describe(socket) }));
    socket.once('error', (err: Error & { code?: string }) => failed(err.message.replace(/^.*routines:/, '') || err.code || 'handshake failed'));
    socket.once('end', () => failed('the target closed the connection during the handshake'));
    socket.once('close', () => failed('the target closed the connection during the handshake'));
  });
}

function describe(socket: TLSSocket): TlsInfo {
  const cert = socket.getPeerCertificate(true);
  const authorizationError = socket.authorizationError ? String((socket.authorizationError as Error & { code?: string }).code ?? socket.authorizationError) : undefined;
  const subject = formatName(cert.subject);
  const issuer = formatName(cert.issuer);
  const selfSigned =
    authorizationError === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    authorizationError === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    (cert.issuerCertificate === cert && subject === issuer);
  return {
    version: socket.getProtocol() ?? 'unknown',
    subject,
    issuer,
    validFrom: new Date(cert.valid_from),
    validTo: new Date(cert.valid_to),
    selfSigned,
    ...(authorizationError ? { authorizationError } : {}),
  };
}

/** `CN=example.com, O=Example` from a certificate name (its common name first). */
function formatName(name: PeerCertificate['subject'] | undefined): string {
  if (!name) return 'unknown';
  const entries = Object.entries(name as unknown as Record<string, string | string[]>);
  entries.sort(([a], [b]) => (a === 'CN' ? -1 : b === 'CN' ? 1 : 0));
  const text = entries.map(([key, value]) => `${key}=${[value].flat().join('+')}`).join(', ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text || 'unknown';
}
