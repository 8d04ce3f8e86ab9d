/** reach(name): a local port for a service of the workspace, as `connect reach` gives, inside a Node program. */

import { parseReachName } from '@private-connect/protocol';
import type { Agent, ReachOptions } from './agent/agent.js';
import { asConnectError, startAgent, type ConnectOptions } from './start-agent.js';

export interface ReachServiceOptions extends ConnectOptions, ReachOptions {}

export interface Reached {
  name: string;
  /** Where the local listener is: connect to host:port to talk to the service. */
  host: string;
  port: number;
  /** The agent underneath (events, traffic, more reach() or expose() calls). */
  agent: Agent;
  /** Closes the listener (the port is free once this resolves) and stops the agent. */
  close(): Promise<void>;
}

/**
 * Reaches `name` (a service of the workspace, or `<share>/<service>`): resolves once the local port listens, with the
 * same stable port, reconnects and end-to-end encryption as `connect reach`. Rejects with a ConnectError
 * (SERVICE_NOT_FOUND, UNAUTHORIZED, NOT_ENROLLED, PORT_IN_USE, HUB_UNREACHABLE, ...) and leaves nothing running.
 *
 * @example
 * const { port, close } = await reach('prod-db');
 */
export async function reach(name: string, options: ReachServiceOptions = {}): Promise<Reached> {
  parseReachName(name);
  const agent = await startAgent(options);
  try {
    const reached = await agent.reach(name, { port: options.port, host: options.host });
    let closing: Promise<void> | undefined;
    return {
      name,
      host: reached.host,
      port: reached.port,
      agent,
      close: () => (closing ??= reached.close().then(() => agent.close())),
    };
  } catch (err) {
    await agent.close();
    throw asConnectError(err);
  }
}
