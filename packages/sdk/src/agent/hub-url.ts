/** Hub URLs and TLS: normalising, the agent endpoint, the rule that plain text is only for loopback hubs, extra CAs. */

import { rootCertificates } from 'node:tls';
import { ConnectError } from '@private-connect/protocol';

/** True for localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Parses a hub URL (http, https, ws or wss) or throws BAD_REQUEST naming what is wrong. */
export function parseHubUrl(hubUrl: string): URL {
  let url: URL;
  try {
    url = new URL(hubUrl);
  } catch {
    throw new ConnectError('BAD_REQUEST', `"${hubUrl}" is not a URL; expected e.g. https://hub.example.com`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new ConnectError('BAD_REQUEST', `hub URL must start with https:// (or http:// for a local hub), got ${url.protocol}`);
  }
  return url;
}

/** Refuses plain http/ws to a hub that is not on loopback, unless explicitly allowed. */
export function assertSecureHub(url: URL, allowInsecure: boolean): void {
  const plain = url.protocol === 'http:' || url.protocol === 'ws:';
  if (plain && !isLoopbackHost(url.hostname) && !allowInsecure) {
    throw new ConnectError(
      'INSECURE_HUB',
      `refusing plain ${url.protocol}// to ${url.hostname}: use https://, or set CONNECT_ALLOW_INSECURE=true for local development only`,
    );
  }
}

/** The WebSocket URL of the agent endpoint of a hub. */
export function agentEndpointUrl(hubUrl: string, allowInsecure: boolean): string {
  const url = parseHubUrl(hubUrl);
  assertSecureHub(url, allowInsecure);
  const protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  const base = url.pathname.replace(/\/+$/, '');
  return `${protocol}//${url.host}${base}/v1/agent`;
}

/** The HTTP(S) base URL of a hub's API, without a trailing slash. */
export function apiBaseUrl(hubUrl: string, allowInsecure: boolean): string {
  const url = parseHubUrl(hubUrl);
  assertSecureHub(url, allowInsecure);
  const protocol = url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:';
  return `${protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** CA certificates (PEM) trusted for hubs besides Node's bundled roots, for every client of this process. */
let extraHubCa: string[] = [];

/**
 * Trusts the CA certificate(s) in `pem` for every hub connection of this process (API calls and the agent
 * WebSocket), on top of Node's bundled roots: the CLI's `--ca <file>` / CONNECT_CA_FILE. NODE_EXTRA_CA_CERTS,
 * read by Node at start-up, works as well and needs nothing from us.
 */
export function trustHubCa(pem: string): void {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw new ConnectError('BAD_REQUEST', 'the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  extraHubCa = [...extraHubCa, pem];
}

/** The `ca` option for a TLS client of a hub: undefined (Node's default store) unless extra CAs were given. */
export function hubCa(explicit?: string | Buffer): string[] | undefined {
  const extra = explicit !== undefined ? [...extraHubCa, explicit.toString()] : extraHubCa;
  // `ca` replaces Node's roots: keep them, so a hub with a public certificate still works.
  return extra.length > 0 ? [...rootCertificates, ...extra] : undefined;
}

/** TLS verification failures, by Node's error code: what a person should do about each. */
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The error for a failed connection to a hub: certificate problems get their own code and the fix. */
export function hubConnectError(hubUrl: string, code: string | undefined, detail: string): ConnectError {
  if (code && CERTIFICATE_CODES.has(code)) {
    const what =
      code === 'CERT_HAS_EXPIRED' ? 'has expired'
      : code === 'CERT_NOT_YET_VALID' ? 'is not valid yet'
      : code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `does not name ${safeHost(hubUrl)}`
      : 'is not signed by a CA this machine trusts';
    const fix = code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID' ? 'renew it on the hub, or check this machine\'s clock' : code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'use the name the certificate was issued for' : 'pass --ca <file> (or set CONNECT_CA_FILE or NODE_EXTRA_CA_CERTS) with the CA that signed it';
    return new ConnectError('HUB_CERTIFICATE', `the TLS certificate of the hub at ${hubUrl} ${what} (${code}); ${fix}`);
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') {
    return new ConnectError('HUB_UNREACHABLE', `cannot reach the hub at ${hubUrl}: TLS handshake failed (${code}); is it serving https on this port?`);
  }
  return new ConnectError('HUB_UNREACHABLE', `cannot reach the hub at ${hubUrl}: ${code ?? detail}`);
}

function safeHost(hubUrl: string): string {
  try {
    return new URL(hubUrl).hostname;
  } catch {
    return hubUrl;
  }
}
