/**
 * The hub's life as /readyz reports it (starting → ready → draining → closed). It imports nothing of the hub, so
 * every layer may read it; the drain of a graceful shutdown is relay/drain.ts.
 */

export type HubState = 'starting' | 'ready' | 'draining' | 'closed';

/** Shared by the endpoint, the relay and /readyz; only startHub and drainAgents change `state`. */
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
