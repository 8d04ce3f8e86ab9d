/** `connect up`: enrol this machine with a hub (trade an API key for an agent token) or check the enrolment. */

import { hostname, platform } from 'node:os';
import { ConnectError } from '@private-connect/protocol';
import { ApiClient, readConfig, writeConfig } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color } from '../output.js';

export interface UpOptions {
  hub?: string;
  apiKey?: string;
  label?: string;
}

export async function up(ctx: Context, options: UpOptions): Promise<number> {
  const existing = await readConfig(ctx.home);
  const hubUrl = options.hub ?? ctx.env.hubUrl ?? existing?.hubUrl;
  if (!hubUrl) throw new ConnectError('BAD_REQUEST', 'which hub? pass --hub https://hub.example.com (or set CONNECT_HUB_URL)');
  if (!options.apiKey) {
    if (!existing) {
      throw new ConnectError('NOT_ENROLLED', `this machine is not enrolled yet; run: connect up --hub ${hubUrl} --api-key <pc_...>`);
    }
    const me = await new ApiClient({ hubUrl: existing.hubUrl, credential: existing.token, allowInsecure: ctx.env.allowInsecure }).me();
    ctx.out.result(
      { status: 'connected', hubUrl: existing.hubUrl, agentId: existing.agentId, label: existing.label, tokenExpiresAt: me.kind === 'agent' ? me.expiresAt : undefined },
      `${color.green('✓')} ${existing.label} is enrolled with ${existing.hubUrl} (agent ${existing.agentId})`,
    );
    return 0;
  }
  const client = new ApiClient({ hubUrl, credential: options.apiKey, allowInsecure: ctx.env.allowInsecure });
  const label = options.label ?? existing?.label ?? hostname();
  const enrolled = await client.enrol({ label, hostname: hostname(), platform: platform() });
  await writeConfig(ctx.home, {
    hubUrl,
    agentId: enrolled.agentId,
    workspaceId: enrolled.workspaceId,
    label: enrolled.label,
    token: enrolled.token,
    tokenExpiresAt: enrolled.expiresAt,
  });
  ctx.out.result(
    { status: 'enrolled', hubUrl, agentId: enrolled.agentId, workspaceId: enrolled.workspaceId, label: enrolled.label, tokenExpiresAt: enrolled.expiresAt, configDir: ctx.home },
    [
      `${color.green('✓')} enrolled ${color.bold(enrolled.label)} with ${hubUrl}`,
      color.dim(`  agent token saved in ${ctx.home}/config.json (expires ${enrolled.expiresAt.slice(0, 10)})`),
      '  next: connect expose localhost:5432 --name prod-db   or   connect reach <name>',
    ].join('\n'),
  );
  return 0;
}
