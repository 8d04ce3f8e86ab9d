/**
 * People: users by email, and the personal workspace each gets on first sign-in. users is not workspace-scoped,
 * so everything here runs in an owner transaction (withCredentials, store/system.ts), never as connect_app.
 */

import { MAX_EMAIL } from '@private-connect/api';
import { ConnectError } from '@private-connect/protocol';
import type { Queryable } from '../db/index.js';
import { recordAudit } from './audit.js';

/** Longest email address accepted (RFC 5321 path limit). */
export { MAX_EMAIL };

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Lower-cases and trims an email address; throws BAD_REQUEST when it is not one. */
export function normalizeEmail(value: unknown): string {
  const email = typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (email.length < 3 || email.length > MAX_EMAIL || !EMAIL.test(email)) {
    throw new ConnectError('BAD_REQUEST', `expected an email address (name@example.com, at most ${MAX_EMAIL} characters)`);
  }
  return email;
}

export interface User {
  id: string;
  email: string;
  /** True when this call created the user (and their personal workspace). */
  created: boolean;
}

/** What the audit log records about the request that caused a change. */
export interface RequestMeta {
  ip?: string;
  userAgent?: string;
}

/**
 * Finds the user with this email or creates it, together with a personal workspace it owns. Runs inside the
 * caller's withCredentials transaction so that the sign-in it belongs to is all or nothing. `home`: a new user gets no
 * workspace of their own, this existing one becomes their default instead (the caller makes them its owner: a
 * setup sign-in, `connect-hub make-owner`).
 */
export async function findOrCreateUser(tx: Queryable, email: string, now: Date, meta: RequestMeta, home?: string): Promise<User> {
  const [existing] = await tx.query<{ id: string }>('select id from users where email = $1', [email]);
  if (existing) return { id: existing.id, email, created: false };
  const [inserted] = await tx.query<{ id: string }>(
    'insert into users (email, created_at) values ($1, $2) on conflict (email) do nothing returning id',
    [email, now],
  );
  if (!inserted) {
    // A concurrent sign-in of the same address created it first.
    const [row] = await tx.query<{ id: string }>('select id from users where email = $1', [email]);
    return { id: row!.id, email, created: false };
  }
  if (home) {
    await tx.query('update users set personal_workspace_id = $2 where id = $1', [inserted.id, home]);
    return { id: inserted.id, email, created: true };
  }
  const [ws] = await tx.query<{ id: string }>('insert into workspaces (name) values ($1) returning id', [personalName(email)]);
  await tx.query(`insert into workspace_members (workspace_id, user_id, role, created_at) values ($1, $2, 'owner', $3)`, [ws!.id, inserted.id, now]);
  await tx.query('update users set personal_workspace_id = $2 where id = $1', [inserted.id, ws!.id]);
  await recordAudit(tx, ws!.id, {
    actorType: 'user',
    actorId: inserted.id,
    action: 'workspace.create',
    targetType: 'workspace',
    targetId: ws!.id,
    ip: meta.ip,
    userAgent: meta.userAgent,
    metadata: { personal: true },
  });
  return { id: inserted.id, email, created: true };
}

function personalName(email: string): string {
  return `${email.split('@')[0]!.slice(0, 100)}'s workspace`;
}
