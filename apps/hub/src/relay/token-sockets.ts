/**
 * The cap on agent WebSockets per agent token (HUB_MAX_SOCKETS_PER_AGENT_TOKEN): counts every socket of a token
 * from its upgrade (before the hello) to its close, so that a leaked token cannot open thousands. A socket over the
 * cap is refused with TOO_MANY_CONNECTIONS, unless the token has sockets that stopped answering (an agent that
 * reconnects after its network dropped, before the hub noticed the old socket is dead): those are closed with
 * REPLACED to make room, as a newer connection of an agent takes over its services.
 */

import { ConnectError } from '@private-connect/protocol';
import type { AgentConnection } from './agent-connection.js';

export interface TokenSockets {
  /**
   * Room for one more socket of `tokenId`: true when under the cap, after closing (REPLACED) the token's silent
   * sockets if that is what it takes; false when the cap is reached by sockets that still answer.
   */
  makeRoom(tokenId: string): boolean;
  /** Counts `conn` against its token until it closes (`onClose` is the socket's close event). */
  add(tokenId: string, conn: AgentConnection, onClose: (listener: () => void) => void): void;
  /** The refusal of a socket over the cap. */
  refusal(): ConnectError;
}

export interface TokenSocketsOptions {
  max: number;
  /**
   * A handshaken socket with nothing received for longer than this is silent: a live agent answers the hub's
   * PING every ping interval and pings itself, so two intervals without a byte mean a dead peer.
   */
  silentAfterMs: number;
  now?: () => number;
}

/** The per-token socket count of one hub process (several hubs each enforce it for their own sockets). */
export function createTokenSockets(options: TokenSocketsOptions): TokenSockets {
  const now = options.now ?? Date.now;
  /** tokenId → its sockets; entries are deleted by the socket's close event and by makeRoom's eviction. */
  const byToken = new Map<string, Set<AgentConnection>>();

  const forget = (tokenId: string, conn: AgentConnection) => {
    const set = byToken.get(tokenId);
    if (!set?.delete(conn)) return;
    if (set.size === 0) byToken.delete(tokenId);
  };

  return {
    makeRoom(tokenId) {
      const set = byToken.get(tokenId);
      if (!set || set.size < options.max) return true;
      // Only sockets past their handshake: one still in it is bounded by the handshake timeout anyway.
      const silent = [...set]
        .filter((conn) => conn.state === 'open' && now() - conn.lastReceivedAt > options.silentAfterMs)
        .sort((a, b) => a.lastReceivedAt - b.lastReceivedAt);
      const excess = set.size - options.max + 1;
      if (silent.length < excess) return false;
      for (const conn of silent.slice(0, excess)) {
        const quietS = Math.round((now() - conn.lastReceivedAt) / 1000);
        conn.log.info({ quietS }, 'silent agent socket replaced by a new connection of its token');
        conn.close('REPLACED', `a newer connection of this agent token took the place of this one, which had not answered for ${quietS} s`);
        forget(tokenId, conn);
      }
      return true;
    },

    add(tokenId, conn, onClose) {
      let set = byToken.get(tokenId);
      if (!set) byToken.set(tokenId, (set = new Set()));
      set.add(conn);
      onClose(() => forget(tokenId, conn));
    },

    refusal() {
      return new ConnectError(
        'TOO_MANY_CONNECTIONS',
        `this agent token already has ${options.max} connections open to the hub, the most HUB_MAX_SOCKETS_PER_AGENT_TOKEN allows; close one (stop a connect process of this agent) or enrol another agent`,
      );
    },
  };
}
