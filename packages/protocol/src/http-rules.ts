/**
 * The limits shares and public links put on HTTP requests, applied the same way by the hub (public links) and by
 * the exposing agent (shares): allowed methods, allowed path prefixes, a rate per minute, and an expiry given as a
 * duration ("7d"). Paths are checked after normalisation (dot segments and %2e resolved), on segment boundaries:
 * the prefix /api/v1 allows /api/v1 and /api/v1/users but not /api/v10 or /api/v1/../admin.
 */

import { ConnectError } from './errors.js';

const METHOD = /^[A-Z]{1,16}$/;
const MAX_RULES = 64;
const MAX_PREFIX = 512;

/** Validates and normalises allowed methods (upper case, deduplicated). Throws BAD_REQUEST. */
export function parseMethods(value: unknown): string[] | undefined {
  const items = listOf(value, 'methods');
  if (!items) return undefined;
  const methods = [...new Set(items.map((m) => m.trim().toUpperCase()))];
  for (const m of methods) if (!METHOD.test(m)) throw new ConnectError('BAD_REQUEST', `"${m.slice(0, 20)}" is not an HTTP method (e.g. GET, POST)`);
  return methods;
}

/** Validates and normalises allowed path prefixes (each starts with /, no trailing / but the root). */
export function parsePaths(value: unknown): string[] | undefined {
  const items = listOf(value, 'paths');
  if (!items) return undefined;
  return [
    ...new Set(
      items.map((raw) => {
        const p = raw.trim();
        if (!p.startsWith('/') || p.length > MAX_PREFIX || /[\s?#]/.test(p)) {
          throw new ConnectError('BAD_REQUEST', `"${p.slice(0, 40)}" is not a path prefix: start with /, no spaces, ? or #`);
        }
        const normal = normalizePath(p);
        if (normal === undefined) throw new ConnectError('BAD_REQUEST', `"${p.slice(0, 40)}" is not a valid path`);
        return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
      }),
    ),
  ];
}

function listOf(value: unknown, what: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const items = typeof value === 'string' ? value.split(',').filter((s) => s.trim() !== '') : value;
  if (!Array.isArray(items) || items.some((i) => typeof i !== 'string')) throw new ConnectError('BAD_REQUEST', `${what} must be a list of strings`);
  if (items.length === 0) return undefined;
  if (items.length > MAX_RULES) throw new ConnectError('BAD_REQUEST', `at most ${MAX_RULES} ${what}`);
  return items as string[];
}

/** The path of a request target with dot segments resolved; undefined for a target that is not origin-form. */
export function normalizePath(target: string): string | undefined {
  if (!target.startsWith('/') || target.startsWith('//')) return undefined;
  try {
    return new URL(target, 'http://h').pathname;
  } catch {
    return undefined;
  }
}

/** The normalised request target (path + query) to forward, or undefined when it is not a plain path. */
export function normalizeTarget(target: string): string | undefined {
  if (!target.startsWith('/') || target.startsWith('//')) return undefined;
  try {
    const url = new URL(target, 'http://h');
    return url.pathname + url.search;
  } catch {
    return undefined;
  }
}

export function methodAllowed(methods: readonly string[] | undefined, method: string): boolean {
  return !methods || methods.includes(method.toUpperCase());
}

/** True when `path` (normalised) is one of the prefixes or below one, on a segment boundary. */
export function pathAllowed(prefixes: readonly string[] | undefined, path: string): boolean {
  if (!prefixes) return true;
  return prefixes.some((p) => p === '/' || path === p || path.startsWith(p + '/'));
}

/**
 * Checks a request against the limits; returns the refusal, or undefined when it may pass. `target` is the raw
 * request target; the path checked (and to forward) is its normalised form.
 */
export function checkHttpRequest(
  rules: { methods?: readonly string[]; paths?: readonly string[] },
  method: string,
  target: string,
): { ok: true; target: string } | { ok: false; error: ConnectError } {
  const normal = normalizeTarget(target);
  if (normal === undefined) return { ok: false, error: new ConnectError('BAD_REQUEST', 'the request target must be a path') };
  if (!methodAllowed(rules.methods, method)) {
    return { ok: false, error: new ConnectError('METHOD_NOT_ALLOWED', `${method} is not allowed here; allowed: ${rules.methods!.join(', ')}`) };
  }
  const path = normal.split('?')[0]!;
  if (!pathAllowed(rules.paths, path)) {
    return { ok: false, error: new ConnectError('PATH_NOT_ALLOWED', `${path.slice(0, 200)} is outside the allowed paths: ${rules.paths!.join(', ')}`) };
  }
  return { ok: true, target: normal };
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration like 30m, 12h, 7d, 2w (or plain seconds). Throws BAD_REQUEST. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,6})\s*([smhdw]?)$/.exec(text.trim());
  if (!match) throw new ConnectError('BAD_REQUEST', `"${text.slice(0, 20)}" is not a duration: use e.g. 30m, 12h, 7d or 2w`);
  const ms = Number(match[1]) * UNITS[match[2] || 's']!;
  if (ms <= 0) throw new ConnectError('BAD_REQUEST', 'a duration must be more than zero');
  return ms;
}

/**
 * A token bucket of `perMinute` tokens refilled continuously: a burst of up to `perMinute`, then `perMinute / 60`
 * per second. `take` answers 0 when a token was taken, else the seconds until one is there.
 */
export class RateBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.tokens = perMinute;
    this.last = now;
  }

  take(now: number): number {
    const rate = this.perMinute / 60_000;
    this.tokens = Math.min(this.perMinute, this.tokens + (now - this.last) * rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / rate / 1000));
  }
}

/** Rate buckets by key (share id, link id), created on first use and dropped once full again. */
export class RateBuckets {
  private readonly buckets = new Map<string, RateBucket>();

  /** 0 when the request may go, else the seconds to wait (Retry-After). */
  take(key: string, perMinute: number, now: number): number {
    let bucket = this.buckets.get(key);
    if (!bucket || bucket.perMinute !== perMinute) this.buckets.set(key, (bucket = new RateBucket(perMinute, now)));
    const wait = bucket.take(now);
    if (this.buckets.size > 10_000) this.sweep(now);
    return wait;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      // A bucket that has refilled completely holds no state worth keeping.
      if (now - (bucket as unknown as { last: number }).last > 60_000) this.buckets.delete(key);
    }
  }
}
