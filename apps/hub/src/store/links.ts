/**
 * Rows of public links (table links): create, list and revoke inside the workspace (withWorkspace, RLS), and the
 * lookup by token, which has only the token and so is cross-workspace. The token itself is made in
 * sharing/links.ts; only its SHA-256 and prefix reach the table.
 */

import type { Database, Queryable } from '../db/index.js';
import type { Actor } from './api-keys.js';
import { recordAudit } from './audit.js';
import { withCrossWorkspace } from './system.js';

export interface LinkRow {
  id: string;
  workspace_id: string;
  service_name: string;
  token_prefix: string;
  methods: string[] | null;
  paths: string[] | null;
  rate_per_min: number | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = 'id, workspace_id, service_name, token_prefix, methods, paths, rate_per_min, created_at, expires_at, revoked_at';

/** What insertLink stores: the token only as its hash and prefix. */
export interface NewLinkRow {
  workspaceId: string;
  service: string;
  tokenHash: Buffer;
  prefix: string;
  methods: string[] | null;
  paths: string[] | null;
  ratePerMin: number | null;
  createdBy: Actor;
  createdAt: Date;
  expiresAt: Date;
}

/** Inserts a link row in the current workspace (inside withWorkspace). */
export async function insertLink(tx: Queryable, link: NewLinkRow): Promise<LinkRow> {
  const [row] = await tx.query<LinkRow>(
    `insert into links (workspace_id, service_name, token_hash, token_prefix, methods, paths, rate_per_min, created_by_type, created_by_id, created_at, expires_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning ${COLUMNS}`,
    [
      link.workspaceId,
      link.service,
      link.tokenHash,
      link.prefix,
      link.methods,
      link.paths,
      link.ratePerMin,
      link.createdBy.type,
      link.createdBy.id ?? null,
      link.createdAt,
      link.expiresAt,
    ],
  );
  return row!;
}

/** The current workspace's links, newest first (inside withWorkspace: RLS scopes it). */
export async function listLinks(tx: Queryable): Promise<LinkRow[]> {
  return tx.query<LinkRow>(`select ${COLUMNS} from links order by created_at desc, id limit 1000`);
}

/**
 * Revokes link `id` of the current workspace (inside withWorkspace) and audits `link.revoke`. Undefined when there
 * is no such link in the workspace; a link revoked before is returned unchanged (and not audited again).
 */
export async function revokeLink(tx: Queryable, workspaceId: string, id: string, actor: Actor & { now: Date }): Promise<LinkRow | undefined> {
  const [revoked] = await tx.query<LinkRow>(`update links set revoked_at = $2 where id = $1 and revoked_at is null returning ${COLUMNS}`, [id, actor.now]);
  if (!revoked) {
    const [existing] = await tx.query<LinkRow>(`select ${COLUMNS} from links where id = $1`, [id]);
    return existing;
  }
  await recordAudit(tx, workspaceId, {
    actorType: actor.type,
    actorId: actor.id,
    action: 'link.revoke',
    targetType: 'link',
    targetId: id,
    ip: actor.ip,
    userAgent: actor.userAgent,
    metadata: { service: revoked.service_name, prefix: revoked.token_prefix },
  });
  return revoked;
}

/** Looks a link up by its token's SHA-256, whatever its workspace (withCrossWorkspace; the row says the workspace). */
export async function findLinkByTokenHash(db: Database, tokenHash: Buffer): Promise<LinkRow | undefined> {
  const [row] = await withCrossWorkspace(db, (tx) => tx.query<LinkRow>(`select ${COLUMNS} from links where token_hash = $1`, [tokenHash]));
  return row;
}

