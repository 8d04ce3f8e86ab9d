/**
 * The drain of a graceful shutdown: no new agents or streams, GOAWAY to every agent, open streams get a grace period
 * to finish. The hub's state (starting → ready → draining → closed) is lifecycle.ts's.
 */

import { FrameType, encodeJsonFrame, type GoAwayMessage } from '@private-connect/protocol';
import { GOAWAY_RECONNECT_MS, type Lifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { AgentConnection } from './agent-connection.js';
import { openPairs, type RelayPeer } from './streams.js';

/** How often the drain looks for connections whose streams have all finished. */
const DRAIN_POLL_MS = 50;

export interface DrainOptions {
  graceMs: number;
  log: Logger;
  /** The holders of stream ends besides the agent connections (the hub's own opener, links to other hubs). */
  peers: () => Iterable<RelayPeer>;
}

/** The GOAWAY frame of a hub that shuts down: the agent reconnects, to another hub or to this one restarted. */
export function goAwayFrame(): Buffer {
  const goaway: GoAwayMessage = { code: 'SHUTTING_DOWN', message: 'the hub is shutting down; reconnect', reconnectMs: GOAWAY_RECONNECT_MS };
  return encodeJsonFrame(FrameType.GOAWAY, 0, goaway);
}

/**
 * Tells every agent to go away, closes each connection once its streams have finished, and resolves when all
 * are closed or `graceMs` has passed (the caller then closes what is left). Resolves with the streams cut.
 */
export async function drainAgents(lifecycle: Lifecycle, connections: Set<AgentConnection>, options: DrainOptions): Promise<{ streamsLeft: number }> {
  lifecycle.state = 'draining';
  const frame = goAwayFrame();
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
