/** Exponential backoff with full jitter, capped (the AWS "full jitter" scheme), after a few quick retries. */

export interface BackoffOptions {
  /** The ceiling of the first retries; the floor of every delay is half of it. */
  initialMs: number;
  maxMs: number;
  /** How many retries have initialMs as their ceiling before it starts doubling (default 1: it doubles from the second). */
  flatAttempts?: number;
}

/**
 * The agents' reconnect policy. A hub that was killed and restarts is found within half a second of listening again:
 * 20 retries of 250-500 ms cover the first 5-10 s of an outage (a restart takes 2-3 s on PostgreSQL, and 6-11 s on the
 * embedded database of a busy 2-core machine: bench/src/recovery-bench.ts); after that the wait doubles up to 30 s,
 * so that a hub that stays away is not hammered. Each retry of a hub that is down costs it a refused connection;
 * the jitter spreads a fleet's reconnects.
 */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, flatAttempts: 20 };

/** Delay before reconnect attempt `attempt` (0-based): random in [initial/2, min(max, initial * 2^(attempt - flat + 1))]. */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const growth = Math.max(0, attempt - Math.max(0, (options.flatAttempts ?? 1) - 1));
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(growth, 30));
  const floor = Math.min(options.initialMs / 2, ceiling);
  return Math.round(floor + random() * (ceiling - floor));
}
