/**
 * The hub's life as /readyz reports it (starting → ready → draining → closed), and the drain of a graceful
 * shutdown: no new agents or streams, GOAWAY to every agent, open streams get a grace period to finish.
 */

import { FrameType, encodeJsonFrame, type GoAwayMessage } from '@private-connect/protocol';
import type { Logger } from './logger.js';
import type { AgentConnection } from './relay/agent-connection.js';
import { openPairs, type RelayPeer } from './relay/streams.js';

export type HubState = 'starting' | 'ready' | 'draining' | 'closed';

/** Shared by the endpoint, the relay and /readyz; only startHub and drain change `state`. */
export interface Lifecycle {
  state: HubState;
}

export function createLifecycle(): Lifecycle {
  return { state: 'starting' };
}

/** False once a shutdown began: new agent connections and new streams are refused with SHUTTING_DOWN. */
export function isAccepting(lifecycle: Lifecycle): boolean {
  return lifecycle.state === 'starting' || lifecycle.state === 'ready';
}

/** Random wait, up to this, an agent leaves before reconnecting after GOAWAY (spreads a fleet's reconnects). */
export const GOAWAY_RECONNECT_MS = 500;
/** How often the drain looks for connections whose streams have all finished. */
const DRAIN_POLL_MS = 50;

export interface DrainOptions {
  graceMs: number;
  log: Logger;
  /** The holders of stream ends besides the agent connections (the hub's own opener, links to other hubs). */
  peers: () => Iterable<RelayPeer>;
}

/**
 * Tells every agent to go away, closes each connection once its streams have finished, and resolves when all
 * are closed or `graceMs` has passed (the caller then closes what is left). Resolves with the streams cut.
 */
export async function drainAgents(lifecycle: Lifecycle, connections: Set<AgentConnection>, options: DrainOptions): Promise<{ streamsLeft: number }> {
  lifecycle.state = 'draining';
  const goaway: GoAwayMessage = { code: 'SHUTTING_DOWN', message: 'the hub is shutting down; reconnect', reconnectMs: GOAWAY_RECONNECT_MS };
  const frame = encodeJsonFrame(FrameType.GOAWAY, 0, goaway);
  const streams = () => openPairs(connections) + openPairs(options.peers());
  options.log.info({ agents: connections.size, streams: streams(), graceMs: options.graceMs }, 'draining: agents were told to reconnect');
  for (const conn of connections) conn.send(frame);
  const deadline = Date.now() + options.graceMs;
  for (;;) {
    for (const conn of connections) {
      if (conn.streamCount === 0) conn.close('SHUTTING_DOWN', 'the hub is shutting down; reconnect', 1001);
    }
    if (connections.size === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, Math.max(1, deadline - Date.now()))));
  }
  const streamsLeft = streams();
  if (streamsLeft > 0) options.log.warn({ streams: streamsLeft }, 'grace period over: cutting the streams still open');
  return { streamsLeft };
}
