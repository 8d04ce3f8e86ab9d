/** `connect join CODE [--as ALIAS]`: join another workspace's share; its services are reached as ALIAS/SERVICE. */

import type { Context } from '../context.js';
import { hubApi, type HubApiOptions } from '../hub-api.js';
import { color } from '../output.js';
import { describeLimits } from './share.js';

export interface JoinOptions extends HubApiOptions {
  /** The name to reach the share's services by (default: the share's name). */
  as?: string;
}

export async function join(ctx: Context, code: string, options: JoinOptions): Promise<number> {
  const api = await hubApi(ctx, options, 'joining a share');
  const joined = await api.joinShare(code.trim(), options.as);
  const reach = joined.services.map((service) => `connect reach ${joined.alias}/${service}`);
  const human = [
    `${color.green('✓')} joined ${color.bold(joined.name)} from workspace "${joined.ownerWorkspace}" as ${color.bold(joined.alias)}, until ${joined.expiresAt.slice(0, 16).replace('T', ' ')} UTC`,
    `  limits: ${describeLimits(joined)}`,
    '  reach its services with:',
    ...reach.map((line) => `    ${line}`),
  ].join('\n');
  ctx.out.result({ share: joined, reach }, human);
  return 0;
}
