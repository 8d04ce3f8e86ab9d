/**
 * The limits shares and public links put on HTTP requests, applied the same way by the hub (public links) and by
 * the exposing agent (shares): allowed methods, allowed path prefixes, a rate per minute, and an expiry given as a
 * duration ("7d"). Paths are checked decoded, on segment boundaries (`canonicalTarget`): the prefix /api/v1 allows
 * /api/v1 and /api/v1/users but not /api/v10; /api/v1/../admin and /api/v1/..%2fadmin are refused outright.
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
        if (normal === undefined) throw new ConnectError('BAD_REQUEST', `"${p.slice(0, 40)}" is not a valid path prefix: no .. segments, encoded / or \\, or bad % escapes`);
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

/**
 * How a request target is read before any limit applies. Apps decode and resolve paths in different orders (Python's
 * http.server decodes %2f and then resolves `..`; a Node static server resolves first), so a check that reads the
 * path one way lets through what the app reads another. The hub and the agent therefore decide on the
 * percent-decoded path with `.` segments removed, and refuse every target that a decoder could split or climb
 * differently: an encoded `/` or `\`, a literal `\`, a `..` segment (literal, encoded, or with `;` parameters), a NUL,
 * a `#`, or a `%` not followed by two hex digits. What is left decodes to the same segments everywhere.
 */
export type CanonicalTarget =
  | { ok: true; /** decoded path, `.` segments removed: what limits are checked on */ path: string; /** the target to forward: the raw path without `.` segments, plus the query */ target: string }
  | { ok: false; error: ConnectError };

/** Percent escapes of characters that would split or end a segment: `/`, `\`, NUL. */
const SEPARATOR_ESCAPE = /%(2f|5c|00)/i;
const BAD_ESCAPE = /%(?![0-9a-f]{2})/i;

/** Reads a request target as the limits see it (module comment above), or the refusal. */
export function canonicalTarget(target: string): CanonicalTarget {
  if (!target.startsWith('/') || target.startsWith('//')) return { ok: false, error: new ConnectError('BAD_REQUEST', 'the request target must be a path starting with a single /') };
  const q = target.indexOf('?');
  const raw = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  const why = ambiguity(raw);
  if (why) return { ok: false, error: new ConnectError('AMBIGUOUS_PATH', `${why} in the path is refused: the service could read it as another path than the one checked`) };
  const rawSegments = raw.split('/');
  const kept: string[] = [];
  const decoded: string[] = [];
  for (const segment of rawSegments) {
    const value = percentDecode(segment);
    if (value === '..' || value.split(';')[0] === '..') return { ok: false, error: new ConnectError('AMBIGUOUS_PATH', 'a ".." segment in the path is refused: the service could resolve it above the allowed paths') };
    if (value === '.' && kept.length > 0) continue;
    kept.push(segment);
    decoded.push(value);
  }
  // A path that ended in a `.` segment still names a folder: keep its trailing slash.
  const trailing = rawSegments.length > 1 && percentDecode(rawSegments[rawSegments.length - 1]!) === '.' ? '/' : '';
  const join = (parts: string[]) => (parts.join('/') + trailing).replace(/^$/, '/').replace(/\/\/$/, '/');
  return { ok: true, path: join(decoded), target: join(kept) + query };
}

function ambiguity(raw: string): string | undefined {
  const separator = SEPARATOR_ESCAPE.exec(raw);
  if (separator) return `the encoded character ${separator[0]}`;
  if (BAD_ESCAPE.test(raw)) return 'a % that is not followed by two hex digits';
  if (raw.includes('\\')) return 'a backslash';
  if (raw.includes('\0')) return 'a NUL byte';
  if (raw.includes('#')) return 'a #';
  return undefined;
}

/** Decodes %XX escapes as UTF-8 bytes (an invalid sequence becomes U+FFFD, as most servers read it). */
function percentDecode(segment: string): string {
  if (!segment.includes('%')) return segment;
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25) {
      bytes.push(parseInt(segment.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) bytes.push(c);
    else for (const b of Buffer.from(segment[i]!, 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The decoded, normalised path of a target (what limits are checked on); undefined when it is refused. */
export function normalizePath(target: string): string | undefined {
  const read = canonicalTarget(target);
  return read.ok ? read.path : undefined;
}

/** The target to forward (raw path without `.` segments, plus query); undefined when it is refused. */
export function normalizeTarget(target: string): string | undefined {
  const read = canonicalTarget(target);
  return read.ok ? read.target : undefined;
}

export function methodAllowed(methods: readonly string[] | undefined, method: string): boolean {
  return !methods || methods.includes(method.toUpperCase());
}

/** True when `path` (decoded, normalised) is one of the prefixes or below one, on a segment boundary. */
export function pathAllowed(prefixes: readonly string[] | undefined, path: string): boolean {
  if (!prefixes) return true;
  return prefixes.some((p) => p === '/' || path === p || path.startsWith(p + '/'));
}

/**
 * Checks a request against the limits; returns the refusal, or undefined when it may pass. `target` is the raw
 * request target; the path checked is its canonical form (`canonicalTarget`), and `target` in the answer is what
 * to forward. `path` is the decoded path for logs and audit (present on a refusal too when the target was readable).
 */
export function checkHttpRequest(
  rules: { methods?: readonly string[]; paths?: readonly string[] },
  method: string,
  target: string,
): { ok: true; target: string; path: string } | { ok: false; error: ConnectError; path?: string } {
  const read = canonicalTarget(target);
  if (!read.ok) return read;
  if (!methodAllowed(rules.methods, method)) {
    return { ok: false, path: read.path, error: new ConnectError('METHOD_NOT_ALLOWED', `${method} is not allowed here; allowed: ${rules.methods!.join(', ')}`) };
  }
  if (!pathAllowed(rules.paths, read.path)) {
    return { ok: false, path: read.path, error: new ConnectError('PATH_NOT_ALLOWED', `${read.path.slice(0, 200)} is outside the allowed paths: ${rules.paths!.join(', ')}`) };
  }
  return { ok: true, target: read.target, path: read.path };
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
