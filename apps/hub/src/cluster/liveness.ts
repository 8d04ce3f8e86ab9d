/**
 * Which other hubs are up. Each hub says it is alive on `<ns>.hb` every heartbeat, with the number of agent
 * connections it carries (rebalance.ts); any message from a hub counts as hearing from it. A hub silent for
 * deadAfterMs is dead. A hub that NATS says is no longer subscribed (check(), asked when an open to it is not
 * answered soon) is unreachable at once, long before its heartbeats are missed; it is dead when they are, or up
 * again if it is heard from.
 */

import type { Logger } from '../logger.js';
import type { ClusterBus } from './bus.js';

export const HEARTBEAT_MS = 1_000;
export const DEAD_AFTER_MS = 3_500;

/** What the rest of the cluster does when another hub comes or goes. */
export interface LivenessEvents {
  /** A hub not known before was heard from (new, or back after a partition or after it was unreachable). */
  joined(other: string): void;
  /** A hub that was up left NATS (it died): its routes and streams should move now. */
  unreachable(other: string): void;
  /** A hub was silent for deadAfterMs; `movedAlready` when it was unreachable before (unreachable() ran for it). */
  dead(other: string, movedAlready: boolean): void;
}

export interface Liveness {
  /** Hub `other` sent something: it is alive now. */
  heard(other: string): void;
  /** Heard from within deadAfterMs and not known to have left NATS. */
  isUp(other: string): boolean;
  /** The other hubs heard from within deadAfterMs, unreachable ones included. */
  known(): string[];
  /** The other hubs up. */
  peers(): string[];
  /** The agent connections each hub up carries, from its heartbeats; undefined while one of them has not said. */
  loadsUp(): Map<string, number> | undefined;
  /** Asks NATS whether `other` is still subscribed; when it is not, and was up, it becomes unreachable. */
  check(other: string): Promise<boolean>;
  /** Sends this hub's heartbeat now (the timer sends the next ones). */
  beat(): void;
  close(): void;
}

export interface LivenessOptions {
  heartbeatMs?: number;
  deadAfterMs?: number;
  /**
   * The agent connections this hub carries, told in each heartbeat; undefined while it does not take agents
   * (starting, draining): until every hub up has told its number, no hub asks agents to move (rebalance.ts).
   */
  carried(): number | undefined;
}

export function startLiveness(bus: ClusterBus, options: LivenessOptions, events: LivenessEvents, log: Logger): Liveness {
  const deadAfterMs = options.deadAfterMs ?? DEAD_AFTER_MS;
  /** Other hub id → when it was last heard from; deleted when it is declared dead. */
  const alive = new Map<string, number>();
  /** Other hub id → the agent connections it carries, from its heartbeat; deleted when it is declared dead. */
  const loads = new Map<string, number>();
  /** Hubs heard from lately that NATS says are no longer subscribed (they died): their routes moved. Deleted when
   *  they are heard again, or declared dead. */
  const unreachable = new Set<string>();
  const isUp = (other: string) => alive.has(other) && !unreachable.has(other);

  const heard = (other: string): void => {
    if (other === bus.hubId) return;
    const known = alive.has(other) && !unreachable.delete(other);
    alive.set(other, Date.now());
    if (!known) {
      log.info({ peer: other }, 'hub joined the cluster');
      events.joined(other);
    }
  };

  const declareDead = (other: string): void => {
    alive.delete(other);
    const movedAlready = unreachable.delete(other);
    loads.delete(other);
    events.dead(other, movedAlready);
  };

  bus.listen('hb', (value) => {
    const hb = value as { hub?: unknown; agents?: unknown } | undefined;
    if (typeof hb?.hub !== 'string') return;
    heard(hb.hub);
    if (Number.isSafeInteger(hb.agents) && (hb.agents as number) >= 0) loads.set(hb.hub, hb.agents as number);
  });
  const beat = (): void => {
    const agents = options.carried();
    bus.send('hb', agents === undefined ? { hub: bus.hubId } : { hub: bus.hubId, agents });
  };
  const timer = setInterval(() => {
    beat();
    const now = Date.now();
    for (const [other, at] of alive) if (now - at > deadAfterMs) declareDead(other);
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  timer.unref();

  return {
    heard,
    isUp,
    known: () => [...alive.keys()],
    peers: () => [...alive.keys()].filter(isUp),
    loadsUp() {
      const up = [...alive.keys()].filter(isUp);
      if (!up.every((other) => loads.has(other))) return undefined;
      return new Map(up.map((other) => [other, loads.get(other)!]));
    },
    async check(other) {
      const present = await bus.present(other);
      if (!present && isUp(other)) {
        unreachable.add(other);
        events.unreachable(other);
      }
      return present;
    },
    beat,
    close: () => clearInterval(timer),
  };
}
