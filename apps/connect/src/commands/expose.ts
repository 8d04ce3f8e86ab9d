/** `connect expose <host:port> --name <name>` (and `connect <host:port>` with an automatic name). */

import { ConnectError, autoName, formatTarget, parseTarget, validateServiceName } from '@private-connect/protocol';
import type { Context } from '../context.js';
import { runAgent } from '../run-agent.js';
import { parseDirectFlags } from '../direct-setting.js';

export interface ExposeOptions {
  name?: string;
  replace?: boolean;
  /** The service speaks HTTP (shares may then limit methods and paths). */
  http?: boolean;
  /** Also open a TCP port on the hub for it. */
  hubPort?: boolean;
  /** Seconds between health checks of the target, reported to the hub (default 30; 0: never). */
  checkInterval?: string;
  /** false with --no-e2e: also serve plaintext streams to agents that ask for them with --no-e2e. */
  e2e?: boolean;
  /** false with --no-direct: no direct port; true with --direct: one even when CONNECT_DIRECT=off. */
  direct?: boolean;
  /** --direct-port: the port direct connections come to (e.g. one opened in a firewall). */
  directPort?: string;
}

/** `--check-interval` in milliseconds; undefined keeps the agent's default. */
function checkIntervalMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0 || (seconds > 0 && seconds < 1) || seconds > 86_400) {
    throw new ConnectError('BAD_REQUEST', `--check-interval must be 0 (never) or 1 to 86400 seconds, got "${value}"`);
  }
  return Math.round(seconds * 1000);
}

export async function expose(ctx: Context, targetText: string, options: ExposeOptions): Promise<number> {
  const target = parseTarget(targetText);
  const name = validateServiceName(options.name ?? autoName(target));
  const targetString = formatTarget(target);
  const interval = checkIntervalMs(options.checkInterval);
  const direct = parseDirectFlags(options);
  return runAgent(ctx, { command: 'expose', name, target: targetString }, async (agent) => {
    await agent.expose(name, targetString, { replace: options.replace ?? false, protocol: options.http ? 'http' : 'tcp', hubPort: options.hubPort ?? false, ...(interval !== undefined ? { checkIntervalMs: interval } : {}) });
    return {};
  }, { allowPlaintext: options.e2e === false, direct });
}
