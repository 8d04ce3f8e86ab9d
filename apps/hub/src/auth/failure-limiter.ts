/** Failed attempts per key (a client address) in fixed windows: refused credentials and refused agent upgrades. */

import type { RateLimit } from '../config.js';

/**
 * Counts failures per key in fixed windows (refused agent WebSocket upgrades per IP). Entries are deleted when
 * their window has passed: on the next look-up of the key, or by the sweep once the map grows large.
 */
export interface FailureLimiter {
  /** Seconds until `key` may try again; 0 when it may now. */
  retryAfter(key: string): number;
  /** Records one failure of `key`. */
  fail(key: string): void;
}

/** A limiter allowing `limit.max` failures per key in each window of `limit.windowMs`. */
export function createFailureLimiter(limit: RateLimit, now: () => number = Date.now): FailureLimiter {
  const windows = new Map<string, { count: number; start: number }>();
  const current = (key: string) => {
    const entry = windows.get(key);
    if (entry && now() - entry.start >= limit.windowMs) {
      windows.delete(key);
      return undefined;
    }
    return entry;
  };
  return {
    retryAfter(key) {
      const entry = current(key);
      if (!entry || entry.count < limit.max) return 0;
      return Math.max(1, Math.ceil((entry.start + limit.windowMs - now()) / 1000));
    },
    fail(key) {
      const entry = current(key);
      if (entry) entry.count++;
      else windows.set(key, { count: 1, start: now() });
      if (windows.size > 10_000) for (const k of [...windows.keys()]) current(k);
    },
  };
}
