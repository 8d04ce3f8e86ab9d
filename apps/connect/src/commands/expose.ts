/** `connect expose <host:port> --name <name>` (and `connect <host:port>` with an automatic name). */

import { autoName, formatTarget, parseTarget, validateServiceName } from '@private-connect/protocol';
import type { Context } from '../context.js';
import { runAgent } from '../run-agent.js';

export interface ExposeOptions {
  name?: string;
  replace?: boolean;
  /** The service speaks HTTP (shares may then limit methods and paths). */
  http?: boolean;
  /** Also open a TCP port on the hub for it. */
  hubPort?: boolean;
}

export async function expose(ctx: Context, targetText: string, options: ExposeOptions): Promise<number> {
  const target = parseTarget(targetText);
  const name = validateServiceName(options.name ?? autoName(target));
  const targetString = formatTarget(target);
  return runAgent(ctx, { command: 'expose', name, target: targetString }, async (agent) => {
    await agent.expose(name, targetString, { replace: options.replace ?? false, protocol: options.http ? 'http' : 'tcp', hubPort: options.hubPort ?? false });
    return {};
  });
}
