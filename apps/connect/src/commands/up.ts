/**
 * `connect up`: enrol this machine with a hub (trade an API key for an agent token, or without one by device code)
 * or check the enrolment.
 */

import { hostname, platform } from 'node:os';
import { ConnectError } from '@private-connect/protocol';
import { ApiClient, readConfig, writeConfig, type AgentConfig } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color } from '../output.js';
import { requireConfig } from '../context.js';
import { tokenExpiryWarning } from '../token-warning.js';
import { enrolByDevice } from './device-enrol.js';
import { parseDirectFlags, type DirectChoice } from '../direct-setting.js';

export interface UpOptions {
  hub?: string;
  apiKey?: string;
  label?: string;
  /** Replace this agent's token now (the old one keeps working for 24 hours). */
  rotateToken?: boolean;
  /** Enrol by device code even when neither stdin nor stdout is a terminal (someone approves it in a browser). */
  device?: boolean;
  /** --no-direct / --direct: remember in config.json that the agents here take direct paths or not. */
  direct?: boolean;
  /** --direct-port: remember in config.json the port exposing agents here take direct connections on. */
  directPort?: string;
}

/** config.json's direct settings after `connect up --direct | --no-direct | --direct-port N` (a port is kept when turned off). */
export function withDirect<T extends Pick<AgentConfig, 'direct' | 'directPort'>>(config: T, choice: DirectChoice): T {
  const next = { ...config };
  if (choice.port !== undefined) next.directPort = choice.port;
  if (choice.direct === false) next.direct = false;
  else if (choice.direct === true || choice.port !== undefined) delete next.direct;
  return next;
}

/** "direct paths on (port 41641)" / "direct paths off": what config.json now says, for people. */
function describeDirect(config: Pick<AgentConfig, 'direct' | 'directPort'>): string {
  if (config.direct === false) return 'direct paths off: every stream of the agents here goes through the hub';
  return `direct paths on${config.directPort ? `; exposing agents here take direct connections on port ${config.directPort}` : ''}`;
}

/** A person may be there to read a device code: stdin or stdout is a terminal. */
export function atTerminal(): boolean {
  return process.stdin.isTTY === true || process.stdout.isTTY === true;
}

/** `--hub a,b,c`: the hub to enrol with, then more hubs of the same deployment to move to when it is lost. */
export function parseHubList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const hubs = [...new Set(value.split(',').map((h) => h.trim()).filter(Boolean))];
  return hubs.length > 0 ? hubs : undefined;
}

export async function up(ctx: Context, options: UpOptions): Promise<number> {
  const direct = parseDirectFlags(options);
  const changesDirect = direct.direct !== undefined || direct.port !== undefined;
  let existing = await readConfig(ctx.home);
  if (existing && changesDirect) {
    existing = withDirect(existing, direct);
    await writeConfig(ctx.home, existing);
    ctx.out.event(
      { type: 'direct_setting', direct: existing.direct !== false, ...(existing.directPort ? { directPort: existing.directPort } : {}), configDir: ctx.home },
      `${color.green('✓')} ${describeDirect(existing)} (saved in ${ctx.home}/config.json; running agents take it when they restart)`,
    );
  }
  const listed = parseHubList(options.hub ?? ctx.env.hubUrl);
  const hubUrl = listed?.[0] ?? existing?.hubUrl;
  const otherHubs = listed ? listed.slice(1) : existing?.hubUrls;
  if (!hubUrl) throw new ConnectError('BAD_REQUEST', 'which hub? pass --hub https://hub.example.com (or set CONNECT_HUB_URL)');
  if (options.rotateToken) return rotate(ctx);
  if (!options.apiKey) {
    if (!existing) {
      // Nobody to approve a code (a script, CI, a container): say how to enrol at once instead of waiting 15 minutes.
      if (!options.device && !atTerminal()) {
        throw new ConnectError(
          'NO_TERMINAL',
          `no terminal here to show a device code; enrol with an API key of the workspace: connect up --hub ${hubUrl} --api-key <pc_...>, ` +
            `or by device code: connect up --hub ${hubUrl} --device (prints a code to approve in a browser, and waits for it)`,
        );
      }
      return saveEnrolment(ctx, hubUrl, await enrolByDevice(ctx, hubUrl, options.label ?? hostname()), otherHubs, withDirect({}, direct));
    }
    const me = await new ApiClient({ hubUrl: existing.hubUrl, credential: existing.token, allowInsecure: ctx.env.allowInsecure }).me();
    ctx.out.result(
      { status: 'connected', hubUrl: existing.hubUrl, agentId: existing.agentId, label: existing.label, tokenExpiresAt: me.kind === 'agent' ? me.expiresAt : undefined },
      `${color.green('✓')} ${existing.label} is enrolled with ${existing.hubUrl} (agent ${existing.agentId})`,
    );
    if (me.kind === 'agent' && me.expiring && me.expiresInMs !== undefined) ctx.out.warn(tokenExpiryWarning(me.expiresAt, me.expiresInMs));
    return 0;
  }
  const client = new ApiClient({ hubUrl, credential: options.apiKey, allowInsecure: ctx.env.allowInsecure });
  const label = options.label ?? existing?.label ?? hostname();
  const enrolled = await client.enrol({ label, hostname: hostname(), platform: platform() });
  return saveEnrolment(ctx, hubUrl, enrolled, otherHubs, withDirect({ direct: existing?.direct, directPort: existing?.directPort }, direct));
}

/** Saves a new agent token in config.json and tells the person what to do next (API key and device flows). */
async function saveEnrolment(
  ctx: Context,
  hubUrl: string,
  enrolled: { agentId: string; workspaceId: string; label: string; token: string; expiresAt: string },
  otherHubs: string[] = [],
  direct: Pick<AgentConfig, 'direct' | 'directPort'> = {},
): Promise<number> {
  await writeConfig(ctx.home, {
    hubUrl,
    ...(otherHubs.length > 0 ? { hubUrls: otherHubs } : {}),
    ...(direct.direct === false ? { direct: false } : {}),
    ...(direct.directPort !== undefined ? { directPort: direct.directPort } : {}),
    agentId: enrolled.agentId,
    workspaceId: enrolled.workspaceId,
    label: enrolled.label,
    token: enrolled.token,
    tokenExpiresAt: enrolled.expiresAt,
  });
  ctx.out.result(
    { status: 'enrolled', hubUrl, ...(otherHubs.length > 0 ? { hubUrls: otherHubs } : {}), agentId: enrolled.agentId, workspaceId: enrolled.workspaceId, label: enrolled.label, tokenExpiresAt: enrolled.expiresAt, configDir: ctx.home },
    [
      `${color.green('✓')} enrolled ${color.bold(enrolled.label)} with ${hubUrl}${otherHubs.length > 0 ? ` (then ${otherHubs.join(', ')} if it is lost)` : ''}`,
      color.dim(`  agent token saved in ${ctx.home}/config.json (expires ${enrolled.expiresAt.slice(0, 10)})`),
      '  next: connect expose localhost:5432 --name prod-db   or   connect reach <name>',
    ].join('\n'),
  );
  return 0;
}

/** `connect up --rotate-token`: trades the current agent token for a new one and saves it in config.json. */
async function rotate(ctx: Context): Promise<number> {
  const config = await requireConfig(ctx);
  const rotated = await new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure }).rotateToken();
  await writeConfig(ctx.home, { ...config, token: rotated.token, tokenExpiresAt: rotated.expiresAt });
  ctx.out.result(
    { status: 'rotated', agentId: config.agentId, tokenExpiresAt: rotated.expiresAt, previousTokenValidUntil: rotated.previousTokenValidUntil, configDir: ctx.home },
    [
      `${color.green('✓')} new agent token saved in ${ctx.home}/config.json (expires ${rotated.expiresAt.slice(0, 10)})`,
      color.dim(`  the previous token keeps working until ${rotated.previousTokenValidUntil.slice(0, 16).replace('T', ' ')} UTC; restart running agents to use the new one`),
    ].join('\n'),
  );
  return 0;
}
