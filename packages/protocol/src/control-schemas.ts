/**
 * The schema of every control message and OPEN payload (schema.ts), with the named limits of limits.ts. control.ts
 * parses with them: BAD_MESSAGE for a message (the connection closes), BAD_REQUEST for a request's arguments (the
 * request is refused, the connection stays). The hub and the agents validate with these and nothing else.
 */

import { isErrorCode, type ErrorCode } from './errors.js';
import { decodeIdentityKey, decodePublicKey, decodeSignature, parseAnswer, parseOffer } from './e2e.js';
import {
  DEFAULT_GOAWAY_RECONNECT_MS,
  MAX_ACCESS_REPORT_COUNT,
  MAX_ADDRESS,
  MAX_AGENT_VERSION,
  MAX_DIRECT_CANDIDATES,
  MAX_DIRECT_TICKET,
  MAX_ERROR_MESSAGE,
  MAX_GOAWAY_RECONNECT_MS,
  MAX_HEALTH_CHECK_MS,
  MAX_HEALTH_CHECKS,
  MAX_HEALTH_TEXT,
  MAX_HELLO_HUBS,
  MAX_HTTP_METHOD,
  MAX_ID,
  MAX_LABEL,
  MAX_REPORTED_PATH,
  MAX_SERVICE_REF,
  MAX_SHARE_NAME,
  MAX_SHARE_PATH,
  MAX_SHARE_RULES,
  MAX_TARGET,
  MAX_TIME_TEXT,
  MAX_TOKEN,
} from './limits.js';
import { check, s } from './schema.js';

/** At most this many streams in one direct_report. */
export const MAX_DIRECT_REPORT_STREAMS = 256;

const OP_NAMES = ['expose', 'unexpose', 'resolve', 'reach', 'unreach', 'list', 'access', 'health', 'advertise', 'direct', 'direct_report', 'path'] as const;
const id = s.string({ max: MAX_ID });
const serviceRef = s.string({ max: MAX_SERVICE_REF });
const neededServiceRef = s.string({ max: MAX_SERVICE_REF, min: 1 });
const publicKey = s.custom((value, field) => (decodePublicKey(value, field), value as string));
const identityKey = s.custom((value, field) => (decodeIdentityKey(value, field), value as string));
const signature = s.custom((value, field) => decodeSignature(value, field));
const address = s.string({ max: MAX_ADDRESS, min: 1, expect: `an address of at most ${MAX_ADDRESS} characters` });
const errorCode = s.custom((value, field, refuse): ErrorCode => {
  if (!isErrorCode(value)) throw refuse(`${field} must be an error code`);
  return value;
});

// ---------------------------------------------------------------------------------------------------------------
// Agent → hub

/** What an agent says about itself in hello. */
export const AgentInfoSchema = s.object({
  version: s.string({ max: MAX_AGENT_VERSION }),
  label: s.optional(s.string({ max: MAX_LABEL })),
  hostname: s.optional(s.string({ max: MAX_LABEL })),
  platform: s.optional(s.string({ max: MAX_AGENT_VERSION })),
});

export const HelloSchema = s.object({
  v: s.integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'an integer protocol version'),
  // An array reads as an agent without fields (so the refusal names hello.agent.version), as hubs always did.
  agent: s.custom((value, field, refuse) => check(AgentInfoSchema, Array.isArray(value) ? {} : value, field, refuse)),
  /** The agent's Ed25519 identity public key, base64 (checked by e2e.ts). */
  identityKey: s.optional(identityKey),
  /** Its X25519 static key and the identity's signature binding it (the hub verifies the signature). */
  staticKey: s.optional(publicKey),
  staticSig: s.optional(signature),
  plain: s.flag(),
  hubs: s.optional(s.integer(1, MAX_HELLO_HUBS)),
});

/** The envelope of a request; its arguments are checked by the op's schema (ControlArgsSchemas) where it is served. */
export const RequestSchema = s.object({
  id: s.integer(0, Number.MAX_SAFE_INTEGER, 'a non-negative integer'),
  op: s.enum(OP_NAMES),
  args: s.default(s.custom((value, field, refuse) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refuse(`${field} must be an object`);
    return value as Record<string, unknown>;
  }), {}, { nullIsAbsent: true }),
});

/** One check of a service's health: dns, tcp, tls, http or latency. */
export const HealthCheckSchema = s.object({
  name: s.string({ max: 32, pattern: /^[a-z][a-z0-9_-]{0,31}$/, expect: 'a lower-case word of at most 32 characters' }),
  ok: s.boolean(),
  detail: s.string({ max: MAX_HEALTH_TEXT }),
  hint: s.optional(s.string({ max: MAX_HEALTH_TEXT })),
  ms: s.optional(s.number(0, MAX_HEALTH_CHECK_MS, `a number of milliseconds from 0 to ${MAX_HEALTH_CHECK_MS}`)),
});

/** The arguments of each control op. A refusal is BAD_REQUEST naming the argument; the connection stays up. */
export const ControlArgsSchemas = {
  expose: s.object({
    name: neededServiceRef,
    target: s.string({ max: MAX_TARGET, min: 1 }),
    replace: s.optional(s.boolean()),
    protocol: s.optional(s.enum(['tcp', 'http'], '"tcp" or "http"')),
    hubPort: s.optional(s.boolean()),
  }),
  unexpose: s.object({ name: neededServiceRef }),
  resolve: s.object({ name: neededServiceRef }),
  reach: s.object({ name: neededServiceRef, localPort: s.integer(0, 65535, 'an integer from 0 to 65535') }),
  unreach: s.object({ tunnelId: s.string({ max: MAX_ID, min: 1 }) }),
  list: s.object({}),
  access: s.object({
    shareId: s.string({ max: MAX_ID, min: 1 }),
    service: neededServiceRef,
    method: s.string({ max: MAX_HTTP_METHOD, min: 1 }),
    path: s.string({ max: MAX_REPORTED_PATH, min: 1 }),
    status: s.integer(100, 599, 'an HTTP status from 100 to 599'),
    ip: s.optional(s.string({ max: MAX_ADDRESS, expect: `an address of at most ${MAX_ADDRESS} characters` })),
    count: s.optional(s.integer(1, MAX_ACCESS_REPORT_COUNT, `a whole number of requests from 1 to ${MAX_ACCESS_REPORT_COUNT}`)),
  }),
  health: s.object({
    service: neededServiceRef,
    checks: s.array(HealthCheckSchema, 1, MAX_HEALTH_CHECKS, `an array of 1 to ${MAX_HEALTH_CHECKS} checks`),
  }),
  advertise: s.object({
    port: s.integer(0, 65535, 'an integer from 0 to 65535'),
    addrs: s.array(address, 0, MAX_DIRECT_CANDIDATES, `an array of at most ${MAX_DIRECT_CANDIDATES} addresses`),
  }),
  direct: s.object({ name: neededServiceRef }),
  direct_report: s.object({
    streams: s.array(
      s.object({
        from: id,
        service: neededServiceRef,
        shareId: s.optional(id),
        openedAt: s.integer(0, Number.MAX_SAFE_INTEGER, 'a time in ms since the epoch'),
        ms: s.integer(0, Number.MAX_SAFE_INTEGER, 'a whole number of milliseconds'),
        bytesIn: s.integer(0, Number.MAX_SAFE_INTEGER, 'a whole number of bytes'),
        bytesOut: s.integer(0, Number.MAX_SAFE_INTEGER, 'a whole number of bytes'),
      }),
      1,
      MAX_DIRECT_REPORT_STREAMS,
      `an array of 1 to ${MAX_DIRECT_REPORT_STREAMS} streams`,
    ),
  }),
  path: s.object({
    name: neededServiceRef,
    mode: s.enum(['direct', 'relay'], '"direct" or "relay"'),
    via: s.optional(s.string({ max: MAX_ADDRESS + 8 })),
    reason: s.optional(s.string({ max: MAX_ERROR_MESSAGE })),
  }),
};

/** OPEN payload from an agent. */
export const OpenRequestSchema = s.object({
  service: serviceRef,
  e2e: s.optional(s.custom((value) => parseOffer(value))),
  plain: s.flag(),
});

// ---------------------------------------------------------------------------------------------------------------
// Hub → agent

/** A service's health as its exposing agent last reported it; `checkedAt` by the hub's clock. */
export const ServiceHealthSchema = s.object({
  ok: s.boolean(),
  checkedAt: s.string({ max: MAX_TIME_TEXT }),
  checks: s.array(HealthCheckSchema, 0, MAX_HEALTH_CHECKS, `an array of at most ${MAX_HEALTH_CHECKS} checks`),
});

/** A service as the hub describes it to agents (the results of expose, resolve, reach and list). */
export const ServiceInfoSchema = s.object({
  id,
  name: serviceRef,
  target: s.string({ max: MAX_TARGET }),
  agentId: id,
  agentLabel: s.string({ max: MAX_LABEL }),
  online: s.boolean(),
  protocol: s.optional(s.enum(['tcp', 'http'], '"tcp" or "http"')),
  hubPort: s.optional(s.integer(1, 65535, 'a TCP port')),
  e2e: s.optional(s.enum(['required', 'optional'], '"required" or "optional"')),
  health: s.optional(ServiceHealthSchema),
  keys: s.optional(s.object({ identityKey, staticKey: publicKey, staticSig: signature })),
});

const empty = s.object({});
/** The result of each control op, in a successful reply. The agent checks it where it reads the reply. */
export const ControlResultSchemas = {
  expose: s.object({ service: ServiceInfoSchema }),
  unexpose: empty,
  resolve: s.object({ service: ServiceInfoSchema }),
  reach: s.object({ service: ServiceInfoSchema, tunnelId: s.string({ max: MAX_ID, min: 1 }) }),
  unreach: empty,
  list: s.object({ services: s.array(ServiceInfoSchema, 0, Number.MAX_SAFE_INTEGER, 'an array of services') }),
  access: empty,
  health: empty,
  advertise: empty,
  direct: s.object({
    direct: s.optional(
      s.object({
        agentId: id,
        identityKey,
        candidates: s.array(
          s.object({ host: address, port: s.integer(1, 65535, 'a TCP port'), source: s.enum(['local', 'hub'], '"local" or "hub"') }),
          0,
          MAX_DIRECT_CANDIDATES * 2,
          'an array of candidates',
        ),
        ticket: s.string({ max: MAX_DIRECT_TICKET, min: 1 }),
        expiresAt: s.integer(0, Number.MAX_SAFE_INTEGER, 'a time in ms since the epoch'),
      }),
    ),
    unavailable: s.optional(s.object({ code: errorCode, reason: s.string({ max: MAX_ERROR_MESSAGE }) })),
  }),
  direct_report: empty,
  path: empty,
};

export const WelcomeSchema = s.object({
  v: s.integer(1, Number.MAX_SAFE_INTEGER, 'a protocol version number'),
  agentId: id,
  workspaceId: id,
  connectionId: id,
  label: s.string({ max: MAX_LABEL }),
  tokenExpiresAt: s.optional(s.string({ max: MAX_TIME_TEXT })),
  tokenExpiresInMs: s.optional(s.integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'an integer')),
  ticketKey: s.optional(identityKey),
});

/** The envelope of a reply: its `result` is the op's result, its `error` an error body (errorBody in control.ts). */
export const ReplySchema = s.object({ id: s.integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'an integer'), ok: s.any(), result: s.any(), error: s.any() });

export const TokenSchema = s.object({
  expiresInMs: s.integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'an integer'),
  token: s.string({ max: MAX_TOKEN, min: 1 }),
  expiresAt: s.string({ max: MAX_TIME_TEXT }),
});

export const EventSchema = s.object({
  event: s.custom((value, field, refuse): 'service_online' | 'service_offline' => {
    if (value !== 'service_online' && value !== 'service_offline') throw refuse(`unknown event: ${field} must be service_online or service_offline`);
    return value;
  }),
  name: serviceRef,
});

export const EndSessionsSchema = s.object({
  agentId: s.optional(id),
  shareId: s.optional(id),
  reason: s.default(s.string({ max: MAX_ERROR_MESSAGE }), ''),
});

/** The limits of a share that the exposing agent enforces on an HTTP service's requests. */
export const SharePolicySchema = s.object({
  id,
  name: s.string({ max: MAX_SHARE_NAME }),
  methods: s.optional(s.array(s.string({ max: MAX_HTTP_METHOD }), 0, MAX_SHARE_RULES, `an array of at most ${MAX_SHARE_RULES} strings`), { nullIsAbsent: true }),
  paths: s.optional(s.array(s.string({ max: MAX_SHARE_PATH }), 0, MAX_SHARE_RULES, `an array of at most ${MAX_SHARE_RULES} strings`), { nullIsAbsent: true }),
  ratePerMin: s.optional(s.integer(1, Number.MAX_SAFE_INTEGER, 'a positive integer'), { nullIsAbsent: true }),
});

/** OPEN payload from the hub to the exposing agent. An absent `from`, or its absent fields, read as empty. */
export const OpenNoticeSchema = s.object({
  service: serviceRef,
  from: s.default(
    s.object({
      agentId: s.default(s.string({ max: MAX_ID }), ''),
      label: s.default(s.string({ max: MAX_LABEL }), ''),
      ip: s.optional(s.string({ max: MAX_ADDRESS })),
      identityKey: s.optional(identityKey),
      staticKey: s.optional(publicKey),
    }),
    { agentId: '', label: '' },
    { nullIsAbsent: true },
  ),
  share: s.optional(SharePolicySchema),
  e2e: s.optional(s.custom((value) => parseOffer(value))),
  plain: s.flag(),
});

/** OPEN_OK payload: the exposing agent's handshake answer, absent for a plaintext stream. */
export const OpenAcceptSchema = s.object({ e2e: s.optional(s.custom((value) => parseAnswer(value))) });

/** GOAWAY payload. */
export const GoAwaySchema = s.object({
  code: errorCode,
  message: s.default(s.string({ max: MAX_ERROR_MESSAGE }), '', { nullIsAbsent: true }),
  reconnectMs: s.default(s.integer(0, MAX_GOAWAY_RECONNECT_MS, `a whole number of milliseconds from 0 to ${MAX_GOAWAY_RECONNECT_MS}`), DEFAULT_GOAWAY_RECONNECT_MS),
});
