/** First start: with an empty database, create a workspace, a one-time API key and a one-time setup link. */

import type { Database } from '../db/index.js';
import { withBootstrap } from './system.js';
import { apiKeyPrefix, generateApiKey, hashSecret } from '../secrets.js';
import { recordAudit } from './audit.js';
import { createSetupLink } from './setup-links.js';

export interface Bootstrap {
  workspaceId: string;
  /** Shown once, never stored in clear. */
  apiKey: string;
  /** The setup link's secret (store/setup-links.ts): whoever signs in through it owns the workspace. Shown once. */
  setupToken: string;
  setupExpiresAt: Date;
}

/**
 * Creates the first workspace, its API key and its setup link if there is no workspace yet; returns undefined
 * otherwise. `now` is the hub's clock (the setup link expires from it).
 */
export async function bootstrapIfEmpty(db: Database, presetKey: string | undefined, now: Date): Promise<Bootstrap | undefined> {
  return withBootstrap(db, async (tx) => {
    // Serialise concurrent first starts of several hubs on one database.
    await tx.query('select pg_advisory_xact_lock(727001)');
    const [{ count }] = (await tx.query<{ count: number }>('select count(*)::int as count from workspaces')) as [{ count: number }];
    if (count > 0) return undefined;
    const [ws] = await tx.query<{ id: string }>(`insert into workspaces (name) values ('default') returning id`);
    const apiKey = presetKey ?? generateApiKey();
    const [key] = await tx.query<{ id: string }>(
      `insert into api_keys (workspace_id, name, prefix, key_hash) values ($1, 'bootstrap', $2, $3) returning id`,
      [ws!.id, apiKeyPrefix(apiKey), hashSecret(apiKey)],
    );
    await recordAudit(tx, ws!.id, { actorType: 'system', action: 'api_key.create', targetType: 'api_key', targetId: key!.id, metadata: { name: 'bootstrap' } });
    const setup = await createSetupLink(tx, ws!.id, now);
    return { workspaceId: ws!.id, apiKey, setupToken: setup.token, setupExpiresAt: setup.expiresAt };
  });
}

/** Creates a new API key in a workspace (operator command `connect-hub create-api-key`). */
export async function createApiKey(db: Database, workspaceId: string, name: string): Promise<string> {
  const apiKey = generateApiKey();
  await db.withWorkspace(workspaceId, async (tx) => {
    const [key] = await tx.query<{ id: string }>(
      `insert into api_keys (workspace_id, name, prefix, key_hash) values ($1, $2, $3, $4) returning id`,
      [workspaceId, name, apiKeyPrefix(apiKey), hashSecret(apiKey)],
    );
    await recordAudit(tx, workspaceId, { actorType: 'system', action: 'api_key.create', targetType: 'api_key', targetId: key!.id, metadata: { name } });
  });
  return apiKey;
}
