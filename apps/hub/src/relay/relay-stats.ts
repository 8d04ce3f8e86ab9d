/** Counters the relay bumps on its hot path; plain numbers, read by the metrics collector on scrape. */

import { ConnectError } from '@private-connect/protocol';
import { ServiceTraffic } from './service-traffic.js';

/** Why a credential was refused, as /metrics counts it. */
export type AuthFailureReason = 'bad_token' | 'expired' | 'revoked' | 'rate_limited' | 'forbidden';
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = ['bad_token', 'expired', 'revoked', 'rate_limited', 'forbidden'];

export interface RelayStats {
  /** DATA payload bytes relayed, both directions. */
  bytesRelayed: number;
  /** Of those, bytes from the opening side towards the exposed service. */
  bytesToService: number;
  /** Of those, bytes from the exposed service back to the opening side. */
  bytesFromService: number;
  framesRelayed: number;
  streamsOpened: number;
  /** Of those, streams whose two agents agreed on end-to-end encryption (the answer carried a handshake). */
  streamsEncrypted: number;
  streamOpenFailures: number;
  /** Refused credentials, all reasons (API and agent endpoint). */
  authFailures: number;
  authFailuresByReason: Record<AuthFailureReason, number>;
  protocolErrors: number;
  /** Seconds from an OPEN reaching the hub to the exposing agent's OPEN_OK; the metrics registry replaces it. */
  openLatency: { observe(seconds: number): void };
  /** Open streams and bytes per service (the dashboard's `stats` events and GET /v1/services). */
  services: ServiceTraffic;
}

export function createRelayStats(): RelayStats {
  return {
    bytesRelayed: 0,
    bytesToService: 0,
    bytesFromService: 0,
    framesRelayed: 0,
    streamsOpened: 0,
    streamsEncrypted: 0,
    streamOpenFailures: 0,
    authFailures: 0,
    authFailuresByReason: { bad_token: 0, expired: 0, revoked: 0, rate_limited: 0, forbidden: 0 },
    protocolErrors: 0,
    openLatency: { observe: () => undefined },
    services: new ServiceTraffic(),
  };
}

/** Counts one refused credential, by the reason read from the error that refused it. */
export function countAuthFailure(stats: RelayStats, err: unknown): void {
  const reason = authFailureReason(err);
  stats.authFailures++;
  stats.authFailuresByReason[reason]++;
}

function authFailureReason(err: unknown): AuthFailureReason {
  if (!(err instanceof ConnectError)) return 'bad_token';
  // Revoked and replaced credentials answer exactly like bad ones (UNAUTHORIZED); the marker is for counting only.
  const marked = (err as { authFailure?: AuthFailureReason }).authFailure;
  if (marked) return marked;
  switch (err.code) {
    case 'TOKEN_EXPIRED':
    case 'SESSION_EXPIRED':
      return 'expired';
    case 'RATE_LIMITED':
      return 'rate_limited';
    case 'FORBIDDEN':
      return 'forbidden';
    default:
      return 'bad_token';
  }
}
