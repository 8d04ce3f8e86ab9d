/**
 * Spreading agents over the hubs of a cluster. Agents start on a hub of their own random order (the SDK shuffles
 * its list), and those of a hub that dies move to the others; when it comes back, nothing would bring them back,
 * and one hub would end up carrying everyone. So each hub says in its heartbeat how many agent connections it
 * carries, and every REBALANCE_MS a hub that carries more than its share (the cluster's total over the hubs up,
 * rounded up, plus REBALANCE_SLACK) asks the surplus to move: GOAWAY HUB_REBALANCING, as an HTTP/2 or gRPC server
 * sends GOAWAY at a connection's maximum age so that its clients spread again. The agent reconnects to the next hub
 * of its order, never to the one that asked.
 *
 * Only agents that can move (hello.hubs above 1) and that have no stream open or opening are asked, so no stream
 * is cut and none has to drain; at most REBALANCE_MAX_MOVES per round, so that a large fleet moves gradually.
 */

import { FrameType, encodeJsonFrame, type GoAwayMessage } from '@private-connect/protocol';
import type { AgentConnection } from '../relay/agent-connection.js';

/** How often a hub compares its agents with its share. */
export const REBALANCE_MS = 10_000;
/** Agents a hub may carry above its share before it asks some to move (so that an odd total does not churn). */
export const REBALANCE_SLACK = 1;
/** The most agents one hub asks to move per round. */
export const REBALANCE_MAX_MOVES = 100;
/** The longest random wait of a moved agent before it reconnects. */
export const REBALANCE_RECONNECT_MS = 200;

/** How many of `mine` agents should move, when the other hubs up carry `others`. */
export function surplusAgents(mine: number, others: readonly number[]): number {
  const total = others.reduce((sum, n) => sum + n, mine);
  const share = Math.ceil(total / (others.length + 1));
  return mine > share + REBALANCE_SLACK ? Math.min(mine - share, REBALANCE_MAX_MOVES) : 0;
}

/** The agent connections a hub carries, less those already asked to move. */
export interface Rebalancer {
  /** Open agent connections not asked to move. */
  carried(): number;
  /** Asks up to `count` idle, movable agents to move; returns how many were asked. */
  move(count: number): number;
}

export function createRebalancer(connections: Set<AgentConnection>): Rebalancer {
  /** Connections told to move; an entry goes with its connection. */
  const asked = new WeakSet<AgentConnection>();
  const goaway: GoAwayMessage = {
    code: 'HUB_REBALANCING',
    message: "this hub carries more than its share of the cluster's agents; moving to another hub",
    reconnectMs: REBALANCE_RECONNECT_MS,
  };
  const frame = encodeJsonFrame(FrameType.GOAWAY, 0, goaway);
  return {
    carried() {
      let n = 0;
      for (const conn of connections) if (conn.state === 'open' && !asked.has(conn)) n++;
      return n;
    },
    move(count) {
      let moved = 0;
      for (const conn of connections) {
        if (moved >= count) break;
        if (conn.state !== 'open' || asked.has(conn) || conn.streamCount > 0 || (conn.hello?.hubs ?? 1) < 2) continue;
        asked.add(conn);
        conn.send(frame);
        moved++;
      }
      return moved;
    },
  };
}
