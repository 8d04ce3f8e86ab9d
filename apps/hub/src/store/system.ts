/**
 * The only ways into an owner transaction (`Database.withSystem`: row level security not applied). Everything else
 * in the hub reads and writes workspace data through `db.withWorkspace(id, ...)`, as connect_app under RLS. Each
 * entry below is named for the reason it cannot have a workspace; test/storage-boundary.test.ts fails when
 * withSystem is called anywhere else (migrations call it in db/migrate.ts, the database's own mechanics).
 */

import type { Database, Queryable } from '../db/index.js';

/**
 * Credential and identity lookups. A secret (API key, agent token, session cookie, sign-in link, device code,
 * setup link) is looked up before any workspace is known: the row it finds says the workspace. Users, sessions,
 * magic links, device codes and setup links are not workspace data (a person belongs to several workspaces, a
 * login link to none), and connect_app has no grant on them; a user's memberships span workspaces too.
 */
export function withCredentials<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.withSystem(fn);
}

/**
 * Start-up and operator commands: the first start's workspace and key, creating a workspace (connect_app may not
 * insert workspaces), listing every workspace for `connect-hub`, closing the tunnels a previous run left open, and
 * the deployment's id. No request, so no workspace.
 */
export function withBootstrap<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.withSystem(fn);
}

/**
 * Lookups keyed on something hub-wide, that by nature belong to no single workspace yet or to several: a public
 * link's token (the proxy has only the token), the hub TCP ports every workspace holds (one port, one service
 * hub-wide: listening at start, and which ports are free), a share code being joined and a joined share read by its
 * grantee (the rows belong to the owning workspace), and the tunnels of a hub that died (every workspace's).
 * Each caller keys its query by hand on what it has.
 */
export function withCrossWorkspace<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.withSystem(fn);
}

/** `select 1`, for /readyz: reads no table, and a liveness probe has no workspace. */
export async function pingDatabase(db: Database): Promise<void> {
  await db.withSystem((tx) => tx.query('select 1'));
}
