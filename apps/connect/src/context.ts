/** What every command gets: the output, the config folder, the environment, and the loaded agent config. */

import { requireConfig as requireHomeConfig, resolveHome, type AgentConfig } from '@private-connect/sdk';
import type { CliEnv } from './env.js';
import type { Output } from './output.js';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  debug?: boolean;
  /** --ca <file>: a CA certificate to trust for the hub. */
  ca?: string;
}

export interface Context {
  out: Output;
  home: string;
  env: CliEnv;
}

export function createContext(out: Output, env: CliEnv, options: GlobalOptions): Context {
  return { out, env, home: resolveHome(options.config, { CONNECT_HOME: env.home }) };
}

/** The enrolled agent's config, or NOT_ENROLLED with the command that fixes it. */
export function requireConfig(ctx: Context): Promise<AgentConfig> {
  return requireHomeConfig(ctx.home);
}
