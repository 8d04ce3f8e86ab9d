/** The REST client for one-shot commands (share, join, ...): the hub and credential from flags, env or config. */

import { ConnectError } from '@private-connect/protocol';
import { ApiClient, readConfig } from '@private-connect/sdk';
import type { Context } from './context.js';

export interface HubApiOptions {
  /** Hub URL (default: $CONNECT_HUB_URL, else the enrolled hub). */
  hub?: string;
  /** An API key of the workspace (pc_...) instead of this machine's agent token. */
  apiKey?: string;
}

/** A client authenticated with `--api-key`, else the enrolled agent's token. `what` names the command for errors. */
export async function hubApi(ctx: Context, options: HubApiOptions, what: string): Promise<ApiClient> {
  const config = await readConfig(ctx.home);
  const hubUrl = options.hub ?? ctx.env.hubUrl ?? config?.hubUrl;
  if (!hubUrl) throw new ConnectError('BAD_REQUEST', 'which hub? pass --hub https://hub.example.com (or set CONNECT_HUB_URL)');
  const credential = options.apiKey ?? config?.token;
  if (!credential) throw new ConnectError('NOT_ENROLLED', `${what} needs this machine enrolled (connect up) or an API key: --api-key <pc_...>`);
  return new ApiClient({ hubUrl, credential, allowInsecure: ctx.env.allowInsecure });
}
