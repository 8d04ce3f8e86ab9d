/** Turns what a TLS probe found into a check line: version, certificate, expiry; expired or not yet valid fails. */

import type { HealthCheck } from '@private-connect/protocol';
import type { TlsInfo, TlsProbeResult } from './tls-probe.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A certificate this close to its expiry gets a hint to renew it. */
export const CERT_EXPIRY_WARNING_DAYS = 14;

/** The TLS check for a probe result; undefined when the target does not speak TLS (the check does not apply). */
export function tlsCheck(result: TlsProbeResult, now: Date, ms: number): HealthCheck | undefined {
  if (result.kind === 'not-tls') return undefined;
  if (result.kind === 'failed') {
    return {
      name: 'tls',
      ok: false,
      detail: `the target speaks TLS but the handshake failed: ${result.message}`,
      hint: 'check the certificate and the TLS versions and ciphers the target allows (TLS 1.2 or newer)',
      ms,
    };
  }
  return describeCertificate(result.info, now, ms);
}

function describeCertificate(info: TlsInfo, now: Date, ms: number): HealthCheck {
  const daysLeft = Math.floor((info.validTo.getTime() - now.getTime()) / DAY_MS);
  const expires = info.validTo.toISOString().slice(0, 10);
  const issuer = info.selfSigned && info.issuer === info.subject ? 'self-signed' : `issued by ${info.issuer}${info.selfSigned ? ' (self-signed root)' : ''}`;
  const parts = [info.version, info.subject, issuer];
  if (info.validTo.getTime() <= now.getTime()) {
    return {
      name: 'tls',
      ok: false,
      detail: [...parts, `EXPIRED on ${expires} (${-daysLeft} days ago)`].join(' · '),
      hint: 'renew the certificate on the target: clients that verify certificates refuse an expired one',
      ms,
    };
  }
  if (info.validFrom.getTime() > now.getTime()) {
    return {
      name: 'tls',
      ok: false,
      detail: [...parts, `not valid before ${info.validFrom.toISOString().slice(0, 10)}`].join(' · '),
      hint: "the certificate is not valid yet: check the target's certificate and this machine's clock",
      ms,
    };
  }
  const check: HealthCheck = { name: 'tls', ok: true, detail: [...parts, `expires ${expires} (${daysLeft} days left)`].join(' · '), ms };
  if (daysLeft < CERT_EXPIRY_WARNING_DAYS) check.hint = `renew the certificate soon: it expires in ${daysLeft} days`;
  else if (info.selfSigned) check.hint = 'clients that verify certificates refuse a self-signed one unless they trust it (NODE_EXTRA_CA_CERTS, curl --cacert)';
  return check;
}
