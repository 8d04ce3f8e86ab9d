/** The hub's configuration: read from the environment in exactly this module, validated at start-up. */

import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS, PING_INTERVAL_MS } from '@private-connect/protocol';

/** apps/web/dist, from this module's place in apps/hub/dist/src. */
const DEFAULT_WEB_DIST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

export interface HubConfig {
  /** Port of the API and agent endpoint (0 = any free port). */
  port: number;
  /** Address to bind. */
  host: string;
  /**
   * Second port serving exactly the same application (API, pages, dashboard), so that the dashboard at
   * http://host:3000 and its API share an origin and the session cookie (WEB_PORT, default 3000; 0 = any free
   * port; `off` = none).
   */
  webPort?: number;
  /** Address of the web port (WEB_HOST, default HUB_HOST). */
  webHost: string;
  /** The dashboard build served at / (WEB_DIST_DIR, default apps/web/dist next to the hub package). */
  webDistDir: string;
  /** PostgreSQL URL; when unset the embedded PGlite database in dataDir is used. */
  databaseUrl?: string;
  /** NATS server of a cluster of hubs on one PostgreSQL (cluster/); unset: this hub is alone. */
  natsUrl?: string;
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
  /** SMTP server for sign-in and invitation links (smtp:// or smtps://); unset = links are written to the log. */
  smtpUrl?: string;
  /** From address of those mails. */
  smtpFrom: string;
  /** Request limits per window (HUB_RATE_LIMIT_*, each `N/duration`, e.g. `5/1m`). */
  rateLimits: RateLimits;
  /** Domain under which public links are served as `<token>.<domain>` (PUBLIC_BASE_DOMAIN); unset = path links only. */
  publicBaseDomain?: string;
  /** A public-link request (or WebSocket) with no bytes either way for this long is cut (PUBLIC_LINK_IDLE_TIMEOUT). */
  linkIdleTimeoutMs: number;
  /** Ports the hub may give services for clients without an agent (HUB_TCP_PORT_RANGE, default 23000-23100). */
  tcpPortRange: { first: number; last: number };
  /** Address those ports are bound on (HUB_TCP_BIND, default 127.0.0.1). */
  tcpBind: string;
  /** PEM files of the hub's certificate and key (TLS_CERT, TLS_KEY): both ports then serve HTTPS and WSS. */
  tls?: { certFile: string; keyFile: string };
  /** Which peers may set X-Forwarded-For (TRUST_PROXY); false = none, the socket address is the client's. */
  trustProxy: TrustProxy;
  /** Bearer token for /metrics (METRICS_TOKEN); without it /metrics answers loopback clients only. */
  metricsToken?: string;
  /** How long a shutdown waits for open streams before closing them (SHUTDOWN_GRACE_MS, default 10 s). */
  shutdownGraceMs: number;
  /** Time a client has to send a request's headers, an agent's WebSocket upgrade included (HUB_HEADERS_TIMEOUT, default 60 s). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included, e.g. an upload through a public link (HUB_REQUEST_TIMEOUT, default 5 min). */
  requestTimeoutMs: number;
  /** Time an agent has after the WebSocket upgrade to send its hello (HUB_HANDSHAKE_TIMEOUT, default 10 s). */
  handshakeTimeoutMs: number;
  /** How often streams of expired shares (or shares revoked on another hub) are looked for and cut (SHARE_SWEEP_MS, default 1 s). */
  shareSweepMs: number;
  /** Most agent WebSockets open at once on one agent token (HUB_MAX_SOCKETS_PER_AGENT_TOKEN, default 8). */
  maxSocketsPerAgentToken: number;
  /** Most hub TCP ports one workspace may hold at once (HUB_TCP_PORTS_PER_WORKSPACE, default 10). */
  tcpPortsPerWorkspace: number;
}

/** TRUST_PROXY: `true` (any peer), a hop count, or the addresses / CIDRs of the proxies (proxy-addr syntax). */
export type TrustProxy = boolean | number | string[];

/** At most `max` requests per `windowMs`. */
export interface RateLimit {
  max: number;
  windowMs: number;
}

/** The hub's rate limits; the env variable of each is named in RATE_LIMIT_ENV. */
export interface RateLimits {
  /** Login / magic-link requests per email address. */
  loginPerEmail: RateLimit;
  /** Login / magic-link requests per client IP. */
  loginPerIp: RateLimit;
  /** Device-code requests (/v1/device/*) per client IP. */
  devicePerIp: RateLimit;
  /** API requests per credential (API key, agent token or session; the IP when there is none). */
  api: RateLimit;
  /** Refused agent WebSocket upgrades (failed authentication) per client IP before further upgrades get 429. */
  upgradeFailuresPerIp: RateLimit;
  /** API requests with missing, unknown, expired or revoked credentials per client IP before that address gets 429. */
  authFailuresPerIp: RateLimit;
}

/** Each rate limit, its environment variable and its default. */
export const RATE_LIMIT_ENV: Record<keyof RateLimits, [variable: string, fallback: string]> = {
  loginPerEmail: ['HUB_RATE_LIMIT_LOGIN_EMAIL', '5/1m'],
  loginPerIp: ['HUB_RATE_LIMIT_LOGIN_IP', '20/1m'],
  devicePerIp: ['HUB_RATE_LIMIT_DEVICE_IP', '30/1m'],
  api: ['HUB_RATE_LIMIT_API', '600/1m'],
  upgradeFailuresPerIp: ['HUB_RATE_LIMIT_UPGRADE_FAILURES', '30/1m'],
  authFailuresPerIp: ['HUB_RATE_LIMIT_AUTH_FAILURES', '60/1m'],
};

/** Parses `N/duration` (e.g. `600/1m`, `3/1s`). */
export function parseRateLimit(text: string, variable: string): RateLimit {
  const match = /^(\d+)\/(.+)$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) throw new ConfigError(variable, `"${text}" is not a rate limit; use requests/window, e.g. 600/1m or 5/30s`);
  const windowMs = parseDuration(match[2]!, variable);
  if (windowMs < 1) throw new ConfigError(variable, 'the window must be longer than 0');
  return { max: Number(match[1]), windowMs };
}

function rateLimits(env: NodeJS.ProcessEnv): RateLimits {
  const out = {} as RateLimits;
  for (const [key, [variable, fallback]] of Object.entries(RATE_LIMIT_ENV) as Array<[keyof RateLimits, [string, string]]>) {
    out[key] = parseRateLimit(env[variable] || fallback, variable);
  }
  return out;
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

function portRange(text: string): { first: number; last: number } {
  const match = /^(\d{1,5})\s*-\s*(\d{1,5})$/.exec(text.trim());
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || first < 1 || last > 65535 || first > last) {
    throw new ConfigError('HUB_TCP_PORT_RANGE', `"${text}" is not a port range; use first-last, e.g. 23000-23100`);
  }
  return { first, last };
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
  const natsUrl = env.NATS_URL || undefined;
  if (natsUrl !== undefined && !/^(nats|tls):\/\/|^[^:/]+:\d+$/.test(natsUrl)) {
    throw new ConfigError('NATS_URL', 'must look like nats://host:4222 (or host:port)');
  }
  if (natsUrl !== undefined && databaseUrl === undefined) {
    throw new ConfigError('NATS_URL', 'hubs of a cluster share one PostgreSQL: set DATABASE_URL too (the embedded database belongs to one hub)');
  }
  const smtpUrl = env.SMTP_URL || undefined;
  if (smtpUrl !== undefined && !/^smtps?:\/\//.test(smtpUrl)) {
    throw new ConfigError('SMTP_URL', 'must start with smtp:// or smtps://');
  }
  const smtpFrom = env.SMTP_FROM || 'Private Connect <no-reply@localhost>';
  if (!/@/.test(smtpFrom)) throw new ConfigError('SMTP_FROM', 'must contain an email address');
  const publicUrl = env.HUB_PUBLIC_URL || undefined;
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) {
    throw new ConfigError('HUB_PUBLIC_URL', 'must start with http:// or https://');
  }
  const publicBaseDomain = (env.PUBLIC_BASE_DOMAIN || '').trim().toLowerCase().replace(/^\.+|\.+$/g, '') || undefined;
  if (publicBaseDomain !== undefined && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/.test(publicBaseDomain)) {
    throw new ConfigError('PUBLIC_BASE_DOMAIN', `"${env.PUBLIC_BASE_DOMAIN}" is not a domain name, e.g. links.example.com`);
  }
  const tlsCert = env.TLS_CERT || undefined;
  const tlsKey = env.TLS_KEY || undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(tlsCert ? 'TLS_KEY' : 'TLS_CERT', 'TLS_CERT and TLS_KEY go together: set both (PEM file paths) or neither');
  }
  const metricsToken = env.METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters');
  const linkIdleTimeoutMs = parseDuration(env.PUBLIC_LINK_IDLE_TIMEOUT || '5m', 'PUBLIC_LINK_IDLE_TIMEOUT');
  if (linkIdleTimeoutMs < 1) throw new ConfigError('PUBLIC_LINK_IDLE_TIMEOUT', 'must be longer than 0');
  const headersTimeoutMs = positiveDuration(env, 'HUB_HEADERS_TIMEOUT', '60s');
  const requestTimeoutMs = positiveDuration(env, 'HUB_REQUEST_TIMEOUT', '5m');
  if (headersTimeoutMs > requestTimeoutMs) throw new ConfigError('HUB_HEADERS_TIMEOUT', `must not be longer than HUB_REQUEST_TIMEOUT (${requestTimeoutMs} ms)`);
  return {
    publicBaseDomain,
    linkIdleTimeoutMs,
    tcpPortRange: portRange(env.HUB_TCP_PORT_RANGE || '23000-23100'),
    tcpBind: env.HUB_TCP_BIND || '127.0.0.1',
    port: port(env.HUB_PORT, 'HUB_PORT', 3001),
    host: env.HUB_HOST || '0.0.0.0',
    webPort: env.WEB_PORT?.trim().toLowerCase() === 'off' ? undefined : port(env.WEB_PORT, 'WEB_PORT', 3000),
    webHost: env.WEB_HOST || env.HUB_HOST || '0.0.0.0',
    webDistDir: env.WEB_DIST_DIR ? resolve(env.WEB_DIST_DIR) : DEFAULT_WEB_DIST_DIR,
    databaseUrl,
    natsUrl,
    dataDir: resolve(env.HUB_DATA_DIR || '.data'),
    publicUrl,
    logLevel: env.LOG_LEVEL || 'info',
    agentTokenTtlMs: parseDuration(env.AGENT_TOKEN_TTL || '30d', 'AGENT_TOKEN_TTL'),
    bootstrapApiKey,
    pingIntervalMs: env.HUB_PING_INTERVAL ? parseDuration(env.HUB_PING_INTERVAL, 'HUB_PING_INTERVAL') : PING_INTERVAL_MS,
    idleTimeoutMs: env.HUB_IDLE_TIMEOUT ? parseDuration(env.HUB_IDLE_TIMEOUT, 'HUB_IDLE_TIMEOUT') : IDLE_TIMEOUT_MS,
    smtpUrl,
    smtpFrom,
    rateLimits: rateLimits(env),
    tls: tlsCert && tlsKey ? { certFile: resolve(tlsCert), keyFile: resolve(tlsKey) } : undefined,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    metricsToken,
    shutdownGraceMs: parseDuration(env.SHUTDOWN_GRACE_MS || '10s', 'SHUTDOWN_GRACE_MS'),
    headersTimeoutMs,
    requestTimeoutMs,
    handshakeTimeoutMs: positiveDuration(env, 'HUB_HANDSHAKE_TIMEOUT', `${HANDSHAKE_TIMEOUT_MS}ms`),
    shareSweepMs: positiveDuration(env, 'SHARE_SWEEP_MS', '1s'),
    maxSocketsPerAgentToken: positiveInteger(env, 'HUB_MAX_SOCKETS_PER_AGENT_TOKEN', 8),
    tcpPortsPerWorkspace: positiveInteger(env, 'HUB_TCP_PORTS_PER_WORKSPACE', 10),
  };
}

/** A duration variable that must be longer than 0 (a timeout of 0 would switch the protection off). */
function positiveDuration(env: NodeJS.ProcessEnv, variable: string, fallback: string): number {
  const ms = parseDuration(env[variable] || fallback, variable);
  if (ms < 1) throw new ConfigError(variable, 'must be longer than 0');
  return ms;
}

/** A count variable that must be a whole number of at least 1. */
function positiveInteger(env: NodeJS.ProcessEnv, variable: string, fallback: number): number {
  const text = env[variable]?.trim();
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) throw new ConfigError(variable, `"${text}" is not a whole number of at least 1`);
  return value;
}

/** Parses TRUST_PROXY: unset/false/0 = off, true, a hop count, or a comma list of addresses and CIDRs. */
export function parseTrustProxy(text: string | undefined): TrustProxy {
  const value = (text ?? '').trim();
  if (value === '' || /^(false|off|no|0)$/i.test(value)) return false;
  if (/^(true|on|yes)$/i.test(value)) return true;
  if (/^\d+$/.test(value)) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim()).filter(Boolean);
  for (const entry of entries) {
    if (!isTrustEntry(entry)) {
      throw new ConfigError('TRUST_PROXY', `"${entry}" is not an address or CIDR; use true, a hop count, or e.g. 10.0.0.0/8,loopback`);
    }
  }
  return entries;
}

const TRUST_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isTrustEntry(entry: string): boolean {
  if (TRUST_NAMES.has(entry)) return true;
  const [address, bits, extra] = entry.split('/');
  if (extra !== undefined || !address || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}
