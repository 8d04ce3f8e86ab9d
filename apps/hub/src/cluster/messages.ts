/**
 * The messages hubs send each other on `<ns>.presence`, and the check of their shape: a message of any other shape
 * is dropped. Routes and agents (presence.ts), revocations and hub ports (broadcasts.ts), traffic, and link resets
 * (remote-streams.ts) share the subject, so that they reach every hub in the order they were sent.
 */

import type { ServiceTrafficInfo } from '../relay/service-traffic.js';

export type PresenceMessage =
  | { t: 'claim'; hub: string; ws: string; name: string; agentId: string; label: string; plain: boolean; since: number }
  | { t: 'gone'; hub: string; ws: string; name: string }
  | { t: 'agents'; hub: string; ws: string; agentId: string; connections: number }
  | { t: 'revoke'; hub: string; ws: string; agentId: string }
  | { t: 'cut'; hub: string; ws: string; kind: 'share' | 'link'; id: string }
  /** End-to-end sessions end (SessionsEnd, relay/agent-connection.ts): an agent came back with another identity, a share was revoked. */
  | { t: 'endsessions'; hub: string; ws: string; agentId?: string; shareId?: string; services?: string[]; reason: string }
  | { t: 'hubport'; hub: string; ws: string; name: string; port: number; on: boolean }
  /** A direct ticket for exposing agent `agentId` of `ws` was handed to agent `from` (relay/direct.ts): its hub notes it. */
  | { t: 'directgrant'; hub: string; ws: string; agentId: string; from: string; shareId?: string }
  | { t: 'traffic'; hub: string; ws: string; services: ServiceTrafficInfo[] }
  /** `hub` lost frames from `peer` (or its own NATS connection): `peer` ends its streams with `hub` and starts a new link. */
  | { t: 'linkreset'; hub: string; ws: string; peer: string };

/** The presence message of type `T`. */
export type PresenceOf<T extends PresenceMessage['t']> = Extract<PresenceMessage, { t: T }>;

/** The most services one traffic message may carry. */
const MAX_TRAFFIC_SERVICES = 10_000;
/** The most service names an endsessions message may carry (a share's services). */
const MAX_SHARE_SERVICES = 10_000;

/** The shape of a presence message; anything else on the subject is dropped. */
export function isPresence(value: unknown): value is PresenceMessage {
  const m = value as Record<string, unknown> | null | undefined;
  if (!m || typeof m.hub !== 'string' || typeof m.ws !== 'string') return false;
  switch (m.t) {
    case 'claim':
      return typeof m.name === 'string' && typeof m.agentId === 'string' && typeof m.label === 'string' && typeof m.plain === 'boolean' && Number.isFinite(m.since);
    case 'gone':
      return typeof m.name === 'string';
    case 'agents':
      return typeof m.agentId === 'string' && Number.isInteger(m.connections);
    case 'revoke':
      return typeof m.agentId === 'string';
    case 'cut':
      return (m.kind === 'share' || m.kind === 'link') && typeof m.id === 'string';
    case 'endsessions':
      return (
        typeof m.reason === 'string' &&
        (m.agentId === undefined || typeof m.agentId === 'string') &&
        (m.shareId === undefined || typeof m.shareId === 'string') &&
        (m.services === undefined || (Array.isArray(m.services) && m.services.length <= MAX_SHARE_SERVICES && m.services.every((s) => typeof s === 'string')))
      );
    case 'directgrant':
      return typeof m.agentId === 'string' && typeof m.from === 'string' && (m.shareId === undefined || typeof m.shareId === 'string');
    case 'linkreset':
      return typeof m.peer === 'string';
    case 'traffic':
      return Array.isArray(m.services) && m.services.length <= MAX_TRAFFIC_SERVICES && m.services.every(isTrafficInfo);
    case 'hubport':
      return typeof m.name === 'string' && Number.isInteger(m.port) && (m.port as number) > 0 && (m.port as number) < 65536 && typeof m.on === 'boolean';
    default:
      return false;
  }
}

function isTrafficInfo(value: unknown): value is ServiceTrafficInfo {
  const s = value as Record<string, unknown> | null;
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  // The direct counters are absent in the reports of hubs older than direct paths.
  const direct = [s?.directStreams, s?.directBytesIn, s?.directBytesOut].every((n) => n === undefined || count(n));
  return !!s && typeof s.name === 'string' && [s.streams, s.encryptedStreams, s.bytesIn, s.bytesOut].every(count) && direct;
}
