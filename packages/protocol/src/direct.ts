/**
 * Direct paths between agents (docs/direct.md): the exposing agent listens on a TCP port of its own, the hub hands
 * the addresses it can be reached at ("candidates") and a ticket to each agent allowed to reach one of its services,
 * and the reaching agent carries new streams over a TCP connection to that port once it is proven, the hub's relay
 * otherwise.
 *
 * On the direct connection both ends speak the frames of frame.ts, concatenated (FrameDecoder splits them), and the
 * streams inside are end-to-end encrypted exactly as through the hub. Before anything else:
 *
 *   reaching agent                                                 exposing agent
 *   CONTROL direct_hello {v, ticket, ts, nonce, sig}      ──▶      checks the ticket (the hub's signature, this agent,
 *                                                                  this workspace, not expired, not revoked since),
 *                                                                  ts within DIRECT_HELLO_SKEW_MS, nonce never seen,
 *                                                                  sig by the ticket's identity key; anything else:
 *                                                                  the socket is destroyed, nothing is sent back
 *                                                  ◀──  CONTROL direct_welcome {v, sig}   (its identity key signs the
 *                                                                  hello's sig: the reaching agent knows whom it reached)
 *   OPEN s=1 {service, e2e}  ◀─▶  OPEN_OK / DATA / WINDOW / CLOSE / RESET   as on the agent's hub connection, for the
 *                                                                  ticket's service only; PING/PONG keep it alive
 *
 * A ticket is `base64url(JSON claims) "." base64url(Ed25519 signature)`, signed by the hub's ticket key (its public
 * half is in every welcome as `ticketKey`) over DIRECT_TICKET_CONTEXT and the claims' text.
 */

import { createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { ConnectError } from './errors.js';
import { MAX_DIRECT_TICKET } from './limits.js';
import type { SharePolicy } from './control.js';
import type { Identity } from './e2e.js';

/** How long a ticket is good for (the hub may cut it shorter, at a share's expiry). */
export const DIRECT_TICKET_TTL_MS = 5 * 60_000;
/** Clock difference tolerated between hub, exposing agent and reaching agent. */
export const DIRECT_CLOCK_SKEW_MS = 30_000;
/** A hello's timestamp may be this far from the exposing agent's clock; its nonce is remembered this long (twice). */
export const DIRECT_HELLO_SKEW_MS = 60_000;
/** The reaching agent pings an idle direct connection this often... */
export const DIRECT_PING_MS = 200;
/** ...and sends no new stream over it once nothing came back for this long (they go through the hub meanwhile). */
export const DIRECT_SUSPECT_MS = 600;
/** A direct OPEN not answered within this goes through the hub instead (its client sent nothing yet). */
export const DIRECT_OPEN_TIMEOUT_MS = 800;
/** Either end closes a direct connection that said nothing for this long. */
export const DIRECT_IDLE_MS = 15_000;
/** A direct_hello must arrive within this after the TCP connection. */
export const DIRECT_HELLO_TIMEOUT_MS = 5_000;
/** How long the reaching agent waits for one candidate (TCP connect and welcome). */
export const DIRECT_PROBE_TIMEOUT_MS = 1_500;
/** The largest direct_hello accepted (the first frame on a direct port). */
export const MAX_DIRECT_HELLO = MAX_DIRECT_TICKET + 512;
export const DIRECT_VERSION = 1;

const TICKET_CONTEXT = 'private-connect direct ticket v1\0';
const HELLO_CONTEXT = 'private-connect direct hello v1\0';
const WELCOME_CONTEXT = 'private-connect direct welcome v1\0';

/** What a ticket says: who may open streams to which service of which agent, until when. */
export interface DirectTicketClaims {
  v: 1;
  /** Workspace of the service (and of the exposing agent). */
  ws: string;
  /** The exposing agent's id: a ticket is good at that agent's direct port only. */
  to: string;
  /** The one service the ticket opens. */
  svc: string;
  /** The reaching agent: its id, workspace (another one through a share), label, identity key and static key. */
  from: string;
  fromWs: string;
  label: string;
  idk: string;
  sk: string;
  /** The reaching agent accepts plaintext streams (--no-e2e). */
  plain?: boolean;
  /** The share the reaching agent comes through, with its limits. */
  share?: SharePolicy;
  /** Issued and expiry times, ms since the epoch (the hub's clock). */
  iat: number;
  exp: number;
  /** Unique per ticket. */
  jti: string;
  /**
   * The exposing agent's hub connection whose direct port the candidates are (welcome.connectionId): several
   * processes of one agent (two `connect expose` in one config folder) each have a port of their own, and only the
   * one that serves the service takes its tickets.
   */
  conn?: string;
}

/** A candidate address of an exposing agent: `local` as the agent listed it, `hub` as the hub saw it connect. */
export interface DirectCandidate {
  host: string;
  port: number;
  source: 'local' | 'hub';
}

export interface DirectHello {
  t: 'direct_hello';
  v: number;
  ticket: string;
  /** The reaching agent's clock, ms since the epoch. */
  ts: number;
  /** 16 random bytes, base64. */
  nonce: string;
  /** The reaching agent's identity signature over the ticket, ts and nonce (base64). */
  sig: string;
}

export interface DirectWelcome {
  t: 'direct_welcome';
  v: number;
  /** The exposing agent's identity signature over the hello's signature (base64). */
  sig: string;
}

/** Signs `claims` with the hub's Ed25519 ticket key. */
export function signDirectTicket(claims: DirectTicketClaims, key: KeyObject): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = sign(null, Buffer.from(TICKET_CONTEXT + body), key);
  return `${body}.${sig.toString('base64url')}`;
}

const refused = (why: string) => new ConnectError('DIRECT_REFUSED', `direct connection refused: ${why}`);

/** The Ed25519 public key object of a raw key in base64 (or undefined when it is not one). */
export function ed25519Key(base64: string): KeyObject | undefined {
  try {
    const raw = Buffer.from(base64, 'base64');
    if (raw.length !== 32) return undefined;
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/**
 * The claims of `ticket` once the hub's signature holds (`hubKey`: its public ticket key) and it has not expired by
 * `now` (with DIRECT_CLOCK_SKEW_MS of slack). Throws DIRECT_REFUSED saying why; the exposing agent keeps the reason
 * for its own log and tells the other end nothing.
 */
export function verifyDirectTicket(ticket: unknown, hubKey: KeyObject, now: number): DirectTicketClaims {
  if (typeof ticket !== 'string' || ticket.length > MAX_DIRECT_TICKET) throw refused('no ticket');
  const dot = ticket.indexOf('.');
  if (dot <= 0) throw refused('malformed ticket');
  const body = ticket.slice(0, dot);
  const sig = Buffer.from(ticket.slice(dot + 1), 'base64url');
  if (sig.length !== 64 || !verify(null, Buffer.from(TICKET_CONTEXT + body), hubKey, sig)) throw refused('the ticket is not signed by this hub');
  let claims: DirectTicketClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as DirectTicketClaims;
  } catch {
    throw refused('malformed ticket');
  }
  if (typeof claims !== 'object' || claims === null || claims.v !== 1) throw refused('unknown ticket version');
  for (const field of ['ws', 'to', 'svc', 'from', 'fromWs', 'idk', 'sk', 'jti'] as const) {
    if (typeof claims[field] !== 'string' || claims[field].length === 0) throw refused(`the ticket has no ${field}`);
  }
  if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number') throw refused('the ticket has no expiry');
  if (now > claims.exp + DIRECT_CLOCK_SKEW_MS) throw refused(`the ticket expired at ${new Date(claims.exp).toISOString()}`);
  if (claims.iat > now + DIRECT_CLOCK_SKEW_MS) throw refused('the ticket was issued in the future');
  return claims;
}

/** The first frame's message of a direct connection: the ticket, and proof of holding its identity key. */
export function makeDirectHello(identity: Identity, ticket: string, now: number): DirectHello {
  const nonce = randomBytes(16).toString('base64');
  const sig = sign(null, helloText(ticket, now, nonce), identity.privateKey).toString('base64');
  return { t: 'direct_hello', v: DIRECT_VERSION, ticket, ts: now, nonce, sig };
}

/** Whether `hello`'s signature is by `claims.idk` (the ticket was verified first). */
export function verifyDirectHello(hello: DirectHello, claims: DirectTicketClaims): boolean {
  const key = ed25519Key(claims.idk);
  const sig = Buffer.from(hello.sig, 'base64');
  if (!key || sig.length !== 64) return false;
  return verify(null, helloText(hello.ticket, hello.ts, hello.nonce), key, sig);
}

function helloText(ticket: string, ts: number, nonce: string): Buffer {
  return Buffer.from(`${HELLO_CONTEXT}${ticket}\0${ts}\0${nonce}`);
}

/** The exposing agent's answer: its identity signs the hello's signature (so the answer is for this hello only). */
export function makeDirectWelcome(identity: Identity, hello: DirectHello): DirectWelcome {
  return { t: 'direct_welcome', v: DIRECT_VERSION, sig: sign(null, Buffer.from(WELCOME_CONTEXT + hello.sig), identity.privateKey).toString('base64') };
}

/** Whether `welcome` is signed by `identityKey` (base64, the exposing agent's) for `hello`. */
export function verifyDirectWelcome(welcome: unknown, hello: DirectHello, identityKey: string): boolean {
  if (typeof welcome !== 'object' || welcome === null) return false;
  const w = welcome as Partial<DirectWelcome>;
  if (w.t !== 'direct_welcome' || typeof w.sig !== 'string') return false;
  const key = ed25519Key(identityKey);
  const sig = Buffer.from(w.sig, 'base64');
  if (!key || sig.length !== 64) return false;
  return verify(null, Buffer.from(WELCOME_CONTEXT + hello.sig), key, sig);
}

/** Parses a direct_hello (the first frame on a direct port): undefined for anything else. */
export function parseDirectHello(value: unknown): DirectHello | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const h = value as Record<string, unknown>;
  if (h.t !== 'direct_hello' || h.v !== DIRECT_VERSION) return undefined;
  if (typeof h.ticket !== 'string' || h.ticket.length > MAX_DIRECT_TICKET) return undefined;
  if (typeof h.ts !== 'number' || !Number.isFinite(h.ts)) return undefined;
  if (typeof h.nonce !== 'string' || h.nonce.length > 64 || typeof h.sig !== 'string' || h.sig.length > 128) return undefined;
  return { t: 'direct_hello', v: DIRECT_VERSION, ticket: h.ticket, ts: h.ts, nonce: h.nonce, sig: h.sig };
}
