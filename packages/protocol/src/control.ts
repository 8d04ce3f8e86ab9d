/**
 * Control messages: JSON carried in CONTROL frames on stream 0, and the JSON payloads of OPEN frames.
 * Parsers here validate each against its schema (control-schemas.ts) and throw ProtocolError('BAD_MESSAGE') with a
 * message naming the field; a request's arguments are checked by parseControlArgs (BAD_REQUEST) where it is served.
 */

import { ConnectError, ProtocolError, type ErrorBody, type ErrorCode, isErrorCode } from './errors.js';
import { MAX_ERROR_MESSAGE, MAX_SERVICE_REF, MAX_SMALL_JSON } from './limits.js';
import type { E2EAnswer, E2EOffer } from './e2e.js';
import { check, checkUnknown, s, type Schema, type Static } from './schema.js';
import {
  ControlArgsSchemas,
  ControlResultSchemas,
  EndSessionsSchema,
  EventSchema,
  GoAwaySchema,
  HelloSchema,
  OpenAcceptSchema,
  OpenNoticeSchema,
  OpenRequestSchema,
  ReplySchema,
  RequestSchema,
  ServiceHealthSchema,
  ServiceInfoSchema,
  TokenSchema,
  WelcomeSchema,
} from './control-schemas.js';

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
  /**
   * The exposing agent's keys as it registered them (resolve and reach, while online): its Ed25519 identity key, its
   * X25519 static key for end-to-end sessions, and the identity's signature binding the two (e2e.ts signStaticKey).
   */
  keys?: AgentKeys;
}

/** An agent's public keys, as the hub lists them: what another agent pins and makes sessions with. */
export interface AgentKeys {
  identityKey: string;
  staticKey: string;
  staticSig: string;
}

export type ServiceProtocol = 'tcp' | 'http';

/**
 * One check of a service's health, as `connect reach --check` prints it and exposing agents report it:
 * `name` is dns, tcp, tls, http or latency; `hint` says what to do (mostly when `ok` is false).
 */
export interface HealthCheck {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
  /** How long the check took, or the latency measured (latency check), in milliseconds. */
  ms?: number;
}

/** A service's health as its exposing agent reported it (GET /v1/services `health`); `checkedAt` by the hub's clock. */
export interface ServiceHealth {
  ok: boolean;
  checkedAt: string;
  checks: HealthCheck[];
}

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
  /**
   * The exposing agent's direct port and its interfaces' addresses (direct.ts), after every welcome; port 0: it takes
   * no direct connections (--no-direct). The hub adds the address it sees the agent at.
   */
  advertise: { args: { port: number; addrs: string[] }; result: Record<string, never> };
  /**
   * A reaching agent asks how to reach `name` directly: the exposing agent's candidates and identity key, and a
   * ticket (direct.ts) good for DIRECT_TICKET_TTL_MS; or why there is no direct path (`unavailable`).
   */
  direct: { args: { name: string }; result: DirectAnswer };
  /** The exposing agent reports streams that ended on its direct port (the audit log and the dashboard's traffic). */
  direct_report: { args: { streams: DirectStreamReport[] }; result: Record<string, never> };
  /** A reaching agent tells which path new streams to `name` take now, and why not direct (status, dashboard). */
  path: { args: ReachPath; result: Record<string, never> };
}

/** The answer to `direct`: a way to the exposing agent's direct port, or why there is none. */
export interface DirectAnswer {
  direct?: {
    agentId: string;
    identityKey: string;
    candidates: { host: string; port: number; source: 'local' | 'hub' }[];
    ticket: string;
    /** When the ticket expires, ms since the epoch by the hub's clock. */
    expiresAt: number;
  };
  unavailable?: { code: ErrorCode; reason: string };
}

/** One stream that went over a direct port, as its exposing agent saw it. */
export interface DirectStreamReport {
  /** The reaching agent's id (from its ticket). */
  from: string;
  service: string;
  shareId?: string;
  /** When it opened, ms since the epoch (the exposing agent's clock), and how long it lasted. */
  openedAt: number;
  ms: number;
  /** Bytes to the service, and back from it (plaintext, as the exposing agent's target socket counted them). */
  bytesIn: number;
  bytesOut: number;
}

/** Which path a reach's new streams take. */
export interface ReachPath {
  name: string;
  mode: 'direct' | 'relay';
  /** The exposing agent's address the direct connection went to. */
  via?: string;
  /** Why not direct (mode 'relay'), in words a person reads. */
  reason?: string;
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

export type ControlOp = keyof ControlOps;

export interface HelloMessage {
  t: 'hello';
  v: number;
  agent: AgentInfo;
  /** The agent's Ed25519 identity public key (base64, 32 bytes), registered with the hub and shown to people. */
  identityKey?: string;
  /** The agent's X25519 static key for end-to-end sessions (base64, 32 bytes); needs identityKey. */
  staticKey?: string;
  /** identityKey's signature binding staticKey to it (base64, 64 bytes; e2e.ts signStaticKey). The hub checks it. */
  staticSig?: string;
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
  /** The hub's Ed25519 public key for direct tickets (base64, raw 32 bytes), when it hands out direct paths. */
  ticketKey?: string;
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
/**
 * End the end-to-end sessions made with an agent (`agentId`: it was revoked, or came back with another identity), or
 * those the exposing agent made with openers that came through a share (`shareId`: it was revoked). Open streams of
 * those sessions are cut by the hub itself; this drops the keys, so no later stream reuses them.
 */
export interface EndSessionsMessage {
  t: 'end_sessions';
  agentId?: string;
  shareId?: string;
  reason: string;
}
export type HubMessage = WelcomeMessage | ReplyMessage | EventMessage | TokenMessage | EndSessionsMessage;

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
  /**
   * Who opens: an agent, or the hub itself for a public link or hub port (agentId 'hub'). `ip` is its address;
   * `identityKey` and `staticKey` are the keys the opening agent registered in its hello (the exposing agent
   * checks that the session's Noise-proven static key is this one).
   */
  from: { agentId: string; label: string; ip?: string; identityKey?: string; staticKey?: string };
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

/** Parses a control message sent by an agent: a hello, or a request (its args are checked by parseControlArgs). */
export function parseAgentMessage(payload: Buffer): AgentMessage {
  const msg = parseObject(payload, 'control message');
  if (msg.t === 'hello') return { t: 'hello', ...check(HelloSchema, msg, 'hello', bad) };
  if (msg.t === 'req') {
    const req = check(RequestSchema, msg, 'req', bad);
    return { t: 'req', id: req.id, op: req.op, args: req.args as never };
  }
  throw bad(`unknown control message type ${JSON.stringify(msg.t)}`);
}

/**
 * Checks the arguments of a request against its op's schema (ControlArgsSchemas): where a request is served, once.
 * A refusal is a BAD_REQUEST ConnectError naming the argument. Unknown arguments are dropped.
 */
export function parseControlArgs<Op extends ControlOp>(op: Op, args: unknown): ControlOps[Op]['args'] {
  if (op === 'health') return healthReport(check(ControlArgsSchemas.health, args, '', badRequest)) as ControlOps[Op]['args'];
  const schema: Schema = ControlArgsSchemas[op as ControlOp];
  return checkUnknown(schema, args, '', badRequest) as ControlOps[Op]['args'];
}

/**
 * Checks the result of a successful reply against its op's schema (ControlResultSchemas), where the agent reads
 * it, once. A malformed result is the hub's fault: ProtocolError('BAD_MESSAGE') naming the field.
 */
export function parseControlResult<Op extends ControlOp>(op: Op, result: unknown): ControlOps[Op]['result'] {
  const schema: Schema = ControlResultSchemas[op as ControlOp];
  return checkUnknown(schema, result, `${op} result`, bad) as ControlOps[Op]['result'];
}

/** Parses a control message sent by the hub. */
export function parseHubMessage(payload: Buffer): HubMessage {
  const msg = parseObject(payload, 'control message');
  switch (msg.t) {
    case 'welcome':
      return { t: 'welcome', ...check(WelcomeSchema, msg, 'welcome', bad) };
    case 'reply': {
      const reply = check(ReplySchema, msg, 'reply', bad);
      if (reply.ok === true) return { t: 'reply', id: reply.id, ok: true, result: reply.result };
      return { t: 'reply', id: reply.id, ok: false, error: errorBody(reply.error) };
    }
    case 'token':
      return { t: 'token', ...check(TokenSchema, msg, 'token', bad) };
    case 'event':
      return { t: 'event', ...check(EventSchema, msg, 'event', bad) };
    case 'end_sessions':
      return { t: 'end_sessions', ...check(EndSessionsSchema, msg, 'end_sessions', bad) };
    default:
      throw bad(`unknown control message type ${JSON.stringify(msg.t)}`);
  }
}

/** Parses the OPEN payload an agent sends. */
export function parseOpenRequest(payload: Buffer): OpenRequest {
  return check(OpenRequestSchema, parseObject(payload, 'OPEN payload'), 'OPEN', bad);
}

/** Parses an OPEN_OK payload: empty (plaintext stream) or {e2e} with the handshake answer. */
export function parseOpenAccept(payload: Buffer): OpenAccept {
  if (payload.length === 0) return {};
  return check(OpenAcceptSchema, parseObject(payload, 'OPEN_OK payload'), 'OPEN_OK', bad);
}

/** Parses the OPEN payload the hub sends to an exposing agent. */
export function parseOpenNotice(payload: Buffer): OpenNotice {
  return check(OpenNoticeSchema, parseObject(payload, 'OPEN payload'), 'OPEN', bad);
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
  return check(GoAwaySchema, parseObject(payload, 'GOAWAY payload'), 'GOAWAY', bad);
}

/** Parses an error payload (OPEN_ERROR, RESET, GOAWAY); anything unreadable becomes PROTOCOL_ERROR. */
export function parseErrorPayload(payload: Buffer): ErrorBody {
  try {
    return errorBody(JSON.parse(payload.toString('utf8')));
  } catch {
    return { code: 'PROTOCOL_ERROR', message: 'unreadable error payload' };
  }
}

/**
 * An error body as read from the other side. Deliberately lenient (an error must always reach the person): an
 * unknown code reads as INTERNAL, a missing message as "unknown error", a long one is cut to MAX_ERROR_MESSAGE.
 */
function errorBody(value: unknown): ErrorBody {
  const v = (value ?? {}) as Record<string, unknown>;
  return {
    code: isErrorCode(v.code) ? v.code : 'INTERNAL',
    message: typeof v.message === 'string' ? v.message.slice(0, MAX_ERROR_MESSAGE) : 'unknown error',
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

function bad(message: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', message);
}

function badRequest(message: string): ConnectError {
  return new ConnectError('BAD_REQUEST', message);
}

/** Reads one non-empty string argument of at most `max` characters, or throws a BAD_REQUEST ConnectError naming it. */
export function requireString(args: Record<string, unknown>, key: string, max = MAX_SERVICE_REF): string {
  return check(s.string({ max, min: 1 }), Object.hasOwn(args, key) ? args[key] : undefined, key, badRequest);
}

/** Validates the args of a `health` request; throws BAD_REQUEST naming the field. `ok` is recomputed from the checks. */
export function parseHealthReport(args: Record<string, unknown>): HealthReport {
  return parseControlArgs('health', args);
}

function healthReport(args: Static<typeof ControlArgsSchemas.health>): HealthReport {
  // Tenths of a millisecond are all a person reads; a report stores no more.
  const checks = args.checks.map((c) => (c.ms === undefined ? c : { ...c, ms: Math.round(c.ms * 10) / 10 }));
  return { service: args.service, ok: checks.every((c) => c.ok), checks };
}

// The schemas (control-schemas.ts) and the interfaces above describe the same messages; the compiler holds them together.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
type Without<M, K extends string> = Omit<M, K>;
export type SchemasMatchInterfaces = [
  Holds<Same<Static<typeof HelloSchema>, Without<HelloMessage, 't'>>>,
  Holds<Same<Static<typeof WelcomeSchema>, Without<WelcomeMessage, 't'>>>,
  Holds<Same<Static<typeof TokenSchema>, Without<TokenMessage, 't'>>>,
  Holds<Same<Static<typeof EventSchema>, Without<EventMessage, 't'>>>,
  Holds<Same<Static<typeof EndSessionsSchema>, Without<EndSessionsMessage, 't'>>>,
  Holds<Same<Static<typeof OpenRequestSchema>, OpenRequest>>,
  Holds<Same<Static<typeof OpenNoticeSchema>, OpenNotice>>,
  Holds<Same<Static<typeof OpenAcceptSchema>, OpenAccept>>,
  Holds<Same<Static<typeof GoAwaySchema>, GoAwayMessage>>,
  Holds<Same<Static<typeof ControlArgsSchemas.expose>, ControlOps['expose']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.unexpose>, ControlOps['unexpose']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.resolve>, ControlOps['resolve']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.reach>, ControlOps['reach']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.unreach>, ControlOps['unreach']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.list>, ControlOps['list']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.access>, ControlOps['access']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.health>, Without<HealthReport, 'ok'>>>,
  Holds<Same<Static<typeof ServiceHealthSchema>, ServiceHealth>>,
  Holds<Same<Static<typeof ServiceInfoSchema>, ServiceInfo>>,
  Holds<Same<Static<typeof ControlResultSchemas.reach>, ControlOps['reach']['result']>>,
  Holds<Same<Static<typeof ControlResultSchemas.list>, ControlOps['list']['result']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.advertise>, ControlOps['advertise']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.direct>, ControlOps['direct']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.direct_report>, ControlOps['direct_report']['args']>>,
  Holds<Same<Static<typeof ControlArgsSchemas.path>, ControlOps['path']['args']>>,
  Holds<Same<Static<typeof ControlResultSchemas.direct>, ControlOps['direct']['result']>>,
];
