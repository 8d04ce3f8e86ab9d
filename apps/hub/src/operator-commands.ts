/**
 * Operator commands of `connect-hub` that give a person the hub (main.ts dispatches to them):
 *   make-owner <email> [--workspace <id|name>]   that address becomes owner (user created if new)
 *   setup-link [--workspace <id|name>]           a new one-time setup link (older unused ones stop working)
 * Both default to the first workspace, the one the first start made. They open the database directly: with the
 * embedded one the hub must be stopped (it has one user at a time), with PostgreSQL it may run.
 */

import { parseArgs } from 'node:util';
import { ConnectError, isUuid } from '@private-connect/protocol';
import type { HubConfig } from './config.js';
import { openDatabase, type Database } from './db/index.js';
import { publicUrls } from './public-urls.js';
import { listAllWorkspaces } from './store/members.js';
import { issueSetupLink, makeOwnerByEmail, setupLinkUrl } from './store/setup-links.js';
import { normalizeEmail } from './store/users.js';

export interface WorkspaceRow {
  id: string;
  name: string;
}

/**
 * The workspace `ref` names (its id, or its name when exactly one has it), or the first workspace without `ref`.
 * Throws NOT_FOUND listing the workspaces there are, or BAD_REQUEST when a name is ambiguous.
 */
export async function resolveWorkspace(db: Database, ref: string | undefined): Promise<WorkspaceRow> {
  const all = await listAllWorkspaces(db);
  const known = () => all.map((w) => `  ${w.id}  ${w.name}`).join('\n') || '  (none: start the hub once to create the first workspace)';
  if (ref === undefined) {
    if (all[0]) return all[0];
    throw new ConnectError('NOT_FOUND', `this hub has no workspace yet; start it once (npm start) to create the first one`);
  }
  const matches = all.filter((w) => (isUuid(ref) && w.id === ref.toLowerCase()) || w.name === ref);
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new ConnectError('BAD_REQUEST', `several workspaces are named "${ref}"; pass --workspace <id>:\n${matches.map((w) => `  ${w.id}  ${w.name}`).join('\n')}`);
  throw new ConnectError('NOT_FOUND', `no workspace with the id or name "${ref}"; workspaces:\n${known()}`);
}

/** Makes `email` owner of the workspace (creating the user, whose default workspace it then is); audited as the system. */
export async function makeOwnerOf(db: Database, rawEmail: string, ref: string | undefined, now: Date): Promise<{ workspace: WorkspaceRow; email: string; change: 'added' | 'promoted' | 'unchanged' }> {
  const email = normalizeEmail(rawEmail);
  const workspace = await resolveWorkspace(db, ref);
  const change = await makeOwnerByEmail(db, workspace.id, email, now);
  return { workspace, email, change };
}

/** A new setup link for the workspace, on the dashboard URL the hub's banner shows. */
export async function newSetupLink(db: Database, config: HubConfig, ref: string | undefined, now: Date): Promise<{ workspace: WorkspaceRow; link: string; expiresAt: Date }> {
  const workspace = await resolveWorkspace(db, ref);
  const { token, expiresAt } = await issueSetupLink(db, workspace.id, now);
  // The ports the hub is configured with: the banner shows the same URL once it listens on them.
  const dashboard = publicUrls(config, config.port, config.webPort).dashboard;
  return { workspace, link: setupLinkUrl(dashboard, token), expiresAt };
}

const EMBEDDED_NOTE = 'with the embedded database stop the hub first (it has one user at a time)';

/** `connect-hub make-owner` and `connect-hub setup-link`: prints the result, resolves with the exit code. */
export async function runOwnerCommand(command: 'make-owner' | 'setup-link', config: HubConfig, args: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { workspace: { type: 'string' } } });
  } catch (e) {
    err.write(`connect-hub ${command}: ${(e as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (command === 'make-owner' ? positionals.length !== 1 : positionals.length !== 0) {
    err.write(command === 'make-owner' ? 'usage: connect-hub make-owner <email> [--workspace <id|name>]\n' : 'usage: connect-hub setup-link [--workspace <id|name>]\n');
    return 2;
  }
  let db: Database;
  try {
    db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  } catch (e) {
    err.write(`connect-hub ${command}: cannot open the database: ${(e as Error).message}${config.databaseUrl ? '' : ` (${EMBEDDED_NOTE})`}\n`);
    return 1;
  }
  try {
    const now = new Date();
    if (command === 'make-owner') {
      const { workspace, email, change } = await makeOwnerOf(db, positionals[0]!, values.workspace, now);
      const what = change === 'unchanged' ? 'was already owner of' : change === 'promoted' ? 'is now owner (was a member) of' : 'is now owner of';
      out.write(`${email} ${what} the workspace "${workspace.name}" (${workspace.id}).\n`);
      out.write(`Sign in at ${publicUrls(config, config.port, config.webPort).dashboard}/login with that address.\n`);
    } else {
      const { workspace, link, expiresAt } = await newSetupLink(db, config, values.workspace, now);
      out.write(`${link}\n`);
      err.write(`setup link for the workspace "${workspace.name}": whoever opens it and signs in becomes its owner. It works once, until ${expiresAt.toISOString()}; earlier setup links stop working.\n`);
    }
    return 0;
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    err.write(`connect-hub ${command}: ${e.code}: ${e.message}\n`);
    return 1;
  } finally {
    await db.close();
  }
}
