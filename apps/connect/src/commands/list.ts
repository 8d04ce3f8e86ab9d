/**
 * `connect ls`: the services of the workspace (online, failing their health checks, or offline, with the reason), and
 * the services other workspaces share with it.
 */

import { ApiClient } from '@private-connect/sdk';
import { requireConfig, type Context } from '../context.js';
import { color, table } from '../output.js';
import { serviceStatus } from '../service-status.js';

export async function list(ctx: Context): Promise<number> {
  const config = await requireConfig(ctx);
  const api = new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure });
  const [listed, shares] = await Promise.all([api.services(), api.shares()]);
  const services = listed.map((s) => ({ ...s, ...serviceStatus(s) }));
  // Live joined shares only (`connect share ls` shows expired and revoked ones too): exactly what each share lists.
  const shared = shares.joined
    .filter((s) => s.state === 'joined')
    .flatMap((s) => s.services.map((service) => ({ name: `${s.alias}/${service}`, share: s.alias, from: s.ownerWorkspace, expiresAt: s.expiresAt })));
  const own =
    services.length === 0
      ? 'no services in this workspace yet; expose one with: connect expose localhost:5432 --name prod-db'
      : table(
          ['NAME', 'TARGET', 'AGENT', 'STATUS'],
          services.map((s) => [s.name, s.target, s.agentLabel, statusCell(s.status, s.reason)]),
        );
  const others =
    shared.length === 0
      ? ''
      : '\n\nShared with this workspace (connect reach NAME):\n' +
        table(['NAME', 'FROM', 'EXPIRES'], shared.map((s) => [s.name, s.from, s.expiresAt.slice(0, 16).replace('T', ' ') + ' UTC']));
  ctx.out.result({ services, shared }, own + others);
  return 0;
}

function statusCell(status: string, reason: string | undefined): string {
  if (status === 'online') return color.green('online');
  if (status === 'failing') return color.red(`failing checks: ${reason}`);
  return color.dim(`offline: ${reason}`);
}
