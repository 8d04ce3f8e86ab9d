/**
 * The client address of a request: the socket's peer, or, when that peer is a trusted proxy (TRUST_PROXY), the
 * address it names in X-Forwarded-For. One trust function serves Fastify's `request.ip` and the agent endpoint.
 */

import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import type { TrustProxy } from './config.js';

/** Decides whether the hop at distance `i` (0 = the socket's peer), with address `addr`, is a trusted proxy. */
export type TrustFunction = (addr: string, i: number) => boolean;

/**
 * The trust function for TRUST_PROXY. A hop count trusts that many hops nearest the hub whatever their address
 * (Express semantics): only safe when nothing but the proxy can reach the hub; prefer the proxies' addresses.
 */
export function compileTrust(trust: TrustProxy): TrustFunction {
  if (trust === false) return () => false;
  if (trust === true) return () => true;
  if (typeof trust === 'number') return (_addr, i) => i < trust;
  return proxyAddr.compile(trust);
}

/** The client's address: the first untrusted hop, walking X-Forwarded-For from the socket's peer outwards. */
export function clientAddress(req: IncomingMessage, trust: TrustFunction): string | undefined {
  if (!req.socket.remoteAddress) return undefined;
  return proxyAddr(req, trust);
}
