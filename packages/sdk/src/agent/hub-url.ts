/** Hub URLs: normalising, the agent endpoint, and the rule that plain text is only for loopback hubs. */

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
