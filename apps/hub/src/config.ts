/** The hub's configuration: read from the environment in exactly this module, validated at start-up. */

import { resolve } from 'node:path';
import { IDLE_TIMEOUT_MS, PING_INTERVAL_MS } from '@private-connect/protocol';

export interface HubConfig {
  /** Port of the API and agent endpoint (0 = any free port). */
  port: number;
  /** Address to bind. */
  host: string;
  /** PostgreSQL URL; when unset the embedded PGlite database in dataDir is used. */
  databaseUrl?: string;
  /** Folder for the embedded database. */
  dataDir: string;
  /** URL agents use to reach this hub, printed in the start-up instructions. */
  publicUrl?: string;
  logLevel: string;
  /** Lifetime of a new agent token. */
  agentTokenTtlMs: number;
  /** An API key to create on first start instead of a random one (automation); `pc_` + 32 base62 characters. */
  bootstrapApiKey?: string;
  pingIntervalMs: number;
  idleTimeoutMs: number;
}

/** Thrown when an environment variable is invalid; the message names the variable. */
export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const DURATION = /^(\d+)(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `30d`, `12h`, `90s`, `500ms` or plain milliseconds. */
export function parseDuration(text: string, variable: string): number {
  const match = DURATION.exec(text.trim());
  if (!match) throw new ConfigError(variable, `"${text}" is not a duration; use e.g. 30d, 12h, 90s or 500ms`);
  return Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!;
}

function port(text: string | undefined, variable: string, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new ConfigError(variable, `"${text}" is not a port (0-65535)`);
  return value;
}

/** Builds the configuration from environment variables, failing fast with the variable's name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const bootstrapApiKey = env.HUB_BOOTSTRAP_API_KEY || undefined;
  if (bootstrapApiKey !== undefined && !/^pc_[A-Za-z0-9]{32}$/.test(bootstrapApiKey)) {
    throw new ConfigError('HUB_BOOTSTRAP_API_KEY', 'must be pc_ followed by 32 letters or digits');
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must start with postgres:// or postgresql://');
  }
  const publicUrl = env.HUB_PUBLIC_URL || undefined;
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) {
    throw new ConfigError('HUB_PUBLIC_URL', 'must start with http:// or https://');
  }
  return {
    port: port(env.HUB_PORT, 'HUB_PORT', 3001),
    host: env.HUB_HOST || '0.0.0.0',
    databaseUrl,
    dataDir: resolve(env.HUB_DATA_DIR || '.data'),
    publicUrl,
    logLevel: env.LOG_LEVEL || 'info',
    agentTokenTtlMs: parseDuration(env.AGENT_TOKEN_TTL || '30d', 'AGENT_TOKEN_TTL'),
    bootstrapApiKey,
    pingIntervalMs: env.HUB_PING_INTERVAL ? parseDuration(env.HUB_PING_INTERVAL, 'HUB_PING_INTERVAL') : PING_INTERVAL_MS,
    idleTimeoutMs: env.HUB_IDLE_TIMEOUT ? parseDuration(env.HUB_IDLE_TIMEOUT, 'HUB_IDLE_TIMEOUT') : IDLE_TIMEOUT_MS,
  };
}
