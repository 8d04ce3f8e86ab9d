/**
 * Device codes for `connect up` without credentials (RFC 8628 style): the agent gets a secret device code and a
 * short user code; a signed-in member approves the user code for a workspace; the agent's next poll enrols it
 * there, once. device_codes is not workspace-scoped (the workspace is unknown until approval): withCredentials only (store/system.ts).
 */

import { randomInt } from 'node:crypto';
import { ConnectError } from '@private-connect/protocol';
import type { Database } from '../db/index.js';
import { withCredentials } from './system.js';
import { generateToken, hashSecret } from '../secrets.js';
import { enrolAgent, type EnrolledAgent } from './agents.js';
import { recordAudit } from './audit.js';
import type { RequestMeta } from './users.js';

/** How long a device code waits for approval. */
export const DEVICE_CODE_TTL_MS = 15 * 60_000;
/** Seconds the agent waits between polls. */
export const DEVICE_POLL_INTERVAL_S = 5;

/** Consonants only: no words, no 0/O or 1/I confusion. 20^8 codes. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

export interface DeviceInfo {
  label?: string;
  hostname?: string;
  platform?: string;
}

export interface NewDeviceCode {
  deviceCode: string;
  userCode: string;
  expiresAt: Date;
}

function newUserCode(): string {
  let code = '';
  for (let i = 0; i < 8; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** Brings a typed code to its stored form: upper case, `XXXX-XXXX`; undefined when it cannot be one. */
export function normalizeUserCode(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 32) return undefined;
  const letters = value.toUpperCase().replace(/[\s-]/g, '');
  return /^[A-Z]{8}$/.test(letters) ? `${letters.slice(0, 4)}-${letters.slice(4)}` : undefined;
}

export async function createDeviceCode(db: Database, device: DeviceInfo, now: Date): Promise<NewDeviceCode> {
  const deviceCode = generateToken();
  const expiresAt = new Date(now.getTime() + DEVICE_CODE_TTL_MS);
  for (let attempt = 0; ; attempt++) {
    const userCode = newUserCode();
    const rows = await withCredentials(db, (tx) =>
      tx.query(
        `insert into device_codes (device_code_hash, user_code, label, hostname, platform, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (user_code) do nothing returning id`,
        [hashSecret(deviceCode), userCode, device.label ?? null, device.hostname ?? null, device.platform ?? null, now, expiresAt],
      ),
    );
    if (rows.length > 0) return { deviceCode, userCode, expiresAt };
    if (attempt >= 5) throw new ConnectError('INTERNAL', 'could not allocate a unique user code');
  }
}

/** What the approval page shows of a pending, unexpired code; undefined for any other code. */
export async function findPendingDeviceCode(db: Database, userCode: string, now: Date): Promise<(DeviceInfo & { createdAt: Date }) | undefined> {
  const [row] = await withCredentials(db, (tx) =>
    tx.query<{ label: string | null; hostname: string | null; platform: string | null; created_at: Date }>(
      'select label, hostname, platform, created_at from device_codes where user_code = $1 and approved_at is null and expires_at > $2',
      [userCode, now],
    ),
  );
  if (!row) return undefined;
  return { label: row.label ?? undefined, hostname: row.hostname ?? undefined, platform: row.platform ?? undefined, createdAt: new Date(row.created_at) };
}

/**
 * Approves a pending, unexpired user code for workspaceId (whose membership the caller has checked). Returns false
 * for a code that is unknown, expired, or already approved: the caller answers those alike.
 */
export async function approveDeviceCode(db: Database, userCode: string, userId: string, workspaceId: string, now: Date, meta: RequestMeta): Promise<boolean> {
  return withCredentials(db, async (tx) => {
    const [row] = await tx.query<{ id: string; label: string | null }>(
      `update device_codes set approved_at = $2, approved_by = $3, workspace_id = $4
        where user_code = $1 and approved_at is null and expires_at > $2 returning id, label`,
      [userCode, now, userId, workspaceId],
    );
    if (!row) return false;
    await recordAudit(tx, workspaceId, { actorType: 'user', actorId: userId, action: 'device.approve', targetType: 'device_code', targetId: row.id, ...meta, metadata: { label: row.label } });
    return true;
  });
}

/**
 * The agent's poll: enrols the agent once the code is approved (exactly once: the used_at update decides), as its
 * approver's (agents.enrolled_by), or throws AUTHORIZATION_PENDING, DEVICE_CODE_EXPIRED, or UNAUTHORIZED for an
 * unknown or already used code, or one whose approver has left the workspace since.
 */
export async function redeemDeviceCode(db: Database, deviceCode: string, ttlMs: number, now: Date, meta: RequestMeta): Promise<EnrolledAgent> {
  const enrolled = await withCredentials(db, async (tx) => {
    const [row] = await tx.query<{
      id: string;
      label: string | null;
      hostname: string | null;
      platform: string | null;
      expires_at: Date;
      approved_by: string | null;
      workspace_id: string | null;
      used_at: Date | null;
    }>(
      `select id, label, hostname, platform, expires_at, approved_by, workspace_id, used_at from device_codes
        where device_code_hash = $1 for update`,
      [hashSecret(deviceCode)],
    );
    if (!row || row.used_at) throw new ConnectError('UNAUTHORIZED', 'this device code is not valid (or was already used); run `connect up` again');
    if (new Date(row.expires_at) <= now) throw new ConnectError('DEVICE_CODE_EXPIRED');
    if (!row.workspace_id || !row.approved_by) throw new ConnectError('AUTHORIZATION_PENDING');
    await tx.query('update device_codes set used_at = $2 where id = $1', [row.id, now]);
    // The agent will be its approver's (agents.enrolled_by): one who left the workspace since approving enrols
    // nothing. The row stays locked until commit, so a removal of that member waits for this enrolment (and then
    // revokes the agent) or this waits for the removal and refuses. used_at is committed: the code is spent.
    const [member] = await tx.query('select 1 from workspace_members where workspace_id = $1 and user_id = $2 for share', [row.workspace_id, row.approved_by]);
    if (!member) return undefined;
    // An owner transaction, so the enrolment and the used_at mark commit together; every row names workspace_id.
    return enrolAgent(tx, row.workspace_id, {
      label: row.label ?? row.hostname ?? 'agent',
      hostname: row.hostname ?? undefined,
      platform: row.platform ?? undefined,
      ttlMs,
      now,
      userId: row.approved_by,
      ip: meta.ip,
      userAgent: meta.userAgent,
    });
  });
  if (!enrolled) throw new ConnectError('UNAUTHORIZED', 'the member who approved this device is no longer in the workspace; run `connect up` again');
  return enrolled;
}
