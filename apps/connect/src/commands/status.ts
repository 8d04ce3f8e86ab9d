/** `connect status`: this machine's enrolment, the hub's view of it, and the agent processes running here. */

import { ConnectError } from '@private-connect/protocol';
import { ApiClient, listRuns, readConfig } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color, table } from '../output.js';
import { tokenExpiryWarning } from '../token-warning.js';

export async function status(ctx: Context): Promise<number> {
  const config = await readConfig(ctx.home);
  const runs = await listRuns(ctx.home);
  if (!config) {
    ctx.out.result({ enrolled: false, configDir: ctx.home, running: runs }, `not enrolled (no ${ctx.home}/config.json); run: connect up --hub <url> --api-key <pc_...>`);
    return 1;
  }
  let hub: { reachable: boolean; error?: string; tokenExpiresAt?: string; tokenExpiring?: boolean; tokenExpiresInMs?: number } = { reachable: false };
  try {
    const me = await new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure, timeoutMs: 5000 }).me();
    hub = me.kind === 'agent' ? { reachable: true, tokenExpiresAt: me.expiresAt, tokenExpiring: me.expiring, tokenExpiresInMs: me.expiresInMs } : { reachable: true };
  } catch (err) {
    hub = { reachable: false, error: err instanceof ConnectError ? `${err.code}: ${err.message}` : String(err) };
  }
  const lines = [
    `agent   ${color.bold(config.label)} (${config.agentId})`,
    `hub     ${config.hubUrl}  ${hub.reachable ? color.green('reachable') : color.red(`unreachable: ${hub.error}`)}`,
    `token   expires ${(hub.tokenExpiresAt ?? config.tokenExpiresAt).slice(0, 10)}${hub.tokenExpiring && hub.tokenExpiresInMs !== undefined ? `  ${color.yellow(`warning: ${tokenExpiryWarning(hub.tokenExpiresAt!, hub.tokenExpiresInMs)}`)}` : ''}`,
    `config  ${ctx.home}`,
    '',
    runs.length === 0
      ? 'nothing running here; start with connect expose ... or connect reach ...'
      : table(['COMMAND', 'SERVICE', 'DETAIL', 'PID'], runs.map((r) => [r.command, r.name, r.command === 'reach' ? `127.0.0.1:${r.port}` : (r.target ?? ''), String(r.pid)])),
  ];
  ctx.out.result(
    { enrolled: true, agentId: config.agentId, label: config.label, hubUrl: config.hubUrl, hub, configDir: ctx.home, running: runs },
    lines.join('\n'),
  );
  return 0;
}
