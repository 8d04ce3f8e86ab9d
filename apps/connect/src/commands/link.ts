/**
 * `connect link <service>`: a public URL for a service, served by the hub as an HTTP reverse proxy (no login: the
 * URL is the key). `connect link ls` lists the workspace's links; `connect link revoke <id>` ends one at once.
 */

import { ConnectError, validateServiceName } from '@private-connect/protocol';
import type { LinkInfo } from '@private-connect/api';
import type { Context } from '../context.js';
import { hubApi, type HubApiOptions } from '../hub-api.js';
import { table } from '../output.js';

export interface LinkOptions extends HubApiOptions {
  /** Lifetime: 30m, 12h, 7d, 2w (the hub's default is 7d). */
  expires?: string;
  /** Allowed methods, comma-separated (default: any). */
  methods?: string;
  /** Allowed path prefixes, comma-separated (default: any). */
  paths?: string;
  /** Requests per minute over the whole link. */
  rate?: string;
}

const list = (text: string | undefined) => text?.split(',').map((s) => s.trim()).filter(Boolean);

/** What a link allows, in a few words: `GET, HEAD · /api · 120/min`. */
function limits(link: Pick<LinkInfo, 'methods' | 'paths' | 'ratePerMin'>): string {
  const parts = [link.methods?.join(', ') ?? 'any method', link.paths?.join(', ') ?? 'any path'];
  if (link.ratePerMin) parts.push(`${link.ratePerMin}/min`);
  return parts.join(' · ');
}

export async function createLinkCommand(ctx: Context, service: string, options: LinkOptions): Promise<number> {
  validateServiceName(service);
  const rate = options.rate === undefined ? undefined : Number(options.rate);
  if (rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > 1_000_000)) throw new ConnectError('BAD_REQUEST', '--rate must be a whole number of requests per minute, from 1 to 1000000');
  const api = await hubApi(ctx, options, 'creating a public link');
  const created = await api.createLink({ service, expiresIn: options.expires, methods: list(options.methods), paths: list(options.paths), rate });
  const human = [
    `Public link to ${service} (${limits(created.link)}), until ${created.link.expiresAt.slice(0, 16).replace('T', ' ')} UTC:`,
    `  ${created.url}`,
    ...(created.subdomainUrl ? [`  ${created.subdomainUrl}`] : []),
    'Anyone with this URL can use it; it is shown only now.',
    `Revoke it with: connect link revoke ${created.link.id}`,
  ].join('\n');
  ctx.out.result(created, human);
  return 0;
}

export async function listLinksCommand(ctx: Context, options: HubApiOptions): Promise<number> {
  const links = await (await hubApi(ctx, options, 'listing public links')).links();
  const human =
    links.length === 0
      ? 'no public links; create one with: connect link <service>'
      : table(
          ['ID', 'SERVICE', 'PREFIX', 'STATE', 'EXPIRES', 'LIMITS'],
          links.map((l) => [l.id, l.service, `${l.prefix}…`, l.state, l.expiresAt.slice(0, 16).replace('T', ' '), limits(l)]),
        );
  ctx.out.result({ links }, human);
  return 0;
}

export async function revokeLinkCommand(ctx: Context, id: string, options: HubApiOptions): Promise<number> {
  await (await hubApi(ctx, options, 'revoking a public link')).revokeLink(id);
  ctx.out.result({ revoked: id }, `revoked public link ${id}; it answers 410 from now on`);
  return 0;
}
