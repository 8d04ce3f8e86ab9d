/**
 * End-to-end encryption as an agent plays it on each stream (protocol e2e.ts, sessions in ../e2e/sessions.ts): the
 * opening agent's OPEN carries a session handshake or a stream of a session it holds, and it checks OPEN_OK's answer;
 * the exposing agent decides whether a stream it is offered is encrypted, or refuses it, and takes the offer.
 * Plaintext only when both agents accept it; there is no silent fallback. Frames and sockets are HubConnection's:
 * this module only builds and checks the payloads.
 */

import {
  ConnectError,
  parseOpenAccept,
  signStaticKey,
  type E2ESession,
  type EndSessionsMessage,
  type ErrorCode,
  type Identity,
  type OpenNotice,
  type StaticKeyPair,
} from '@private-connect/protocol';
import { ExposerSessions, OpenerSessions, type ExposerPlan, type OpenerPlan, type ServiceKeys, type SessionLimits } from '../e2e/sessions.js';

export interface E2EOptions {
  /** This agent's identity: its public key goes to the hub in hello and signs the static key. */
  identity: Identity;
  /** This agent's X25519 static key for sessions (kept beside the identity). */
  staticKey: StaticKeyPair;
  /** Also accept plaintext streams (--no-e2e). A stream is plaintext only when both of its agents accept it. */
  allowPlaintext: boolean;
  /**
   * Decides whether the agent the hub names for a service is the one expected (the pin of known-agents.ts), before
   * the first handshake with it; throws ConnectError to refuse.
   */
  verifyPeer(name: string, peer: { agentId: string; label: string; identityKey: string }): void;
  /** Session lifetimes (tests make them short). */
  limits?: Partial<SessionLimits>;
}

/** What OPEN carries for a stream this agent opens, and the session plan behind it (none: no encryption offered). */
export interface StreamOffer {
  payload: { service: string; e2e?: unknown; plain?: true };
  plan: OpenerPlan | undefined;
}

export interface StreamHandshakes {
  /** This agent takes plaintext streams: it runs with --no-e2e, or has no identity to encrypt with. */
  readonly acceptsPlaintext: boolean;
  /** What hello says of this agent's keys. */
  readonly hello: { identityKey?: string; staticKey?: string; staticSig?: string };
  /** Opening side: the OPEN payload for a stream to `service`. */
  offer(service: string): Promise<StreamOffer>;
  /**
   * Opening side: checks OPEN_OK's payload; returns the stream's record layer (undefined when the stream is
   * plaintext, which this agent accepts). Throws ConnectError when the stream must be refused.
   */
  finish(service: string, plan: OpenerPlan | undefined, payload: Buffer): E2ESession | undefined;
  /** Opening side: the open was refused with `code`; drops what that refusal shows is stale. */
  failed(service: string, plan: OpenerPlan | undefined, code: ErrorCode): void;
  /** Exposing side: whether an offered stream is encrypted, or the refusal it gets (E2E_REQUIRED). */
  decide(notice: OpenNotice): { encrypt: boolean } | ConnectError;
  /** Exposing side: takes the offer of an encrypted stream; throws ConnectError (the stream is refused). */
  take(notice: OpenNotice): ExposerPlan;
  /** The hub ended sessions (an agent revoked or re-keyed, a share revoked); returns how many ended here. */
  endSessions(message: EndSessionsMessage): number;
  /** Sessions held: as opener, as exposing agent. */
  readonly sessions: { opened: number; served: number };
}

/**
 * Answers to the question for a service's keys after which the stream is still asked for, without an offer: the hub
 * (or the exposing agent) then refuses it with its own reason, or a plaintext stream both agents take goes ahead.
 */
const ASKED_ANYWAY: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['E2E_REQUIRED', 'SERVICE_NOT_FOUND', 'SERVICE_OFFLINE', 'FORBIDDEN', 'NOT_FOUND', 'SHARE_REVOKED', 'SHARE_EXPIRED', 'INVALID_NAME']);

/** `lookup` asks the hub for the exposing agent of a service and its keys (undefined: it has none). */
export function streamHandshakes(e2e: E2EOptions | undefined, lookup: (service: string) => Promise<ServiceKeys | undefined>): StreamHandshakes {
  const acceptsPlaintext = !e2e || e2e.allowPlaintext;
  const opener = e2e
    ? new OpenerSessions(
        e2e.staticKey,
        async (service) => {
          const known = await lookup(service);
          if (!known) throw new ConnectError('E2E_REQUIRED', `the agent exposing "${service}" has no session key (it runs an older connect)`);
          return known;
        },
        (name, peer) => e2e.verifyPeer(name, peer),
        e2e.limits,
      )
    : undefined;
  const exposer = e2e ? new ExposerSessions(e2e.staticKey, e2e.limits) : undefined;
  const hello = e2e
    ? {
        identityKey: e2e.identity.publicKey.toString('base64'),
        staticKey: e2e.staticKey.publicKey.toString('base64'),
        staticSig: signStaticKey(e2e.identity, e2e.staticKey.publicKey),
      }
    : {};
  return {
    acceptsPlaintext,
    hello,
    async offer(service) {
      const base = { service, ...(acceptsPlaintext ? { plain: true as const } : {}) };
      if (!opener) return { payload: base, plan: undefined };
      let plan: OpenerPlan;
      try {
        // Both agents take plaintext (--no-e2e on both): the stream will be plaintext, so no handshake is started
        // (one that the answer would then discard, for every stream).
        if (acceptsPlaintext && (await opener.keysOf(service)).plaintext) return { payload: base, plan: undefined };
        plan = await opener.plan(service);
      } catch (err) {
        // A refused pin or key signature ends here. A service the hub could not describe (offline, unknown, not
        // shared, an agent without session keys) is asked for without an offer: the hub's refusal, or the exposing
        // agent's, is then the one reported, as for any open.
        // Losing the hub is the open's failure too, not a reason to ask without encryption.
        if (!(err instanceof ConnectError) || ASKED_ANYWAY.has(err.code) === false) throw err;
        return { payload: base, plan: undefined };
      }
      return { payload: { ...base, e2e: plan.offer }, plan };
    },
    finish(service, plan, payload) {
      const accept = parseOpenAccept(payload);
      if (!accept.e2e) {
        plan?.kind === 'handshake' && plan.fail();
        if (!acceptsPlaintext) {
          throw new ConnectError('E2E_REQUIRED', `the stream to "${service}" came back unencrypted; refusing it (plaintext needs --no-e2e on both agents)`);
        }
        return undefined;
      }
      if (!plan) throw new ConnectError('PROTOCOL_ERROR', `an encryption answer for "${service}", which offered none`);
      if (plan.kind === 'stream') {
        if (accept.e2e.hs !== undefined) throw new ConnectError('E2E_HANDSHAKE_FAILED', `a handshake answer for a stream of session ${plan.sid}`);
        return plan.session;
      }
      return plan.finish(accept.e2e.hs);
    },
    failed(service, plan, code) {
      if (plan?.kind === 'handshake') plan.fail();
      if (code === 'E2E_SESSION_UNKNOWN' && plan?.kind === 'stream') opener?.forgetSession(plan.sid);
      // A failed handshake: the keys may have moved on. E2E_REQUIRED: the exposing agent no longer takes plaintext.
      if (code === 'E2E_HANDSHAKE_FAILED' || code === 'E2E_REQUIRED') opener?.forgetService(service);
    },
    decide(notice) {
      // Plaintext only when the opener accepts it and so does this agent; the hub's own streams (public links and hub
      // ports) end at the hub by design, so there is nobody to encrypt to.
      const hubTerminated = notice.from.agentId === 'hub' && !notice.e2e;
      const plainAgreed = notice.plain === true && acceptsPlaintext;
      const encrypt = !hubTerminated && !plainAgreed;
      if (encrypt && !(notice.e2e && e2e)) {
        return new ConnectError(
          'E2E_REQUIRED',
          notice.e2e
            ? `the agent exposing "${notice.service}" cannot encrypt end to end`
            : `the agent exposing "${notice.service}" requires end-to-end encryption and the opening agent offered none (plaintext needs --no-e2e on both agents)`,
        );
      }
      return { encrypt };
    },
    take(notice) {
      return exposer!.take(notice);
    },
    endSessions(message) {
      let ended = exposer?.endWith(message) ?? 0;
      if (message.agentId !== undefined) ended += opener?.endWith(message.agentId) ?? 0;
      return ended;
    },
    get sessions() {
      return { opened: opener?.size ?? 0, served: exposer?.size ?? 0 };
    },
  };
}
