/** expose(target, { name }): a local service in the workspace, as `connect expose` does, inside a Node program. */

import { parseTarget, validateServiceName, type ServiceInfo } from '@private-connect/protocol';
import type { Agent, ExposeOptions } from './agent/agent.js';
import { asConnectError, startAgent, type ConnectOptions } from './start-agent.js';

export interface ExposeServiceOptions extends ConnectOptions, ExposeOptions {
  /** The service's name in the workspace (a DNS label). */
  name: string;
}

export interface Exposed {
  name: string;
  /** The service as the hub accepted it. */
  service: ServiceInfo;
  /** The agent underneath (events, traffic, more reach() or expose() calls). */
  agent: Agent;
  /** Stops the agent: the service goes offline and its open connections end. */
  close(): Promise<void>;
}

/**
 * Exposes `target` (host:port) as `options.name`: resolves once the hub accepted the service, which is then
 * announced again after every reconnect. Rejects with a ConnectError (SERVICE_NAME_TAKEN, UNAUTHORIZED,
 * NOT_ENROLLED, INVALID_TARGET, HUB_UNREACHABLE, ...) and leaves nothing running.
 *
 * @example
 * const { close } = await expose('localhost:5432', { name: 'prod-db' });
 */
export async function expose(target: string, options: ExposeServiceOptions): Promise<Exposed> {
  validateServiceName(options.name);
  parseTarget(target);
  const agent = await startAgent(options);
  try {
    const service = await agent.expose(options.name, target, {
      replace: options.replace,
      protocol: options.protocol,
      hubPort: options.hubPort,
      checkIntervalMs: options.checkIntervalMs,
    });
    let closing: Promise<void> | undefined;
    return { name: options.name, service, agent, close: () => (closing ??= agent.close()) };
  } catch (err) {
    await agent.close();
    throw asConnectError(err);
  }
}
