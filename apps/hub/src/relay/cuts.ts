/**
 * Revocation cuts: what ends at once on this hub when an agent, a share or a public link is revoked (by a route
 * here, or told by another hub). The decisions are made above (api/, sharing/); these end the live connections and
 * streams, and tell the agents to drop the end-to-end sessions that no later stream may reuse (end_sessions).
 */

import type { EndSessionsMessage } from '@private-connect/protocol';
import type { AgentConnection, SessionsEnd } from './agent-connection.js';
import type { LocalPeer } from './local-peer.js';
import type { ServiceRouter } from './router.js';
import { abortPair, type RelayPeer } from './streams.js';

/** Ends the live connections of a revoked agent: routes go first so that no new stream reaches its services meanwhile. */
export function cutRevokedAgent(relay: { connections: Iterable<AgentConnection>; router: ServiceRouter }, workspaceId: string, agentId: string): void {
  for (const conn of [...relay.connections]) {
    if (conn.workspaceId !== workspaceId || conn.agentId !== agentId) continue;
    for (const name of conn.exposed) relay.router.delete(conn.workspaceId, name, conn);
    conn.close('UNAUTHORIZED', 'this agent was revoked; enrol again with `connect up --api-key ...`');
  }
  endSessions(relay.connections, { workspaceId, agentId, reason: 'the agent was revoked' });
}

/**
 * Sends end_sessions to this hub's agents that hold such sessions (but `except`); returns how many were told. Sessions
 * made with an agent are also held by the exposing agents it was given direct tickets for (or reported direct streams
 * of), whatever their workspace (a share): they are told too, and cut its direct connections.
 */
export function endSessions(connections: Iterable<AgentConnection>, end: SessionsEnd, except?: AgentConnection): number {
  const message: EndSessionsMessage = {
    t: 'end_sessions',
    ...(end.agentId !== undefined ? { agentId: end.agentId } : {}),
    ...(end.shareId !== undefined ? { shareId: end.shareId } : {}),
    reason: end.reason,
  };
  let told = 0;
  for (const conn of connections) {
    if (conn === except || conn.state !== 'open') continue;
    const direct = end.agentId !== undefined && end.shareId === undefined && conn.directReachers.has(end.agentId);
    if (!direct) {
      if (conn.workspaceId !== end.workspaceId) continue;
      if (end.shareId !== undefined && !end.services?.some((name) => conn.exposed.has(name))) continue;
    }
    conn.sendControl(message);
    told++;
  }
  return told;
}

/** Ends every open stream through the share at once (both agents get RESET, or OPEN_ERROR while opening). */
export function cutShareStreams(peers: Iterable<RelayPeer>, shareId: string, code: 'SHARE_REVOKED' | 'SHARE_EXPIRED', message: string): number {
  let cut = 0;
  for (const peer of peers) {
    for (const end of [...peer.streams.values()]) {
      // Both ends carry the tag; the second is gone from its peer once the first was aborted.
      if (end.tag?.shareId !== shareId || peer.streams.get(end.id) !== end) continue;
      abortPair(end, code, message);
      cut++;
    }
  }
  return cut;
}

/** Ends the open requests of a revoked public link (streams the hub itself opened, tagged with the link). */
export function cutLinkStreams(local: LocalPeer, linkId: string): number {
  return local.abortWhere((tag) => tag.linkId === linkId, 'PUBLIC_LINK_GONE', 'the public link was revoked');
}
