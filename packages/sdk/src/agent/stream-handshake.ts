/**
 * Both sides of a stream's end-to-end handshake (protocol e2e.ts), as an agent plays them: the opening agent offers
 * a key in OPEN and checks the answer in OPEN_OK (signed by the exposing agent for the service asked, and the agent
 * expected: verifyPeer); the exposing agent decides whether a stream it is offered is encrypted, or refuses it, and
 * answers the offer. Plaintext only when both agents accept it; there is no silent fallback. Frames and sockets are
 * HubConnection's: this module only builds and checks the payloads.
 */

import { ConnectError, E2EInitiator, parseOpenAccept, parseReachName, respond, type E2ESession, type Identity, type OpenNotice } from '@private-connect/protocol';

export interface E2EOptions {
  /** This agent's identity: its public key goes to the hub in hello, its private key signs handshake answers. */
  identity: Identity;
  /** Also accept plaintext streams (--no-e2e). A stream is plaintext only when both of its agents accept it. */
  allowPlaintext: boolean;
  /**
   * Decides whether the exposing agent of a stream this agent opened is the one expected (the pin of
   * known-agents.ts), after its signature verified and before any byte is sent; throws ConnectError to refuse.
   */
  verifyPeer(name: string, peer: { agentId: string; label: string; identityKey: string }): void;
}

/** A stream this agent opens: the OPEN payload, and the handshake it started (undefined when it offers none). */
export interface StreamOffer {
  payload: { service: string; e2e?: unknown; plain?: true };
  initiator: E2EInitiator | undefined;
}

/** Who this agent is on the hub, for the answers it signs. */
export interface AgentSelf {
  agentId: string;
  label: string;
}

export interface StreamHandshakes {
  /** This agent takes plaintext streams: it runs with --no-e2e, or has no identity to encrypt with. */
  readonly acceptsPlaintext: boolean;
  /** The public key told to the hub in hello (base64), when this agent has an identity. */
  readonly identityKey: string | undefined;
  /** Opening side: what OPEN carries for a stream to `service`. */
  offer(service: string): StreamOffer;
  /**
   * Opening side: checks OPEN_OK's payload for the stream to `service`; returns its session (undefined when the
   * stream is plaintext, which this agent accepts). Throws ConnectError when the stream must be refused.
   */
  finish(service: string, initiator: E2EInitiator | undefined, payload: Buffer): E2ESession | undefined;
  /** Exposing side: whether an offered stream is encrypted, or the refusal it gets (E2E_REQUIRED). */
  decide(notice: OpenNotice): { encrypt: boolean } | ConnectError;
  /**
   * Exposing side: answers the offer of an encrypted stream, signed as `self`: the session and OPEN_OK's payload.
   * Throws ConnectError (E2E_HANDSHAKE_FAILED) on a malformed offer: the stream is refused.
   */
  answer(notice: OpenNotice, self: AgentSelf): { session: E2ESession; payload: { e2e: unknown } };
}

export function streamHandshakes(e2e: E2EOptions | undefined): StreamHandshakes {
  const acceptsPlaintext = !e2e || e2e.allowPlaintext;
  return {
    acceptsPlaintext,
    identityKey: e2e?.identity.publicKey.toString('base64'),
    offer(service) {
      const initiator = e2e ? new E2EInitiator() : undefined;
      return { initiator, payload: { service, ...(initiator ? { e2e: initiator.offer } : {}), ...(acceptsPlaintext ? { plain: true } : {}) } };
    },
    finish(service, initiator, payload) {
      const accept = parseOpenAccept(payload);
      if (!accept.e2e) {
        if (!acceptsPlaintext) {
          throw new ConnectError('E2E_REQUIRED', `the stream to "${service}" came back unencrypted; refusing it (plaintext needs --no-e2e on both agents)`);
        }
        return undefined;
      }
      if (!initiator) throw new ConnectError('PROTOCOL_ERROR', `an encryption answer for "${service}", which offered none`);
      const { session, peer } = initiator.finish(accept.e2e);
      const wanted = parseReachName(service).service;
      if (peer.service !== wanted) {
        throw new ConnectError('E2E_HANDSHAKE_FAILED', `asked for "${wanted}" but the agent that answered signed for "${peer.service}"`);
      }
      e2e!.verifyPeer(service, peer);
      return session;
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
    answer(notice, self) {
      try {
        const { session, answer } = respond(notice.e2e!, e2e!.identity, { agentId: self.agentId, label: self.label, service: notice.service });
        return { session, payload: { e2e: answer } };
      } catch (err) {
        throw err instanceof ConnectError ? err : new ConnectError('E2E_HANDSHAKE_FAILED', String(err));
      }
    },
  };
}
