/** Service names, targets and auto-naming from well-known ports. */

import { ConnectError } from './errors.js';
import { MAX_SERVICE_NAME } from './limits.js';

const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** Returns the name if it is a valid service name (a DNS label), else throws INVALID_NAME. */
export function validateServiceName(name: string): string {
  if (name.length === 0 || name.length > MAX_SERVICE_NAME || !NAME_PATTERN.test(name)) {
    throw new ConnectError(
      'INVALID_NAME',
      `"${name.slice(0, 80)}" is not a valid service name: use a-z, 0-9 and - (not at the ends), at most ${MAX_SERVICE_NAME} characters`,
    );
  }
  return name;
}

/**
 * A name an agent reaches: a service of its own workspace (`prod-db`), or a service another workspace shared with
 * it, as `<alias>/<service>` (the alias is the share's name in the joining workspace). Service names cannot
 * contain '/', so the two never collide.
 */
export interface ReachName {
  /** The share's alias, for a shared service. */
  alias?: string;
  service: string;
}

/** Parses a reach name; each half of `alias/service` must be a valid name. Throws INVALID_NAME. */
export function parseReachName(name: string): ReachName {
  const slash = name.indexOf('/');
  if (slash < 0) return { service: validateServiceName(name) };
  if (name.indexOf('/', slash + 1) >= 0) {
    throw new ConnectError('INVALID_NAME', `"${name.slice(0, 80)}" is not a valid name: a shared service is <share>/<service>, with one /`);
  }
  return { alias: validateServiceName(name.slice(0, slash)), service: validateServiceName(name.slice(slash + 1)) };
}

export interface Target {
  host: string;
  port: number;
}

/** Parses `host:port`, `[v6]:port` or a bare `port` (meaning localhost). Throws INVALID_TARGET. */
export function parseTarget(input: string): Target {
  const text = input.trim().replace(/^tcp:\/\//, '');
  let host = 'localhost';
  let portText = text;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (text.includes(':')) {
    const at = text.lastIndexOf(':');
    if (text.indexOf(':') !== at) {
      throw new ConnectError('INVALID_TARGET', `"${input.slice(0, 80)}": put an IPv6 address in brackets, e.g. [::1]:5432`);
    }
    host = text.slice(0, at);
    portText = text.slice(at + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535 || !/^[A-Za-z0-9.\-_:]{1,253}$/.test(host)) {
    throw new ConnectError('INVALID_TARGET', `"${input.slice(0, 80)}" is not a target: expected host:port, e.g. localhost:5432`);
  }
  return { host, port };
}

/** Formats a target back to `host:port` (brackets around IPv6). */
export function formatTarget(target: Target): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** Well-known ports and the service names `connect <host:port>` gives them. */
export const WELL_KNOWN_PORTS: Readonly<Record<number, string>> = {
  22: 'ssh',
  80: 'http',
  443: 'https',
  1433: 'mssql',
  1521: 'oracle',
  2181: 'zookeeper',
  3000: 'web',
  3306: 'mysql',
  4222: 'nats',
  5432: 'postgres',
  5672: 'rabbitmq',
  5900: 'vnc',
  6379: 'redis',
  8080: 'http',
  8443: 'https',
  9000: 'minio',
  9092: 'kafka',
  9200: 'elasticsearch',
  11211: 'memcached',
  27017: 'mongodb',
};

/** The name `connect <host:port>` picks: the well-known name of the port, else `port-<n>`. */
export function autoName(target: Target): string {
  return WELL_KNOWN_PORTS[target.port] ?? `port-${target.port}`;
}
