/**
 * `connect share SERVICE... --name N --expires 7d [--methods] [--paths] [--rate]`: offer services of this workspace
 * to ONE other workspace; prints the code (once) and the command that joins it. `connect share ls` lists the shares
 * this workspace made and joined; `connect share revoke ID` ends one, cutting its open connections at once.
 */

import { ConnectError, isUuid } from '@private-connect/protocol';
import type { ShareInfo } from '@private-connect/api';
import type { Context } from '../context.js';
import { hubApi, type HubApiOptions } from '../hub-api.js';
import { color, table } from '../output.js';

export interface ShareOptions extends HubApiOptions {
  name?: string;
  expires?: string;
  methods?: string;
  paths?: string;
  rate?: string;
}

const list = (text: string | undefined) => (text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean));
const when = (iso: string) => iso.slice(0, 16).replace('T', ' ') + ' UTC';

/** The limits of a share in words, e.g. "GET, HEAD on /api/v1; 60 requests a minute". */
export function describeLimits(share: { methods: string[] | null; paths: string[] | null; ratePerMin: number | null }): string {
  const parts: string[] = [];
  if (share.methods || share.paths) parts.push(`${share.methods?.join(', ') ?? 'any method'} on ${share.paths?.join(', ') ?? 'any path'}`);
  if (share.ratePerMin !== null) parts.push(`${share.ratePerMin} requests (or new connections) a minute`);
  return parts.join('; ') || 'none';
}

export async function share(ctx: Context, services: string[], options: ShareOptions): Promise<number> {
  if (services.length === 0) throw new ConnectError('BAD_REQUEST', 'name the services to share, e.g. connect share prod-db api --name acme --expires 7d');
  if (!options.name) throw new ConnectError('BAD_REQUEST', '--name is required: what the other workspace will call this share, e.g. --name acme-contractor');
  let rate: number | undefined;
  if (options.rate !== undefined) {
    rate = Number(options.rate);
    if (!Number.isInteger(rate) || rate < 1) throw new ConnectError('BAD_REQUEST', `--rate must be a whole number of requests a minute, got "${options.rate}"`);
  }
  const api = await hubApi(ctx, options, 'sharing');
  const methods = list(options.methods);
  const paths = list(options.paths);
  const created = await api.createShare({
    name: options.name,
    services,
    expiresIn: options.expires ?? '7d',
    ...(methods ? { methods } : {}),
    ...(paths ? { paths } : {}),
    ...(rate !== undefined ? { rate } : {}),
  });
  const join = `connect join ${created.code}`;
  const human = [
    `${color.green('✓')} shared ${created.share.services.join(', ')} as ${color.bold(created.share.name)} until ${when(created.share.expiresAt)} (id ${created.share.id})`,
    `  limits: ${describeLimits(created.share)}`,
    `  share code (shown once; one workspace can join it): ${color.bold(created.code)}`,
    `  the other workspace joins with:  ${join}`,
  ].join('\n');
  ctx.out.result({ ...created, join }, human);
  return 0;
}

export async function shareList(ctx: Context, options: HubApiOptions): Promise<number> {
  const shares = await (await hubApi(ctx, options, 'listing shares')).shares();
  const owned =
    shares.owned.length === 0
      ? 'no shares of this workspace; make one with: connect share SERVICE --name NAME --expires 7d'
      : table(
          ['ID', 'NAME', 'SERVICES', 'STATE', 'EXPIRES', 'JOINED BY', 'LIMITS'],
          shares.owned.map((s) => [s.id, s.name, s.services.join(','), s.state, when(s.expiresAt), s.grantee ? `${s.grantee.workspaceName} (as ${s.grantee.alias})` : '', describeLimits(s)]),
        );
  const joined =
    shares.joined.length === 0
      ? ''
      : '\n\nShared with this workspace:\n' +
        table(
          ['NAME', 'FROM', 'STATE', 'EXPIRES', 'LIMITS'],
          shares.joined.flatMap((s) => s.services.map((service) => [`${s.alias}/${service}`, s.ownerWorkspace, s.state, when(s.expiresAt), describeLimits(s)])),
        );
  ctx.out.result(shares, owned + joined);
  return 0;
}

export async function shareRevoke(ctx: Context, ref: string, options: HubApiOptions): Promise<number> {
  const api = await hubApi(ctx, options, 'revoking a share');
  let target: Pick<ShareInfo, 'id' | 'name'> = { id: ref, name: ref };
  if (!isUuid(ref)) {
    // A live share's name, or the start of an id, as `connect share ls` shows them.
    const matches = (await api.shares()).owned.filter((s) => (s.name === ref && s.state !== 'revoked') || s.id.startsWith(ref));
    if (matches.length !== 1) {
      throw new ConnectError(matches.length === 0 ? 'NOT_FOUND' : 'BAD_REQUEST', matches.length === 0 ? `Share not found: ${ref}` : `"${ref}" matches ${matches.length} shares; give the id`);
    }
    target = matches[0]!;
  }
  await api.revokeShare(target.id);
  ctx.out.result({ revoked: target.id }, `${color.green('✓')} revoked share ${target.name === target.id ? target.id : `${target.name} (${target.id})`}; its open connections were closed`);
  return 0;
}
