/** Starts the agent behind reach() and expose(): the CLI's config folder (or explicit credentials), connected to the hub. */

import { ConnectError } from '@private-connect/protocol';
import { Agent, type AgentEvent } from './agent/agent.js';
import { requireConfig, resolveHome } from './config-store.js';
import { homeAgentOptions } from './home-agent-options.js';

/** How long reach() and expose() wait for the first connection to the hub before they reject with HUB_UNREACHABLE. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

export interface ConnectOptions {
  /**
   * The config folder `connect up` writes: config.json (hub URL and token), identity.pem, known_agents.json and
   * ports.json. Default CONNECT_HOME, else ~/.connect.
   */
  home?: string;
  /** The hub and an agent token; given both, config.json is not read (the folder still keeps the identity, pins and ports). */
  hubUrl?: string;
  token?: string;
  /** More hubs of the same deployment, tried in turn when `hubUrl` is lost (default: config.json's `hubUrls`). */
  hubUrls?: string[];
  /** Label sent to the hub (default: config.json's label, else the host name). */
  label?: string;
  /** Allow http:// / ws:// to a hub that is not on loopback. */
  allowInsecure?: boolean;
  /** Accept plaintext streams (like --no-e2e); a stream is plaintext only when both its agents accept it. Default false. */
  allowPlaintext?: boolean;
  /** An extra CA certificate (PEM) for a hub with a private certificate. */
  ca?: string | Buffer;
  /** Cap of the reconnect backoff in ms once running (default 30 s). */
  reconnectMaxMs?: number;
  /** The first connection to the hub may take this long (default DEFAULT_CONNECT_TIMEOUT_MS); reconnects later never give up. */
  connectTimeoutMs?: number;
  /** Everything the agent reports while it runs (the CLI prints these). */
  onEvent?: (event: AgentEvent) => void;
}

/** Creates the agent and resolves once the hub welcomed it; rejects (and stops it) when the hub refuses or stays out of reach. */
export async function startAgent(options: ConnectOptions = {}): Promise<Agent> {
  const home = resolveHome(options.home);
  const explicit = options.hubUrl !== undefined || options.token !== undefined;
  if (explicit && (!options.hubUrl || !options.token)) {
    throw new ConnectError('BAD_REQUEST', 'pass both hubUrl and token, or neither (then the config.json of the config folder is used)');
  }
  const stored = explicit ? { hubUrl: options.hubUrl!, token: options.token! } : await requireConfig(home);
  const credentials = options.hubUrls !== undefined ? { ...stored, hubUrls: options.hubUrls } : stored;
  const agent = new Agent({
    ...homeAgentOptions(home, credentials, { allowInsecure: options.allowInsecure, reconnectMaxMs: options.reconnectMaxMs, onEvent: options.onEvent }),
    // A token passed in was not read from config.json, so a rotated one is not saved there (the event says so).
    ...(explicit ? { onToken: undefined } : {}),
    ...(options.label !== undefined ? { label: options.label } : {}),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    allowPlaintext: options.allowPlaintext ?? false,
  });
  let lastError: ConnectError | undefined;
  const onDisconnected = ({ error }: { error: ConnectError }) => (lastError = error);
  agent.connection.on('disconnected', onDisconnected);
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  try {
    await agent.connection.ready(timeoutMs);
    return agent;
  } catch (err) {
    await agent.close();
    // Fatal refusals (UNAUTHORIZED, TOKEN_EXPIRED, ...) keep their code; only the timeout says what the retries met.
    if (err instanceof ConnectError && err.code === 'HUB_UNREACHABLE' && lastError) {
      throw new ConnectError('HUB_UNREACHABLE', `no connection to the hub at ${credentials.hubUrl} within ${timeoutMs} ms: ${lastError.message}`);
    }
    throw err;
  } finally {
    agent.connection.off('disconnected', onDisconnected);
  }
}

/** A ConnectError as it is; anything else (a failed listen, a bug) as INTERNAL with the original as its cause. */
export function asConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ConnectError('INTERNAL', message, { cause: err });
}
