/** `connect audit`: the workspace's audit log, newest first, as a table (or JSON). */

import { ConnectError } from '@private-connect/protocol';
import type { AuditEntry } from '@private-connect/api';
import { ApiClient, readConfig } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { table } from '../output.js';

export interface AuditOptions {
  limit?: string;
  /** Kind of object the event is about (agent, service, api_key, ...). */
  type?: string;
  action?: string;
  hub?: string;
  /** Reading the audit log needs an API key (or an admin session); an agent token is refused by the hub. */
  apiKey?: string;
}

export async function audit(ctx: Context, options: AuditOptions): Promise<number> {
  const config = await readConfig(ctx.home);
  const hubUrl = options.hub ?? ctx.env.hubUrl ?? config?.hubUrl;
  if (!hubUrl) throw new ConnectError('BAD_REQUEST', 'which hub? pass --hub https://hub.example.com (or set CONNECT_HUB_URL)');
  const credential = options.apiKey ?? config?.token;
  if (!credential) throw new ConnectError('NOT_ENROLLED', 'reading the audit log needs an API key: connect audit --api-key <pc_...>');
  const limit = options.limit === undefined ? 50 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ConnectError('BAD_REQUEST', '--limit must be a whole number from 1 to 500');
  const page = await new ApiClient({ hubUrl, credential, allowInsecure: ctx.env.allowInsecure })
    .audit({ limit, targetType: options.type, action: options.action })
    .catch((err: unknown) => {
      // The agent token of config.json may not read the log: say what may.
      if (err instanceof ConnectError && err.code === 'FORBIDDEN' && !options.apiKey) {
        throw new ConnectError(
          'FORBIDDEN',
          `this machine's agent token may not read the audit log; pass an API key of the workspace: connect audit --api-key <pc_...>, or sign in to the hub's dashboard as an owner or admin and open its Audit page`,
        );
      }
      throw err;
    });
  const human =
    page.events.length === 0
      ? 'no audit events match'
      : table(
          ['TIME', 'ACTION', 'ACTOR', 'TARGET', 'IP', 'DETAILS'],
          page.events.map((e) => [
            e.at.slice(0, 19).replace('T', ' '),
            actionLabel(e),
            `${e.actorType}${e.actorId ? `:${e.actorId.slice(0, 8)}` : ''}`,
            e.targetType ? `${e.targetType}${e.targetId ? `:${e.targetId.slice(0, 8)}` : ''}` : '',
            e.ip ?? '',
            JSON.stringify(e.metadata),
          ]),
        );
  ctx.out.result(page, human);
  return 0;
}

/**
 * The ACTION column: the action, and "×N" for an access entry that stands for N identical requests (the hub writes
 * identical accesses of one flush window as one entry with `metadata.count`; `metadata.lastAt` is the last one's time).
 */
export function actionLabel(entry: Pick<AuditEntry, 'action' | 'metadata'>): string {
  const count = entry.metadata.count;
  return typeof count === 'number' && count > 1 ? `${entry.action} ×${count}` : entry.action;
}
