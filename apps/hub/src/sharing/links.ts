/**
 * Public links: creating one (the rows themselves are store/links.ts: create, list, revoke inside the workspace,
 * lookup by token across workspaces), the token format, and the per-hub cache the proxy reads. A token is 256 random bits in lower-case base32 (52
 * characters): a DNS label, so it also works as `<token>.<PUBLIC_BASE_DOMAIN>`. Only its SHA-256 is stored.
 */

import { MAX_LINK_RATE } from '@private-connect/api';
import { randomBytes } from 'node:crypto';
import { ConnectError, parseDuration } from '@private-connect/protocol';
import type { LinkInfo, LinkState } from '@private-connect/api';
import type { Database, Queryable } from '../db/index.js';
import { hashSecret } from '../secrets.js';
import type { Actor } from '../store/api-keys.js';
import { recordAudit } from '../store/audit.js';
import { findLinkByTokenHash, insertLink, type LinkRow } from '../store/links.js';
import type { SharingContext } from './context.js';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Random bytes in a link token. */
export const LINK_TOKEN_BYTES = 32;
/** Characters in a link token (base32 of LINK_TOKEN_BYTES). */
export const LINK_TOKEN_LENGTH = Math.ceil((LINK_TOKEN_BYTES * 8) / 5);
/** Characters of the token kept in clear (`prefix`) to tell links apart. */
export const LINK_PREFIX_LENGTH = 6;
/** Longest lifetime a link may be given. */
export const MAX_LINK_TTL_MS = 365 * 24 * 60 * 60 * 1000;
/** Lifetime of a link created without `expiresIn`. */
export const DEFAULT_LINK_TTL = '7d';
/** Highest `rate` (requests per minute); the column's check says the same. */
export { MAX_LINK_RATE };
/** How long the proxy trusts a looked-up row (revocation on this hub evicts at once; other hubs within this). */
export const LINK_CACHE_MS = 5_000;
/** Database lookups of link tokens (tokens not in the cache) one client address may cause per minute; then 429. */
export const MAX_LINK_LOOKUPS_PER_MIN = 600;
/** Rows (and misses) the proxy cache holds at most. */
const MAX_CACHED = 10_000;

const TOKEN_PATTERN = new RegExp(`^[a-z2-7]{${LINK_TOKEN_LENGTH}}$`);

/** A new link token: LINK_TOKEN_BYTES from the CSPRNG as lower-case base32. */
export function generateLinkToken(): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of randomBytes(LINK_TOKEN_BYTES)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** True for text shaped like a link token (checked before any lookup). */
export function isLinkToken(text: string): boolean {
  return TOKEN_PATTERN.test(text);
}

export type { LinkRow };
export { listLinks, revokeLink } from '../store/links.js';

export function linkState(row: LinkRow, now: Date): LinkState {
  if (row.revoked_at) return 'revoked';
  return new Date(row.expires_at).getTime() <= now.getTime() ? 'expired' : 'active';
}

/** The wire shape of a link row. */
export function toLinkInfo(row: LinkRow, now: Date): LinkInfo {
  return {
    id: row.id,
    service: row.service_name,
    prefix: row.token_prefix,
    methods: row.methods,
    paths: row.paths,
    ratePerMin: row.rate_per_min,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    revokedAt: row.revoked_at ? new Date(row.revoked_at).toISOString() : null,
    state: linkState(row, now),
  };
}

/** Parses `expiresIn` (default DEFAULT_LINK_TTL) into milliseconds; BAD_REQUEST past MAX_LINK_TTL_MS. */
export function linkTtl(expiresIn: string | undefined): number {
  const ms = parseDuration(expiresIn ?? DEFAULT_LINK_TTL);
  if (ms > MAX_LINK_TTL_MS) throw new ConnectError('BAD_REQUEST', `a public link lives at most 365d; "${String(expiresIn).slice(0, 20)}" is longer`);
  return ms;
}

export interface NewLink {
  service: string;
  ttlMs: number;
  methods?: string[];
  paths?: string[];
  rate?: number;
}

/** Creates a link in the current workspace (inside withWorkspace) and audits `link.create`; the token is returned once. */
export async function createLink(tx: Queryable, workspaceId: string, input: NewLink, actor: Actor & { now: Date }): Promise<{ row: LinkRow; token: string }> {
  const token = generateLinkToken();
  const row = await insertLink(tx, {
    workspaceId,
    service: input.service,
    tokenHash: hashSecret(token),
    prefix: token.slice(0, LINK_PREFIX_LENGTH),
    methods: input.methods ?? null,
    paths: input.paths ?? null,
    ratePerMin: input.rate ?? null,
    createdBy: actor,
    createdAt: actor.now,
    expiresAt: new Date(actor.now.getTime() + input.ttlMs),
  });
  await recordAudit(tx, workspaceId, {
    actorType: actor.type,
    actorId: actor.id,
    action: 'link.create',
    targetType: 'link',
    targetId: row.id,
    ip: actor.ip,
    userAgent: actor.userAgent,
    metadata: { service: input.service, prefix: row.token_prefix, methods: row.methods, paths: row.paths, ratePerMin: row.rate_per_min, expiresAt: new Date(row.expires_at).toISOString() },
  });
  return { row, token };
}

/** Looks a link up by its token, whatever its workspace (the row says the workspace). */
export async function findLinkByToken(db: Database, token: string): Promise<LinkRow | undefined> {
  return findLinkByTokenHash(db, hashSecret(token));
}

/** The proxy's view of links: rows by token, trusted for LINK_CACHE_MS; `forget` makes a revocation count at once. */
export interface LinkCache {
  /** The row of `token`, or undefined when there is none. */
  get(token: string): Promise<LinkRow | undefined>;
  /** True when `get(token)` would answer without asking the database. */
  has(token: string): boolean;
  /** The row of `token` when it is cached (what `get` would answer at once), else undefined: no promise per request. */
  peek(token: string): LinkRow | undefined;
  /** Link `id` was revoked on this hub: drop its row, and answer it as revoked even from a lookup in flight. */
  forget(id: string): void;
  /** True when link `id` was revoked on this hub (checked again once a stream for it has opened). */
  isGone(id: string): boolean;
}

const caches = new WeakMap<SharingContext, LinkCache>();

/** The link cache of one hub (its routes and its proxy share it). */
export function linkCache(sharing: SharingContext): LinkCache {
  let cache = caches.get(sharing);
  if (!cache) caches.set(sharing, (cache = createLinkCache(sharing.db)));
  return cache;
}

/** How long a revocation on this hub is remembered: longer than any lookup that began before it can take. */
const GONE_MS = 60_000;

function createLinkCache(db: Database): LinkCache {
  // Rows by token (the key every request of the link brings; hashing it per request cost more than the rest of the
  // lookup); deleted when stale on the next get, by forget(), or all at once past MAX_CACHED.
  const entries = new Map<string, { row: LinkRow | undefined; at: number }>();
  // Links revoked on this hub, by id, with the time; deleted GONE_MS later by the sweep in forget().
  const gone = new Map<string, number>();
  const mark = (row: LinkRow | undefined) => (row && !row.revoked_at && gone.has(row.id) ? { ...row, revoked_at: new Date(gone.get(row.id)!) } : row);
  return {
    async get(token) {
      const hit = entries.get(token);
      if (hit && Date.now() - hit.at < LINK_CACHE_MS) return mark(hit.row);
      const row = await findLinkByToken(db, token);
      if (entries.size >= MAX_CACHED) entries.clear();
      entries.set(token, { row, at: Date.now() });
      return mark(row);
    },
    has(token) {
      const hit = entries.get(token);
      return hit !== undefined && Date.now() - hit.at < LINK_CACHE_MS;
    },
    peek(token) {
      const hit = entries.get(token);
      return hit?.row && Date.now() - hit.at < LINK_CACHE_MS ? mark(hit.row) : undefined;
    },
    forget(id) {
      const now = Date.now();
      for (const [key, at] of gone) if (now - at > GONE_MS) gone.delete(key);
      gone.set(id, now);
      for (const [key, entry] of entries) if (entry.row?.id === id) entries.delete(key);
    },
    isGone: (id) => gone.has(id),
  };
}
