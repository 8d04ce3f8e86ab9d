/** Exponential backoff with full jitter, capped (the AWS "full jitter" scheme). */

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000 };

/** Delay before reconnect attempt `attempt` (0-based): random in [initial/2, min(max, initial * 2^attempt)]. */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(options.initialMs / 2, ceiling);
  return Math.round(floor + random() * (ceiling - floor));
}
