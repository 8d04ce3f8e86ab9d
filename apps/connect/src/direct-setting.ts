/**
 * Direct paths in the CLI (docs/direct.md): the --direct, --no-direct and --direct-port flags, CONNECT_DIRECT and
 * config.json's remembered setting turned into AgentOptions.direct, and the words for a path and a direct port.
 */

import { ConnectError, type ReachPath } from '@private-connect/protocol';
import type { AgentConfig, AgentOptions, RunRecord } from '@private-connect/sdk';
import type { CliEnv } from './env.js';

/** What commander gives a command that takes the direct flags (undefined: the flag was not given). */
export interface DirectFlags {
  /** true with --direct, false with --no-direct. */
  direct?: boolean;
  /** --direct-port as typed. */
  directPort?: string;
}

/** The flags checked: bad values fail here, before anything connects. */
export interface DirectChoice {
  direct?: boolean;
  port?: number;
}

/** What an agent runs with: AgentOptions.direct, and why direct paths are off when they are. */
export interface DirectSetting {
  direct: NonNullable<AgentOptions['direct']>;
  /** Why off, as a person would undo it: "--no-direct", "CONNECT_DIRECT=off", "connect up --no-direct". */
  off?: string;
}

/** Checks --direct-port (1-65535) and that it comes without --no-direct. */
export function parseDirectFlags(flags: DirectFlags): DirectChoice {
  let port: number | undefined;
  if (flags.directPort !== undefined) {
    port = Number(flags.directPort);
    if (!/^\d+$/.test(flags.directPort.trim()) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ConnectError('BAD_REQUEST', `--direct-port must be 1-65535, got "${flags.directPort}"`);
    }
  }
  if (flags.direct === false && port !== undefined) {
    throw new ConnectError('BAD_REQUEST', '--direct-port and --no-direct contradict each other; pass one of them');
  }
  return { ...(flags.direct !== undefined ? { direct: flags.direct } : {}), ...(port !== undefined ? { port } : {}) };
}

/**
 * The setting an agent runs with: a flag first, then CONNECT_DIRECT, then config.json (connect up --no-direct,
 * --direct-port), else on. Always explicit, so the SDK's own reading of CONNECT_DIRECT never decides for the CLI.
 * A `reach` process exposes nothing: it gets no port (config.json's port belongs to the exposing processes).
 */
export function resolveDirect(
  choice: DirectChoice,
  env: Pick<CliEnv, 'direct'>,
  config: Pick<AgentConfig, 'direct' | 'directPort'>,
  command: 'expose' | 'reach' | 'daemon' = 'daemon',
): DirectSetting {
  if (choice.direct === false) return { direct: false, off: '--no-direct' };
  const on = (): DirectSetting => {
    const port = command === 'reach' ? undefined : (choice.port ?? config.directPort);
    return { direct: port !== undefined ? { port } : true };
  };
  if (choice.direct === true || choice.port !== undefined) return on();
  if (env.direct === false) return { direct: false, off: 'CONNECT_DIRECT=off' };
  if (env.direct === true) return on();
  if (config.direct === false) return { direct: false, off: 'connect up --no-direct' };
  return on();
}

/** Text from the hub or the other agent may hold anything: no control characters on a terminal. */
export const clean = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');

/** A reach's path for `connect reach`: "prod-db: direct via 10.0.0.2:41641" / "prod-db: relayed through the hub: <reason>". */
export function describePath(path: ReachPath): string {
  if (path.mode === 'direct') return `${clean(path.name)}: direct${path.via ? ` via ${clean(path.via)}` : ''}`;
  return `${clean(path.name)}: relayed through the hub${path.reason ? `: ${clean(path.reason)}` : ''}`;
}

/** The PATH column of `connect status`: "direct via 10.0.0.2:41641", "relayed: <reason>", "direct on port 41641", "direct off (--no-direct)". */
export function pathColumn(record: Pick<RunRecord, 'command' | 'path' | 'direct'>): string {
  if (record.command === 'reach') {
    if (!record.path) return '';
    if (record.path.mode === 'direct') return `direct${record.path.via ? ` via ${clean(record.path.via)}` : ''}`;
    return `relayed${record.path.reason ? `: ${clean(record.path.reason)}` : ''}`;
  }
  if (!record.direct) return '';
  return 'off' in record.direct ? `direct off (${clean(record.direct.off)})` : `direct on port ${record.direct.port}`;
}
