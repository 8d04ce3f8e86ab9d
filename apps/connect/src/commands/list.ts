/** `connect ls`: the services of the workspace, online or not. */

import { ApiClient } from '@private-connect/sdk';
import { requireConfig, type Context } from '../context.js';
import { color, table } from '../output.js';

export async function list(ctx: Context): Promise<number> {
  const config = await requireConfig(ctx);
  const services = await new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure }).services();
  const human =
    services.length === 0
      ? 'no services in this workspace yet; expose one with: connect expose localhost:5432 --name prod-db'
      : table(
          ['NAME', 'TARGET', 'AGENT', 'STATUS'],
          services.map((s) => [s.name, s.target, s.agentLabel, s.online ? color.green('online') : color.dim('offline')]),
        );
  ctx.out.result({ services }, human);
  return 0;
}
