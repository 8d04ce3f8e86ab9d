/** The CLI's environment, read in this one module. Explicit flags win over these. */

import { ConnectError } from '@private-connect/protocol';

export interface CliEnv {
  home?: string;
  hubUrl?: string;
  allowInsecure: boolean;
  /** A CA certificate (PEM file) to trust for the hub (CONNECT_CA_FILE); `--ca` wins. */
  caFile?: string;
  /** Cap of the reconnect backoff in ms (CONNECT_RECONNECT_MAX_MS), for fast recovery in tests and LANs. */
  reconnectMaxMs?: number;
  /** Direct paths between agents (CONNECT_DIRECT=on|off; docs/direct.md); undefined: not set. --direct/--no-direct win. */
  direct?: boolean;
}

/** CONNECT_DIRECT: `on` or `off` (any case); unset or empty is no preference. */
function readDirect(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  const word = value.trim().toLowerCase();
  if (word === 'on') return true;
  if (word === 'off') return false;
  throw new ConnectError('BAD_REQUEST', `CONNECT_DIRECT must be "on" or "off", got "${value}"`);
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CliEnv {
  const max = env.CONNECT_RECONNECT_MAX_MS;
  let reconnectMaxMs: number | undefined;
  if (max !== undefined && max !== '') {
    reconnectMaxMs = Number(max);
    if (!Number.isInteger(reconnectMaxMs) || reconnectMaxMs < 100) {
      throw new Error('CONNECT_RECONNECT_MAX_MS must be a whole number of milliseconds, at least 100');
    }
  }
  return {
    home: env.CONNECT_HOME || undefined,
    hubUrl: env.CONNECT_HUB_URL || undefined,
    allowInsecure: env.CONNECT_ALLOW_INSECURE === 'true' || env.CONNECT_ALLOW_INSECURE === '1',
    caFile: env.CONNECT_CA_FILE || undefined,
    reconnectMaxMs,
    direct: readDirect(env.CONNECT_DIRECT),
  };
}
