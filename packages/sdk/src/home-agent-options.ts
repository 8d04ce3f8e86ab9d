/**
 * What an agent of a config folder (`~/.connect`, CONNECT_HOME) runs with: the one place that turns the folder the
 * CLI writes into AgentOptions, shared by every `connect` command and by the SDK's reach() and expose().
 */

import type { AgentEvent, AgentOptions } from './agent/agent.js';
import { DEFAULT_BACKOFF } from './agent/backoff.js';
import { identityPath, knownAgentsPath, staticKeyPath, portsPath, requireConfig, writeConfig, type AgentConfig } from './config-store.js';

export interface HomeAgentSettings {
  /** Allow http:// / ws:// to a hub that is not on loopback. */
  allowInsecure?: boolean;
  /** Cap of the reconnect backoff (default 30 s). */
  reconnectMaxMs?: number;
  onEvent?: (event: AgentEvent) => void;
}

/**
 * The enrolled hub and token of `config`, the identity key, pins and remembered ports of `home`, the reconnect
 * policy, and a token the hub pushes after an admin rotated it (dashboard or API) saved to config.json for the next start.
 */
export function homeAgentOptions(
  home: string,
  config: Pick<AgentConfig, 'hubUrl' | 'token'> & Partial<Pick<AgentConfig, 'label' | 'hubUrls'>>,
  settings: HomeAgentSettings = {},
): AgentOptions {
  return {
    hubUrl: config.hubUrl,
    ...(config.hubUrls?.length ? { hubUrls: config.hubUrls } : {}),
    token: config.token,
    label: config.label,
    portsFile: portsPath(home),
    identityFile: identityPath(home),
    staticKeyFile: staticKeyPath(home),
    knownAgentsFile: knownAgentsPath(home),
    allowInsecure: settings.allowInsecure,
    backoff: { ...DEFAULT_BACKOFF, maxMs: settings.reconnectMaxMs ?? DEFAULT_BACKOFF.maxMs },
    // Read again at rotation time: another process of the folder may have changed the rest of config.json meanwhile.
    onToken: async (token, tokenExpiresAt) => writeConfig(home, { ...(await requireConfig(home)), token, tokenExpiresAt }),
    onEvent: settings.onEvent,
  };
}
