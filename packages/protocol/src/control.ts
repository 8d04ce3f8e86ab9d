/**
 * Control messages: JSON carried in CONTROL frames on stream 0, and the JSON payloads of OPEN frames.
 * Parsers here validate shape and size and throw ProtocolError('BAD_MESSAGE') with a message naming the field.
 */

import { ConnectError, ProtocolError, type ErrorBody, type ErrorCode, isErrorCode } from './errors.js';
import { MAX_GOAWAY_RECONNECT_MS, MAX_HEALTH_CHECKS, MAX_HELLO_HUBS, MAX_HEALTH_TEXT, MAX_LABEL, MAX_SMALL_JSON } from './limits.js';
import type { HealthCheck, ServiceHealth } from './api.js';
import { decodePublicKey, parseAnswer, parseOffer, type E2EAnswer, type E2EOffer } from './e2e.js';

/** What the hub tells agents about a service in their workspace. */
export interface ServiceInfo {
  id: string;
  name: string;
  /** host:port as the exposing agent sees it. */
  target: string;
  agentId: string;
  agentLabel: string;
  online: boolean;
  /** What the service speaks: 'http' services can be given method/path limits in shares. */
  protocol?: ServiceProtocol;
  /** The TCP port on the hub that forwards to this service (`connect expose --hub-port`), when it has one. */
  hubPort?: number;
  /**
   * End-to-end encryption of streams between agents, while it is online: 'required' (the default), or 'optional'
   * when its agent runs with --no-e2e (streams from agents that also pass --no-e2e are then plaintext).
   */
  e2e?: 'required' | 'optional';
  /** The latest health report of its exposing agent, in the answer to `resolve` and `reach` when there is one. */
  health?: ServiceHealth;
}

export type ServiceProtocol = 'tcp' | 'http';

export interface AgentInfo {
  version: string;
  label?: string;
  hostname?: string;
  platform?: string;
}

/** Operations an agent may request, with their arguments and results. */
export interface ControlOps {
  expose: { args: { name: string; target: string; replace?: boolean; protocol?: ServiceProtocol; hubPort?: boolean }; result: { service: ServiceInfo } };
  unexpose: { args: { name: string }; result: Record<string, never> };
  resolve: { args: { name: string }; result: { service: ServiceInfo } };
  reach: { args: { name: string; localPort: number }; result: { service: ServiceInfo; tunnelId: string } };
  unreach: { args: { tunnelId: string }; result: Record<string, never> };
  list: { args: Record<string, never>; result: { services: ServiceInfo[] } };
  /** The exposing agent reports one HTTP request that came through a share (for the owner's audit log). */
  access: { args: AccessReport; result: Record<string, never> };
  /** The exposing agent reports the result of checking one of its targets (stored in the hub's diagnostics). */
  health: { args: HealthReport; result: Record<string, never> };
}

/** What an exposing agent found when it checked the target of one of its services (see parseHealthReport). */
export interface HealthReport {
  service: string;
  /** True when every check passed (the hub recomputes it from `checks`). */
  ok: boolean;
  checks: HealthCheck[];
}

/** One request through a share, as the exposing agent saw and answered it. */
export interface AccessReport {
  shareId: string;
  service: string;
  method: string;
  path: string;
  status: number;
  /** Address of the reaching agent, as the hub told in the OPEN notice. */
  ip?: string;
  /** How many identical requests this report stands for (the agent merges those queued together); default 1. */
  count?: number;
}

/** Most requests one access report may stand for. */
export const MAX_ACCESS_REPORT_COUNT = 1_000_000;
export type ControlOp = keyof ControlOps;
const OPS: ReadonlySet<string> = new Set<ControlOp>(['expose', 'unexpose', 'resolve', 'reach', 'unreach', 'list', 'access', 'health']);

export interface HelloMessage {
  t: 'hello';
  v: number;
  agent: AgentInfo;
  /** The agent's Ed25519 identity public key (base64, 32 bytes), registered with the hub and shown to people. */
  identityKey?: string;
  /** The agent accepts plaintext streams (--no-e2e). */
  plain?: boolean;
  /**
   * How many hubs of the deployment the agent knows (its hub and the others it moves to), 1 to MAX_HELLO_HUBS.
   * Above 1 it can move: a hub of a cluster that carries more than its share may send it GOAWAY HUB_REBALANCING.
   */
  hubs?: number;
}
export interface RequestMessage<Op extends ControlOp = ControlOp> {
  t: 'req';
  id: number;
  op: Op;
  args: ControlOps[Op]['args'];
}
export type AgentMessage = HelloMessage | RequestMessage;

export interface WelcomeMessage {
  t: 'welcome';
  v: number;
  agentId: string;
  workspaceId: string;
  connectionId: string;
  label: string;
  /** When the agent's token stops working (ISO time; since protocol 1, optional). */
  tokenExpiresAt?: string;
  /** Milliseconds until then, by the hub's clock (so an agent with a wrong clock still warns in time). */
  tokenExpiresInMs?: number;
}
export type ReplyMessage =
  | { t: 'reply'; id: number; ok: true; result: unknown }
  | { t: 'reply'; id: number; ok: false; error: ErrorBody };
export interface EventMessage {
  t: 'event';
  event: 'service_online' | 'service_offline';
  name: string;
}
/**
 * A new agent token, pushed by the hub when a workspace admin rotates this agent's token (dashboard or API). The
 * connection carrying it already counts as authenticated by the new token; the agent keeps it for reconnects and
 * saves it where it keeps its credentials. The previous token keeps working for the rotation grace period.
 */
export interface TokenMessage {
  t: 'token';
  token: string;
  /** When the new token stops working (ISO time). */
  expiresAt: string;
  /** Milliseconds until then, by the hub's clock. */
  expiresInMs: number;
}
export type HubMessage = WelcomeMessage | ReplyMessage | EventMessage | TokenMessage;

/** OPEN payload from an agent: which service to reach, and its end-to-end handshake offer. */
export interface OpenRequest {
  service: string;
  /** The handshake offer (e2e.ts). Every agent sends one; the hub passes it on untouched. */
  e2e?: E2EOffer;
  /** The opener also accepts a plaintext stream (it runs with --no-e2e); plaintext is used only if the target agrees. */
  plain?: boolean;
}

/** OPEN_OK payload: the exposing agent's handshake answer, absent for a plaintext stream. */
export interface OpenAccept {
  e2e?: E2EAnswer;
}
/** OPEN payload from the hub to the exposing agent: which service, and who asks. */
export interface OpenNotice {
  service: string;
  /** Who opens: an agent, or the hub itself for a public link or hub port (agentId 'hub'). `ip` is its address. */
  from: { agentId: string; label: string; ip?: string };
  /** Set when the stream comes through a share; the exposing agent enforces its HTTP limits on HTTP services. */
  share?: SharePolicy;
  /** The opener's handshake offer, as it sent it. Absent when the hub itself opens (public links, hub ports). */
  e2e?: E2EOffer;
  /** The opener accepts plaintext (see OpenRequest.plain). */
  plain?: boolean;
}

/** The limits of a share that the exposing agent applies to an HTTP service's requests. */
export interface SharePolicy {
  id: string;
  name: string;
  /** Allowed methods, upper case; absent means any. */
  methods?: string[];
  /** Allowed path prefixes; absent means any. */
  paths?: string[];
  /** Requests per minute over the whole share; absent means no limit. */
  ratePerMin?: number;
}

function helloHubs(value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_HELLO_HUBS) throw bad(`hello.hubs must be a whole number from 1 to ${MAX_HELLO_HUBS}`);
  return value as number;
}

/** Parses a control message sent by an agent. */
export function parseAgentMessage(payload: Buffer): AgentMessage {
  const msg = parseObject(payload, 'control message');
  if (msg.t === 'hello') {
    const agent = msg.agent;
    if (!Number.isInteger(msg.v)) throw bad('hello.v must be an integer protocol version');
    if (typeof agent !== 'object' || agent === null) throw bad('hello.agent must be an object');
    const a = agent as Record<string, unknown>;
    return {
      t: 'hello',
      v: msg.v as number,
      agent: {
        version: str(a.version, 'hello.agent.version', 64),
        ...optStr(a, 'label', MAX_LABEL),
        ...optStr(a, 'hostname', MAX_LABEL),
        ...optStr(a, 'platform', 64),
      },
      ...(msg.identityKey !== undefined ? { identityKey: identityKey(msg.identityKey) } : {}),
      ...(msg.plain === true ? { plain: true } : {}),
      ...(msg.hubs !== undefined ? { hubs: helloHubs(msg.hubs) } : {}),
    };
  }
  if (msg.t === 'req') {
    if (!Number.isSafeInteger(msg.id) || (msg.id as number) < 0) throw bad('req.id must be a non-negative integer');
    if (typeof msg.op !== 'string' || !OPS.has(msg.op)) throw bad(`req.op must be one of ${[...OPS].join(', ')}`);
    const args = msg.args ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args)) throw bad('req.args must be an object');
    return { t: 'req', id: msg.id as number, op: msg.op as ControlOp, args: args as never };
  }
  throw bad(`unknown control message type ${JSON.stringify(msg.t)}`);
}

/** Parses a control message sent by the hub. */
export function parseHubMessage(payload: Buffer): HubMessage {
  const msg = parseObject(payload, 'control message');
  switch (msg.t) {
    case 'welcome':
      if (!Number.isSafeInteger(msg.v) || (msg.v as number) < 1) throw bad('welcome.v must be a protocol version number');
      return {
        t: 'welcome',
        v: msg.v as number,
        agentId: str(msg.agentId, 'welcome.agentId', 64),
        workspaceId: str(msg.workspaceId, 'welcome.workspaceId', 64),
        connectionId: str(msg.connectionId, 'welcome.connectionId', 64),
        label: str(msg.label, 'welcome.label', MAX_LABEL),
        ...(typeof msg.tokenExpiresAt === 'string' ? { tokenExpiresAt: str(msg.tokenExpiresAt, 'welcome.tokenExpiresAt', 64) } : {}),
        ...(Number.isSafeInteger(msg.tokenExpiresInMs) ? { tokenExpiresInMs: msg.tokenExpiresInMs as number } : {}),
      };
    case 'reply':
      if (!Number.isSafeInteger(msg.id)) throw bad('reply.id must be an integer');
      if (msg.ok === true) return { t: 'reply', id: msg.id as number, ok: true, result: msg.result };
      return { t: 'reply', id: msg.id as number, ok: false, error: errorBody(msg.error) };
    case 'token':
      if (!Number.isSafeInteger(msg.expiresInMs)) throw bad('token.expiresInMs must be an integer');
      if (typeof msg.token !== 'string' || msg.token.length === 0) throw bad('token.token must be a non-empty string');
      return { t: 'token', token: str(msg.token, 'token.token', 256), expiresAt: str(msg.expiresAt, 'token.expiresAt', 64), expiresInMs: msg.expiresInMs as number };
    case 'event':
      if (msg.event !== 'service_online' && msg.event !== 'service_offline') throw bad('unknown event');
      return { t: 'event', event: msg.event, name: str(msg.name, 'event.name', 255) };
    default:
      throw bad(`unknown control message type ${JSON.stringify(msg.t)}`);
  }
}

/** Parses the OPEN payload an agent sends. */
export function parseOpenRequest(payload: Buffer): OpenRequest {
  const msg = parseObject(payload, 'OPEN payload');
  return { service: str(msg.service, 'OPEN.service', 255), ...handshakeFields(msg) };
}

/** The handshake fields of an OPEN payload (request or notice): the offer and the plaintext consent. */
function handshakeFields(msg: Record<string, unknown>): { e2e?: E2EOffer; plain?: boolean } {
  if (msg.plain !== undefined && typeof msg.plain !== 'boolean') throw bad('OPEN.plain must be true or false');
  return { ...(msg.e2e !== undefined ? { e2e: parseOffer(msg.e2e) } : {}), ...(msg.plain === true ? { plain: true } : {}) };
}

/** Parses an OPEN_OK payload: empty (plaintext stream) or {e2e} with the handshake answer. */
export function parseOpenAccept(payload: Buffer): OpenAccept {
  if (payload.length === 0) return {};
  const msg = parseObject(payload, 'OPEN_OK payload');
  return msg.e2e === undefined ? {} : { e2e: parseAnswer(msg.e2e) };
}

/** Parses the OPEN payload the hub sends to an exposing agent. */
export function parseOpenNotice(payload: Buffer): OpenNotice {
  const msg = parseObject(payload, 'OPEN payload');
  const from = (msg.from ?? {}) as Record<string, unknown>;
  const notice: OpenNotice = {
    service: str(msg.service, 'OPEN.service', 255),
    from: { agentId: typeof from.agentId === 'string' ? from.agentId : '', label: typeof from.label === 'string' ? from.label : '', ...(typeof from.ip === 'string' ? { ip: from.ip.slice(0, 64) } : {}) },
  };
  if (msg.share !== undefined) notice.share = parseSharePolicy(msg.share);
  return { ...notice, ...handshakeFields(msg) };
}

function parseSharePolicy(value: unknown): SharePolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('OPEN.share must be an object');
  const v = value as Record<string, unknown>;
  const list = (field: string, max: number): string[] | undefined => {
    const items = v[field];
    if (items === undefined || items === null) return undefined;
    if (!Array.isArray(items) || items.length > 64) throw bad(`OPEN.share.${field} must be an array of at most 64 strings`);
    return items.map((item) => str(item, `OPEN.share.${field}[]`, max));
  };
  const policy: SharePolicy = { id: str(v.id, 'OPEN.share.id', 64), name: str(v.name, 'OPEN.share.name', 63) };
  const methods = list('methods', 16);
  const paths = list('paths', 512);
  if (methods) policy.methods = methods;
  if (paths) policy.paths = paths;
  if (v.ratePerMin !== undefined && v.ratePerMin !== null) {
    if (!Number.isSafeInteger(v.ratePerMin) || (v.ratePerMin as number) < 1) throw bad('OPEN.share.ratePerMin must be a positive integer');
    policy.ratePerMin = v.ratePerMin as number;
  }
  return policy;
}

/**
 * GOAWAY payload (hub → agent, stream 0): the hub is shutting down. The agent opens no new streams on this
 * connection, lets its open streams finish (the hub closes the socket once they have, or when its grace period
 * ends) and then reconnects to the same URL, after a random wait of at most `reconnectMs` and without backoff.
 */
export interface GoAwayMessage {
  code: ErrorCode;
  message: string;
  /** Upper bound of the agent's random wait before reconnecting, 0 ..= MAX_GOAWAY_RECONNECT_MS (default 500). */
  reconnectMs: number;
}

/** Parses and validates a GOAWAY payload; a malformed one throws ProtocolError('BAD_MESSAGE'). */
export function parseGoAway(payload: Buffer): GoAwayMessage {
  if (payload.length > MAX_SMALL_JSON) throw bad('GOAWAY payload is too large');
  const msg = parseObject(payload, 'GOAWAY payload');
  const reconnectMs = msg.reconnectMs === undefined ? 500 : msg.reconnectMs;
  if (!Number.isSafeInteger(reconnectMs) || (reconnectMs as number) < 0 || (reconnectMs as number) > MAX_GOAWAY_RECONNECT_MS) {
    throw bad(`GOAWAY.reconnectMs must be a whole number of milliseconds from 0 to ${MAX_GOAWAY_RECONNECT_MS}`);
  }
  if (!isErrorCode(msg.code)) throw bad('GOAWAY.code must be an error code');
  return { code: msg.code, message: str(msg.message ?? '', 'GOAWAY.message', 1024), reconnectMs: reconnectMs as number };
}

/** Parses an error payload (OPEN_ERROR, RESET, GOAWAY); anything unreadable becomes PROTOCOL_ERROR. */
export function parseErrorPayload(payload: Buffer): ErrorBody {
  try {
    return errorBody(JSON.parse(payload.toString('utf8')));
  } catch {
    return { code: 'PROTOCOL_ERROR', message: 'unreadable error payload' };
  }
}

function errorBody(value: unknown): ErrorBody {
  const v = (value ?? {}) as Record<string, unknown>;
  return {
    code: isErrorCode(v.code) ? v.code : 'INTERNAL',
    message: typeof v.message === 'string' ? v.message.slice(0, 1024) : 'unknown error',
  };
}

function parseObject(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw bad(`${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function str(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string') throw bad(`${field} must be a string`);
  if (value.length > max) throw bad(`${field} is longer than ${max} characters`);
  return value;
}

function optStr<K extends string>(obj: Record<string, unknown>, key: K, max: number): { [P in K]?: string } {
  const value = obj[key];
  if (value === undefined) return {};
  return { [key]: str(value, `hello.agent.${key}`, max) } as { [P in K]?: string };
}

function identityKey(value: unknown): string {
  decodePublicKey(value, 'hello.identityKey');
  return value as string;
}

function bad(message: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', message);
}

/** Reads a typed argument of a request, or throws a BAD_REQUEST ConnectError naming it. */
export function requireString(args: Record<string, unknown>, key: string, max = 255): string {
  const value = args[key];
  if (typeof value !== 'string' || value.length === 0) throw new ConnectError('BAD_REQUEST', `${key} must be a non-empty string`);
  if (value.length > max) throw new ConnectError('BAD_REQUEST', `${key} is longer than ${max} characters`);
  return value;
}

/** Validates the args of a `health` request; throws BAD_REQUEST naming the field. `ok` is recomputed from the checks. */
export function parseHealthReport(args: Record<string, unknown>): HealthReport {
  const service = requireString(args, 'service', 255);
  const checks = args.checks;
  if (!Array.isArray(checks) || checks.length === 0 || checks.length > MAX_HEALTH_CHECKS) {
    throw new ConnectError('BAD_REQUEST', `checks must be an array of 1 to ${MAX_HEALTH_CHECKS} checks`);
  }
  const parsed = checks.map((value, i): HealthCheck => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConnectError('BAD_REQUEST', `checks[${i}] must be an object`);
    const c = value as Record<string, unknown>;
    if (typeof c.name !== 'string' || !/^[a-z][a-z0-9_-]{0,31}$/.test(c.name)) {
      throw new ConnectError('BAD_REQUEST', `checks[${i}].name must be a lower-case word of at most 32 characters`);
    }
    if (typeof c.ok !== 'boolean') throw new ConnectError('BAD_REQUEST', `checks[${i}].ok must be true or false`);
    const check: HealthCheck = { name: c.name, ok: c.ok, detail: healthText(c.detail, `checks[${i}].detail`) };
    if (c.hint !== undefined) check.hint = healthText(c.hint, `checks[${i}].hint`);
    if (c.ms !== undefined) {
      if (typeof c.ms !== 'number' || !Number.isFinite(c.ms) || c.ms < 0 || c.ms > 3_600_000) {
        throw new ConnectError('BAD_REQUEST', `checks[${i}].ms must be a number of milliseconds from 0 to 3600000`);
      }
      check.ms = Math.round(c.ms * 10) / 10;
    }
    return check;
  });
  return { service, ok: parsed.every((c) => c.ok), checks: parsed };
}

function healthText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ConnectError('BAD_REQUEST', `${field} must be a string`);
  if (value.length > MAX_HEALTH_TEXT) throw new ConnectError('BAD_REQUEST', `${field} is longer than ${MAX_HEALTH_TEXT} characters`);
  return value;
}
