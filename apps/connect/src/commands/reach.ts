/**
 * `connect reach <name> [--port N]`: listen locally; every connection goes to the service through the hub. The name
 * is a service of the workspace, or `<share>/<service>` for a service another workspace shared (connect join).
 */

import { ConnectError, parseReachName } from '@private-connect/protocol';
import type { Context } from '../context.js';
import { runAgent } from '../run-agent.js';

export interface ReachOptions {
  port?: string;
  host?: string;
}

export async function reach(ctx: Context, name: string, options: ReachOptions): Promise<number> {
  parseReachName(name);
  let port: number | undefined;
  if (options.port !== undefined) {
    port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConnectError('BAD_REQUEST', `--port must be 0-65535, got "${options.port}"`);
  }
  return runAgent(ctx, { command: 'reach', name }, async (agent) => {
    const reached = await agent.reach(name, { port, host: options.host });
    return { port: reached.port };
  });
}
