/**
 * End-to-end sessions between agents (protocol e2e.ts): one per pair of agents, made with Noise IK
 * (Noise_IK_25519_ChaChaPoly_BLAKE2b, by the noise-handshake library) on a stream's open, and reused by every later
 * stream between them with keys derived per stream, so opening a stream costs no asymmetric crypto.
 *
 * The opening agent (initiator) knows the exposing agent's static key before it starts: the hub lists it (resolve),
 * signed by the agent's identity key, which the opener pins (known_agents.json). IK proves both static keys: the
 * exposing agent checks that the opener's is the one the hub registered for the agent it names in the OPEN notice.
 *
 * Like WireGuard, the opener starts a new session after REKEY_AFTER_MS or REKEY_AFTER_BYTES, and the exposing agent
 * refuses new streams of a session older than REJECT_AFTER_MS (E2E_SESSION_UNKNOWN: the opener makes a new one).
 * Every handshake has fresh ephemeral keys, which noise-handshake wipes when it completes; a session's keys are
 * wiped when it ends. Streams already open keep their own keys until they end.
 */

import NoiseState from 'noise-handshake';
import {
  ConnectError,
  E2E_SESSION_ID_BYTES,
  E2E_VERSION,
  deriveStreamSession,
  keyFingerprint,
  parseReachName,
  verifyStaticKey,
  type AgentKeys,
  type E2EOffer,
  type E2ESession,
  type E2EUsage,
  type OpenNotice,
  type StaticKeyPair,
} from '@private-connect/protocol';
import { nodeCurve } from './noise-curve.js';

/** Hashed into every handshake: another application, or another version of this one, cannot complete it. */
const PROLOGUE = Buffer.from('private-connect e2e v2');
/** A session's age after which the opener makes a new one for new streams (WireGuard's REKEY_AFTER_TIME). */
export const REKEY_AFTER_MS = 120_000;
/** A session's age after which the exposing agent takes no new stream in it (WireGuard's REJECT_AFTER_TIME). */
export const REJECT_AFTER_MS = 180_000;
/** Bytes sealed and opened in a session after which the opener makes a new one: far below AES-GCM's limits per key. */
export const REKEY_AFTER_BYTES = 2 ** 36;
/** Streams in a session after which the opener makes a new one. */
export const REKEY_AFTER_STREAMS = 2 ** 24;
/** How far below the newest stream number of a session an open may arrive and still be taken (once). */
export const REPLAY_WINDOW = 4096;

export interface SessionLimits {
  rekeyAfterMs: number;
  rejectAfterMs: number;
  rekeyAfterBytes: number;
  rekeyAfterStreams: number;
  /** Records per key of a stream's ratchet (protocol RECORDS_PER_KEY unless a test makes it small). */
  recordsPerKey?: number;
}

const DEFAULT_LIMITS: SessionLimits = {
  rekeyAfterMs: REKEY_AFTER_MS,
  rejectAfterMs: REJECT_AFTER_MS,
  rekeyAfterBytes: REKEY_AFTER_BYTES,
  rekeyAfterStreams: REKEY_AFTER_STREAMS,
};

/** The other agent of a session, as the hub listed it and the handshake proved it. */
export interface SessionPeer {
  agentId: string;
  label: string;
  /** Ed25519 identity key, base64. */
  identityKey: string;
  /** X25519 static key, base64 (proved by the handshake). */
  staticKey: string;
}

/** One session: its id, its two keys (the handshake's split) and what it has carried. */
class Session {
  readonly sidText: string;
  readonly createdAt = performance.now();
  readonly usage: E2EUsage = { bytes: 0 };
  /** Opener: the last stream number given out. Exposing agent: the highest number taken. */
  streams = 0;
  /** Exposing agent: numbers taken within REPLAY_WINDOW below the highest (each is taken once). */
  private readonly taken = new Set<number>();

  /**
   * Exposing agent: takes stream number `n` once. Opens may arrive a little out of order (an opener numbers them
   * as it makes them, and sends each once its own awaits are done), so, as WireGuard's counters, a number below the
   * highest is taken if it is within REPLAY_WINDOW and was not taken before; older ones are refused.
   */
  take(n: number): 'taken' | 'replayed' | 'too old' {
    if (n <= this.streams - REPLAY_WINDOW) return 'too old';
    if (this.taken.has(n)) return 'replayed';
    this.taken.add(n);
    if (n > this.streams) this.streams = n;
    if (this.taken.size > 2 * REPLAY_WINDOW) for (const old of this.taken) if (old <= this.streams - REPLAY_WINDOW) this.taken.delete(old);
    return 'taken';
  }

  constructor(
    readonly sid: Buffer,
    private readonly tx: Uint8Array,
    private readonly rx: Uint8Array,
    readonly peer: SessionPeer,
    private readonly limits: SessionLimits,
    /** Exposing side: the share the opener came through (a session is bound to it). */
    readonly shareId?: string,
  ) {
    this.sidText = sid.toString('base64');
  }

  get ageMs(): number {
    return performance.now() - this.createdAt;
  }

  /** The record layer of stream `n` of this session, to `service`. */
  stream(n: number, service: string): E2ESession {
    return deriveStreamSession(this.tx, this.rx, this.sid, n, service, {
      usage: this.usage,
      ...(this.limits.recordsPerKey ? { recordsPerKey: this.limits.recordsPerKey } : {}),
    });
  }

  /** Wipes the keys: streams already open keep theirs, no new stream can be made. */
  end(): void {
    this.tx.fill(0);
    this.rx.fill(0);
  }
}

/** What the opening agent needs to know of a service's exposing agent (the `resolve` answer). */
export interface ServiceKeys {
  agentId: string;
  label: string;
  keys: AgentKeys;
  /** The exposing agent also takes plaintext streams (--no-e2e): an opener that does too offers no encryption. */
  plaintext?: boolean;
}

/** An OPEN's e2e offer, and what follows from it on the opening side. */
export type OpenerPlan =
  | {
      /** A stream of an existing session: its keys are ready, so the opener may send before OPEN_OK. */
      kind: 'stream';
      offer: E2EOffer;
      session: E2ESession;
      sid: string;
    }
  | {
      /** A new session's handshake: the stream's keys come with OPEN_OK's answer. */
      kind: 'handshake';
      offer: E2EOffer;
      /** Checks OPEN_OK's answer, keeps the session, returns the stream's record layer; throws E2E_HANDSHAKE_FAILED. */
      finish(answer: string | undefined): E2ESession;
      /** The open failed: the session was not made (waiting opens start their own). */
      fail(): void;
    };

/**
 * The opening agent's sessions, one per exposing agent (and share alias: a session made through one share is not
 * used through another). `lookup` asks the hub for a service's exposing agent and keys; `verifyPeer` is the pin.
 */
export class OpenerSessions {
  private readonly sessions = new Map<string, Session>();
  /** Handshakes on their way, by session slot: opens that need the same session wait for it. */
  private readonly making = new Map<string, Promise<void>>();
  /** What the hub said of each service name, until a handshake fails or the agent's sessions end. */
  private readonly services = new Map<string, ServiceKeys>();
  /** Questions to the hub on their way, by service name. */
  private readonly asking = new Map<string, Promise<ServiceKeys>>();
  private readonly limits: SessionLimits;

  constructor(
    private readonly staticKey: StaticKeyPair,
    private readonly lookup: (service: string) => Promise<ServiceKeys>,
    private readonly verifyPeer: (name: string, peer: { agentId: string; label: string; identityKey: string }) => void,
    limits: Partial<SessionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** The e2e offer for a new stream to `service` (a reach name: service, or alias/service). */
  async plan(service: string): Promise<OpenerPlan> {
    const name = parseReachName(service);
    const known = await this.keysOf(service);
    const slot = `${known.agentId}\0${name.alias ?? ''}`;
    // An open waits for a handshake on its way once: if that one failed (the open was refused), the opens that waited
    // make theirs at the same time rather than one after another.
    for (let waited = false; ; waited = true) {
      const session = this.sessions.get(slot);
      if (session && this.usable(session, known)) {
        const n = ++session.streams;
        return { kind: 'stream', offer: { v: E2E_VERSION, sid: session.sidText, n }, session: session.stream(n, name.service), sid: session.sidText };
      }
      const making = this.making.get(slot);
      if (!making || waited) break;
      await making;
    }
    return this.handshake(slot, name.service, known);
  }

  /** The exposing agent does not hold session `sid` (E2E_SESSION_UNKNOWN): it is dropped here too. */
  forgetSession(sid: string): void {
    for (const [slot, session] of this.sessions) {
      if (session.sidText !== sid) continue;
      this.sessions.delete(slot);
      session.end();
    }
  }

  /** A handshake for `service` failed: what the hub said of it is asked again next time. */
  forgetService(service: string): void {
    this.services.delete(service);
  }

  /** Ends every session with agent `agentId` (end_sessions from the hub, or its key changed). */
  endWith(agentId: string): number {
    let ended = 0;
    for (const [slot, session] of this.sessions) {
      if (session.peer.agentId !== agentId) continue;
      this.sessions.delete(slot);
      session.end();
      ended++;
    }
    for (const [service, known] of this.services) if (known.agentId === agentId) this.services.delete(service);
    return ended;
  }

  /** Sessions held now (status, tests). */
  get size(): number {
    return this.sessions.size;
  }

  private usable(session: Session, known: ServiceKeys): boolean {
    const limits = this.limits;
    const fresh = session.ageMs < limits.rekeyAfterMs && session.usage.bytes < limits.rekeyAfterBytes && session.streams < limits.rekeyAfterStreams;
    return fresh && session.peer.staticKey === known.keys.staticKey;
  }

  /** What the hub says of `service`'s exposing agent (asked once, then kept), its keys checked against signature and pin. */
  async keysOf(service: string): Promise<ServiceKeys> {
    const cached = this.services.get(service);
    if (cached) return cached;
    // Opens made together (200 clients at once on a new reach port) share one question to the hub: the hub ends a
    // connection with more than 64 unanswered requests.
    let asking = this.asking.get(service);
    if (!asking) {
      asking = this.ask(service).finally(() => this.asking.delete(service));
      this.asking.set(service, asking);
    }
    return asking;
  }

  private async ask(service: string): Promise<ServiceKeys> {
    const known = await this.lookup(service);
    const { identityKey, staticKey, staticSig } = known.keys;
    if (!verifyStaticKey(identityKey, staticKey, staticSig)) {
      throw new ConnectError(
        'E2E_HANDSHAKE_FAILED',
        `the hub listed a session key for agent "${known.label}" that its identity ${keyFingerprint(identityKey)} did not sign: something between the agents (the hub?) altered it`,
      );
    }
    this.verifyPeer(service, { agentId: known.agentId, label: known.label, identityKey });
    this.services.set(service, known);
    return known;
  }

  private handshake(slot: string, service: string, known: ServiceKeys): OpenerPlan {
    const noise = new NoiseState('IK', true, this.staticKey, { curve: nodeCurve });
    noise.initialise(PROLOGUE, Buffer.from(known.keys.staticKey, 'base64'));
    const hs = Buffer.from(noise.send(helloPayload(service))).toString('base64');
    let settle!: () => void;
    const made = new Promise<void>((resolve) => (settle = resolve));
    this.making.set(slot, made);
    const done = () => {
      if (this.making.get(slot) === made) this.making.delete(slot);
      settle();
    };
    return {
      kind: 'handshake',
      offer: { v: E2E_VERSION, hs },
      finish: (answer) => {
        try {
          if (!answer) throw handshakeFailed(`the answer for "${service}" carries no handshake`);
          const payload = receive(noise, answer);
          if (readService(payload) !== service) throw handshakeFailed(`asked for "${service}" but the agent that answered serves "${readService(payload)}"`);
          const session = new Session(sessionId(noise), noise.tx!, noise.rx!, { agentId: known.agentId, label: known.label, identityKey: known.keys.identityKey, staticKey: known.keys.staticKey }, this.limits);
          this.sessions.get(slot)?.end();
          this.sessions.set(slot, session);
          return session.stream(0, service);
        } finally {
          done();
        }
      },
      fail: done,
    };
  }
}

/**
 * How the exposing agent takes an OPEN's offer. A stream of a session has its keys at once (the opener may have sent
 * records behind OPEN); a handshake is answered when the stream is accepted, which makes the session and the keys.
 */
export type ExposerPlan =
  | { kind: 'stream'; session: E2ESession; answer: { v: 2 } }
  | { kind: 'handshake'; accept(): { session: E2ESession; answer: { v: 2; hs: string } } };

/** The exposing agent's sessions, by session id. */
export class ExposerSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly limits: SessionLimits;

  constructor(
    private readonly staticKey: StaticKeyPair,
    limits: Partial<SessionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /**
   * Checks the offer of an OPEN: a handshake (its first message must decrypt with this agent's static key, and prove
   * the static key the hub registered for the opener), or a stream of a session this agent holds, with the opener
   * and share it was made with and an unused stream number. Throws ConnectError: the stream is refused.
   */
  take(notice: OpenNotice): ExposerPlan {
    const offer = notice.e2e!;
    const opener = notice.from;
    if (!opener.staticKey || !opener.identityKey) {
      throw new ConnectError('E2E_HANDSHAKE_FAILED', `the hub named no session key for agent "${opener.label}", which opens a stream to "${notice.service}"`);
    }
    if ('hs' in offer) return this.handshake(notice, offer.hs);
    this.sweep();
    const session = this.sessions.get(offer.sid);
    if (!session || session.ageMs >= this.limits.rejectAfterMs) {
      throw new ConnectError('E2E_SESSION_UNKNOWN', `no end-to-end session ${offer.sid} with agent "${opener.label}" here (it ended, or this agent restarted)`);
    }
    if (session.peer.agentId !== opener.agentId || session.peer.staticKey !== opener.staticKey || session.shareId !== notice.share?.id) {
      throw new ConnectError('E2E_HANDSHAKE_FAILED', `session ${offer.sid} was made with another agent or through another share than this stream's`);
    }
    const taken = session.take(offer.n);
    if (taken !== 'taken') {
      throw new ConnectError(
        'E2E_HANDSHAKE_FAILED',
        taken === 'replayed'
          ? `stream ${offer.n} of session ${offer.sid} was opened before: a replayed open`
          : `stream ${offer.n} of session ${offer.sid} is more than ${REPLAY_WINDOW} streams older than the newest: a replayed open`,
      );
    }
    return { kind: 'stream', session: session.stream(offer.n, notice.service), answer: { v: E2E_VERSION } };
  }

  /** Ends every session with agent `agentId`, or made through share `shareId` (end_sessions from the hub). */
  endWith(which: { agentId?: string; shareId?: string }): number {
    let ended = 0;
    for (const [sid, session] of this.sessions) {
      const match = (which.agentId !== undefined && session.peer.agentId === which.agentId) || (which.shareId !== undefined && session.shareId === which.shareId);
      if (!match) continue;
      this.sessions.delete(sid);
      session.end();
      ended++;
    }
    return ended;
  }

  get size(): number {
    return this.sessions.size;
  }

  private handshake(notice: OpenNotice, hs: string): ExposerPlan {
    const noise = new NoiseState('IK', false, this.staticKey, { curve: nodeCurve });
    noise.initialise(PROLOGUE);
    const payload = receive(noise, hs);
    const opener = notice.from;
    const proved = Buffer.from(noise.rs!).toString('base64');
    if (proved !== opener.staticKey) {
      throw handshakeFailed(`the opening agent proved session key ${keyFingerprint(proved)}, not the one the hub registered for agent "${opener.label}"`);
    }
    if (readService(payload) !== notice.service) {
      throw handshakeFailed(`the opening agent asked for "${readService(payload)}" but the hub opened "${notice.service}"`);
    }
    return {
      kind: 'handshake',
      accept: () => {
        const reply = Buffer.from(noise.send(helloPayload(notice.service))).toString('base64');
        const made = new Session(
          sessionId(noise),
          noise.tx!,
          noise.rx!,
          { agentId: opener.agentId, label: opener.label, identityKey: opener.identityKey!, staticKey: proved },
          this.limits,
          notice.share?.id,
        );
        this.sweep();
        this.sessions.set(made.sidText, made);
        return { session: made.stream(0, notice.service), answer: { v: E2E_VERSION, hs: reply } };
      },
    };
  }

  /** Drops sessions too old to take new streams. */
  private sweep(): void {
    for (const [sid, session] of this.sessions) {
      if (session.ageMs < this.limits.rejectAfterMs) continue;
      this.sessions.delete(sid);
      session.end();
    }
  }
}

/** The session id: the first bytes of the handshake hash, the same on both sides, different for every handshake. */
function sessionId(noise: NoiseState): Buffer {
  return Buffer.from(noise.hash!.subarray(0, E2E_SESSION_ID_BYTES));
}

/** The handshake payload: the service the stream is for (encrypted and authenticated by the handshake). */
function helloPayload(service: string): Buffer {
  return Buffer.from(JSON.stringify({ service }));
}

function readService(payload: Uint8Array): string {
  try {
    const value = JSON.parse(Buffer.from(payload).toString('utf8')) as { service?: unknown };
    if (typeof value.service === 'string') return value.service;
  } catch {
    // refused below
  }
  throw handshakeFailed('the handshake payload names no service');
}

function receive(noise: NoiseState, message: string): Uint8Array {
  try {
    return noise.recv(Buffer.from(message, 'base64'));
  } catch (err) {
    throw handshakeFailed(`the handshake message does not verify (${err instanceof Error ? err.message : String(err)}): it was altered on the way, or made for another key`);
  }
}

function handshakeFailed(message: string): ConnectError {
  return new ConnectError('E2E_HANDSHAKE_FAILED', message);
}
