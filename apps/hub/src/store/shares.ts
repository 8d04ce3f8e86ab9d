/**
 * Shares: some services of the owning workspace, offered to ONE other workspace, which joins with a code (stored
 * as its SHA-256 only). The owner's queries run inside withWorkspace (row level security); the joining side
 * (joining by code, resolving `<alias>/<service>`, listing joined shares) is keyed by hand on the joiner's
 * workspace id and runs across workspaces (withCrossWorkspace, store/system.ts), because the rows belong to the owner.
 */

import type { ServiceProtocol } from '@private-connect/protocol';
import type { JoinedShareInfo, ShareInfo, ShareState } from '@private-connect/api';
import type { Database, Queryable } from '../db/index.js';
import { withCrossWorkspace } from './system.js';

export interface ShareRow {
  id: string;
  workspace_id: string;
  name: string;
  code_prefix: string;
  services: string[];
  methods: string[] | null;
  paths: string[] | null;
  rate_per_min: number | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  grantee_workspace_id: string | null;
  grantee_alias: string | null;
  joined_at: Date | null;
}

const COLUMNS = `id, workspace_id, name, code_prefix, services, methods, paths, rate_per_min, created_at, expires_at, revoked_at,
                 grantee_workspace_id, grantee_alias, joined_at`;

export interface NewShare {
  workspaceId: string;
  name: string;
  codeHash: Buffer;
  codePrefix: string;
  services: string[];
  methods?: string[];
  paths?: string[];
  ratePerMin?: number;
  createdBy: { type: string; id?: string };
  now: Date;
  expiresAt: Date;
}

/** Inserts a share of the current workspace (inside withWorkspace). A live share with the same name: 23505. */
export async function insertShare(tx: Queryable, share: NewShare): Promise<ShareRow> {
  const [row] = await tx.query<ShareRow>(
    `insert into shares (workspace_id, name, code_hash, code_prefix, services, methods, paths, rate_per_min, created_by_type, created_by_id, created_at, expires_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning ${COLUMNS}`,
    [
      share.workspaceId,
      share.name,
      share.codeHash,
      share.codePrefix,
      share.services,
      share.methods ?? null,
      share.paths ?? null,
      share.ratePerMin ?? null,
      share.createdBy.type,
      share.createdBy.id ?? null,
      share.now,
      share.expiresAt,
    ],
  );
  return row!;
}

/** The current workspace's shares, newest first (inside withWorkspace). */
export async function listOwnedShares(tx: Queryable): Promise<ShareRow[]> {
  return tx.query<ShareRow>(`select ${COLUMNS} from shares order by created_at desc, id`);
}

/** A share of the current workspace by id (inside withWorkspace: another workspace's id finds nothing). */
export async function findOwnedShare(tx: Queryable, id: string): Promise<ShareRow | undefined> {
  const [row] = await tx.query<ShareRow>(`select ${COLUMNS} from shares where id = $1`, [id]);
  return row;
}

/** Revokes a share of the current workspace; undefined when it was already revoked (or is not ours). */
export async function revokeShare(tx: Queryable, id: string, now: Date): Promise<ShareRow | undefined> {
  const [row] = await tx.query<ShareRow>(`update shares set revoked_at = $2 where id = $1 and revoked_at is null returning ${COLUMNS}`, [id, now]);
  return row;
}

/** SYSTEM ROLE: the share with this code hash, locked for the join. */
export async function findShareByCode(tx: Queryable, codeHash: Buffer): Promise<ShareRow | undefined> {
  const [row] = await tx.query<ShareRow>(`select ${COLUMNS} from shares where code_hash = $1 for update`, [codeHash]);
  return row;
}

/** SYSTEM ROLE: whether the workspace has a share that is not revoked under this alias. */
export async function aliasInUse(tx: Queryable, granteeWorkspaceId: string, alias: string): Promise<boolean> {
  const rows = await tx.query('select 1 from shares where grantee_workspace_id = $1 and grantee_alias = $2 and revoked_at is null', [granteeWorkspaceId, alias]);
  return rows.length > 0;
}

/** SYSTEM ROLE: records the join; false when someone joined meanwhile. A live alias taken meanwhile: 23505. */
export async function markJoined(tx: Queryable, id: string, granteeWorkspaceId: string, alias: string, now: Date): Promise<ShareRow | undefined> {
  const [row] = await tx.query<ShareRow>(
    `update shares set grantee_workspace_id = $2, grantee_alias = $3, joined_at = $4 where id = $1 and grantee_workspace_id is null returning ${COLUMNS}`,
    [id, granteeWorkspaceId, alias, now],
  );
  return row;
}

/**
 * SYSTEM ROLE: the share the workspace joined under `alias`: the live one, else the most recently revoked (so a
 * revoked share answers SHARE_REVOKED rather than "not found").
 */
export async function findJoinedShare(tx: Queryable, granteeWorkspaceId: string, alias: string): Promise<ShareRow | undefined> {
  const [row] = await tx.query<ShareRow>(
    `select ${COLUMNS} from shares where grantee_workspace_id = $1 and grantee_alias = $2
      order by (revoked_at is null) desc, revoked_at desc limit 1`,
    [granteeWorkspaceId, alias],
  );
  return row;
}

/** SYSTEM ROLE: the shares the workspace joined, with the owner workspace's name, newest first. */
export async function listJoinedShares(tx: Queryable, granteeWorkspaceId: string): Promise<Array<ShareRow & { owner_name: string }>> {
  return tx.query<ShareRow & { owner_name: string }>(
    `select ${COLUMNS.split(',').map((c) => `s.${c.trim()}`).join(', ')}, w.name as owner_name
       from shares s join workspaces w on w.id = s.workspace_id
      where s.grantee_workspace_id = $1 order by s.joined_at desc, s.id`,
    [granteeWorkspaceId],
  );
}

/** SYSTEM ROLE: names of workspaces by id (the grantees of the owner's shares). */
export async function workspaceNames(tx: Queryable, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await tx.query<{ id: string; name: string }>('select id, name from workspaces where id = any($1::uuid[])', [ids]);
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** SYSTEM ROLE: expiry and revocation of shares by id (the sweep that cuts streams of ended shares). */
export async function shareEnds(tx: Queryable, ids: string[]): Promise<Array<Pick<ShareRow, 'id' | 'workspace_id' | 'services' | 'expires_at' | 'revoked_at'>>> {
  return tx.query('select id, workspace_id, services, expires_at, revoked_at from shares where id = any($1::uuid[])', [ids]);
}

export function isExpired(row: Pick<ShareRow, 'expires_at'>, now: Date): boolean {
  return new Date(row.expires_at).getTime() <= now.getTime();
}

export function shareState(row: ShareRow, now: Date): ShareState {
  if (row.revoked_at) return 'revoked';
  if (isExpired(row, now)) return 'expired';
  return row.grantee_workspace_id ? 'joined' : 'pending';
}

const iso = (value: Date | string) => new Date(value).toISOString();
const isoOrNull = (value: Date | string | null) => (value ? iso(value) : null);

/** The owner's view of a share. `granteeName`: the joined workspace's name. */
export function toShareInfo(row: ShareRow, now: Date, granteeName?: string): ShareInfo {
  return {
    id: row.id,
    name: row.name,
    prefix: row.code_prefix,
    services: row.services,
    methods: row.methods,
    paths: row.paths,
    ratePerMin: row.rate_per_min,
    createdAt: iso(row.created_at),
    expiresAt: iso(row.expires_at),
    revokedAt: isoOrNull(row.revoked_at),
    state: shareState(row, now),
    grantee:
      row.grantee_workspace_id && row.grantee_alias && row.joined_at
        ? { workspaceId: row.grantee_workspace_id, workspaceName: granteeName ?? '', alias: row.grantee_alias, joinedAt: iso(row.joined_at) }
        : null,
  };
}

/** The joining workspace's view: what the share says, the owner workspace's name, nothing else of the owner. */
export function toJoinedShareInfo(row: ShareRow, ownerName: string, now: Date): JoinedShareInfo {
  return {
    id: row.id,
    alias: row.grantee_alias!,
    name: row.name,
    ownerWorkspace: ownerName,
    services: row.services,
    methods: row.methods,
    paths: row.paths,
    ratePerMin: row.rate_per_min,
    joinedAt: iso(row.joined_at!),
    expiresAt: iso(row.expires_at),
    revokedAt: isoOrNull(row.revoked_at),
    state: shareState(row, now),
  };
}

/** SYSTEM ROLE: what the hub needs of the owner's service behind a share (no other service of the owner is read). */
export async function sharedServiceRow(tx: Queryable, ownerWorkspaceId: string, name: string): Promise<{ protocol: ServiceProtocol; target_port: number } | undefined> {
  const [row] = await tx.query<{ protocol: ServiceProtocol; target_port: number }>('select protocol, target_port from services where workspace_id = $1 and name = $2', [ownerWorkspaceId, name]);
  return row;
}

/**
 * The share `granteeWorkspaceId` joined under `alias`, and, when it lists `service`, that service's protocol and
 * port at its owner; undefined when there is no such share or it does not list the service. Across workspaces: the
 * rows are the owner's, keyed here on the joiner's workspace id.
 */
export async function findJoinedService(
  db: Database,
  granteeWorkspaceId: string,
  alias: string,
  service: string,
): Promise<{ share: ShareRow; protocol?: ServiceProtocol; port?: number } | undefined> {
  return withCrossWorkspace(db, async (tx) => {
    const share = await findJoinedShare(tx, granteeWorkspaceId, alias);
    if (!share || !share.services.includes(service)) return undefined;
    const row = await sharedServiceRow(tx, share.workspace_id, service);
    return { share, protocol: row?.protocol, port: row?.target_port };
  });
}

/** Expiry and revocation of the shares `ids`, whatever their workspaces (the sweep of streams through ended shares). */
export async function shareEndsOf(db: Database, ids: string[]): Promise<Array<Pick<ShareRow, 'id' | 'workspace_id' | 'services' | 'expires_at' | 'revoked_at'>>> {
  return withCrossWorkspace(db, (tx) => shareEnds(tx, ids));
}
