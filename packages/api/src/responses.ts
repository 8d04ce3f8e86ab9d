/**
 * What each REST route answers, as one TypeBox schema: the hub declares it as the route's response schema (Fastify
 * serialises the answer with it, so a field missing here never leaves the hub) and writes it into /openapi.json;
 * `Static<typeof X>` is the TypeScript type the SDK client and the dashboard read. Every schema here is complete:
 * what the hub sends is exactly what is described.
 */

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES, UUID_PATTERN, type ErrorCode } from '@private-connect/protocol';
import type * as Wire from '@private-connect/protocol';
import { stringEnum } from './schema-helpers.js';

const uuid = Type.String({ pattern: UUID_PATTERN });
const time = Type.String({ format: 'date-time' });
const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Any answer that is not a success: `{ error: { code, message } }` with the code's HTTP status (docs/protocol.md, Errors). */
export const ErrorAnswer = Type.Object({
  error: Type.Object({
    code: stringEnum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: Type.String({ description: 'What was expected, written for a person.' }),
  }),
});
export type ErrorAnswer = Static<typeof ErrorAnswer>;

/** An API key as GET /v1/api-keys lists it: the prefix only, never the key or its hash. */
export const ApiKeyInfo = Type.Object({
  id: uuid,
  name: Type.String(),
  prefix: Type.String(),
  createdAt: time,
  lastUsedAt: nullable(time),
  revokedAt: nullable(time),
});
export type ApiKeyInfo = Static<typeof ApiKeyInfo>;

/** An agent as GET /v1/agents lists it (the dashboard's agents page). */
export const AgentSummary = Type.Object({
  id: uuid,
  label: Type.String(),
  hostname: nullable(Type.String()),
  platform: nullable(Type.String()),
  version: nullable(Type.String()),
  online: Type.Boolean({ description: 'Connected to the hub right now.' }),
  lastSeenAt: nullable(time),
  lastIp: nullable(Type.String({ description: 'The address it last connected from, masked like in logs (`192.168.x.x`): never the whole address.' })),
  tokenExpiresAt: nullable(Type.String({ format: 'date-time', description: 'When its current token expires (null: no valid token left).' })),
  createdAt: time,
  identityKey: nullable(Type.String({ description: 'Its end-to-end identity key (base64 Ed25519), once it connected with one.' })),
  fingerprint: nullable(Type.String({ description: 'The identity key\'s fingerprint ("SHA256:…").' })),
  staticKey: nullable(Type.String({ description: 'Its X25519 static key for end-to-end sessions (base64), signed by the identity key, once it connected with one.' })),
  enrolledBy: nullable(
    Type.String({
      pattern: UUID_PATTERN,
      description: "The member it belongs to: the user who approved its device login (`connect up` without an API key). Removing them from the workspace revokes it. null: enrolled with an API key, the workspace's.",
    }),
  ),
  paths: Type.Array(
    Type.Object({
      name: Type.String({ description: 'The service as this agent reaches it (`alias/service` through a share).' }),
      mode: stringEnum(['direct', 'relay'], "'direct': new streams go straight to the exposing agent; 'relay': through the hub."),
      via: Type.Optional(Type.String({ description: "The exposing agent's address the direct connection went to (host:port), when direct." })),
      reason: Type.Optional(Type.String({ description: 'Why not direct, in words a person reads, when relayed.' })),
      at: time,
    }),
    { description: 'Per reached service, the path its new streams take now, as the agent last said (connections to the hub answering only).' },
  ),
});
export type AgentSummary = Static<typeof AgentSummary>;

/**
 * Open streams and bytes relayed for one service since the hub started; `bytesIn` went to the service. Streams that
 * went direct between two agents never cross the hub: their exposing agent reports each one when it ends.
 */
export const ServiceTrafficSummary = Type.Object({
  streams: Type.Integer({ minimum: 0 }),
  encryptedStreams: Type.Integer({ minimum: 0, description: 'Of the open streams, those end-to-end encrypted between two agents (the hub cannot read them).' }),
  bytesIn: Type.Integer({ minimum: 0 }),
  bytesOut: Type.Integer({ minimum: 0 }),
  directStreams: Type.Integer({ minimum: 0, description: 'Streams that ended on a direct path between two agents (reported by the exposing agent).' }),
  directBytesIn: Type.Integer({ minimum: 0, description: 'Bytes to the service over direct paths.' }),
  directBytesOut: Type.Integer({ minimum: 0, description: 'Bytes from the service over direct paths.' }),
});
export type ServiceTrafficSummary = Static<typeof ServiceTrafficSummary>;

/**
 * One check of a service's health, as `connect reach --check` prints it and exposing agents report it:
 * `name` is dns, tcp, tls, http or latency; `hint` says what to do (mostly when `ok` is false).
 */
const HealthCheck = Type.Object({
  name: Type.String(),
  ok: Type.Boolean(),
  detail: Type.String(),
  hint: Type.Optional(Type.String()),
  ms: Type.Optional(Type.Number({ description: 'How long the check took, or the latency measured (latency check), in milliseconds.' })),
});

/** A service's health as its exposing agent reported it (GET /v1/services `health`); `checkedAt` by the hub's clock. */
const ServiceHealth = Type.Object({ ok: Type.Boolean(), checkedAt: time, checks: Type.Array(HealthCheck) });

/** What a service speaks: 'http' services can be given method/path limits in shares and links. */
const ServiceProtocol = stringEnum(['tcp', 'http']);

/** A service as the hub describes it (GET /v1/services, and the agents' resolve, reach and list). */
const ServiceInfo = Type.Object({
  id: uuid,
  name: Type.String(),
  target: Type.String({ description: 'host:port as the exposing agent sees it.' }),
  agentId: uuid,
  agentLabel: Type.String(),
  online: Type.Boolean(),
  protocol: Type.Optional(ServiceProtocol),
  hubPort: Type.Optional(Type.Integer({ description: 'The TCP port on the hub that forwards to this service (`connect expose --hub-port`), when it has one.' })),
  e2e: Type.Optional(
    stringEnum(['required', 'optional'], "End-to-end encryption of streams between agents, while it is online: 'required' (the default), or 'optional' when its agent runs with --no-e2e."),
  ),
  health: Type.Optional(ServiceHealth),
});

// The health report and the service description are also control messages: their types are the protocol's
// (HealthCheck, ServiceHealth, ServiceInfo in control.ts). These schemas describe the same shapes for the REST
// answers, and do not compile if the two drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShapes: [Same<Static<typeof HealthCheck>, Wire.HealthCheck>, Same<Static<typeof ServiceHealth>, Wire.ServiceHealth>, Same<Static<typeof ServiceInfo>, Wire.ServiceInfo>] = [true, true, true];
void sameShapes;

/** A service as GET /v1/services lists it: what the hub knows, its traffic since the hub started, its latest health report. */
export const ServiceSummary = Type.Composite([ServiceInfo, ServiceTrafficSummary]);
export type ServiceSummary = Static<typeof ServiceSummary>;

/** GET /v1/services/:id/diagnostics: the latest report and the history, newest first (the latest included). */
export const ServiceDiagnostics = Type.Object({
  service: Type.Object({ id: uuid, name: Type.String() }),
  latest: nullable(ServiceHealth),
  history: Type.Array(ServiceHealth),
});
export type ServiceDiagnostics = Static<typeof ServiceDiagnostics>;

/** One entry of GET /v1/audit. */
export const AuditEntry = Type.Object({
  id: uuid,
  at: time,
  actorType: Type.String(),
  actorId: nullable(Type.String()),
  action: Type.String(),
  targetType: nullable(Type.String()),
  targetId: nullable(Type.String()),
  ip: nullable(Type.String({ description: 'Whole, unlike in logs: the audit log is where addresses are kept.' })),
  userAgent: nullable(Type.String()),
  // Written as JSON Schema's own `additionalProperties` (what OpenAPI documents keep), not TypeBox's Record.
  metadata: Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    additionalProperties: {},
    description:
      'What the event is about. Access events (`link.access`, `share.access`, `hub_port.connect`) also carry `count`, how many identical requests of one flush window the entry stands for, and `lastAt`, the last one\'s time, when count > 1.',
  }),
});
export type AuditEntry = Static<typeof AuditEntry>;

/** One page of GET /v1/audit, newest first; `nextBefore` is the cursor of the next page (null: no more). */
export const AuditPage = Type.Object({ events: Type.Array(AuditEntry), nextBefore: nullable(uuid) });
export type AuditPage = Static<typeof AuditPage>;

/** Where a share stands: not joined yet, joined by a workspace, past its expiry, or revoked by its owner. */
export const ShareState = stringEnum(['pending', 'joined', 'expired', 'revoked']);
export type ShareState = Static<typeof ShareState>;

/** The limits of a share or public link, as the API shows them. */
export const AccessLimits = Type.Object({
  methods: nullable(Type.Array(Type.String(), { description: 'Allowed HTTP methods; null means any.' })),
  paths: nullable(Type.Array(Type.String(), { description: 'Allowed path prefixes; null means any.' })),
  ratePerMin: nullable(
    Type.Integer({
      description: 'Per minute over the whole share or link; null: no limit. A share counts requests (HTTP services) or new connections (TCP services); a link counts requests, in each hub.',
    }),
  ),
});
export type AccessLimits = Static<typeof AccessLimits>;

/** A share as its owning workspace sees it (POST and GET /v1/shares). The code is never shown again. */
export const ShareInfo = Type.Composite([
  AccessLimits,
  Type.Object({
    id: uuid,
    name: Type.String(),
    prefix: Type.String({ description: 'The start of the code (`pcs_` and 4 characters), to tell codes apart.' }),
    services: Type.Array(Type.String()),
    createdAt: time,
    expiresAt: time,
    revokedAt: nullable(time),
    state: ShareState,
    grantee: nullable(
      Type.Object(
        { workspaceId: uuid, workspaceName: Type.String(), alias: Type.String(), joinedAt: time },
        { description: 'The workspace that joined, with the alias it reaches the services by.' },
      ),
    ),
  }),
]);
export type ShareInfo = Static<typeof ShareInfo>;

/** A share this workspace joined (GET /v1/shares `joined`, POST /v1/shares/join): only what the share itself says. */
export const JoinedShareInfo = Type.Composite([
  AccessLimits,
  Type.Object({
    id: uuid,
    alias: Type.String({ description: "The share's name in the joining workspace: reach its services as `<alias>/<service>`." }),
    name: Type.String({ description: 'The name the owner gave the share.' }),
    ownerWorkspace: Type.String({ description: 'The name of the workspace that shared it.' }),
    services: Type.Array(Type.String()),
    joinedAt: time,
    expiresAt: time,
    revokedAt: nullable(time),
    state: ShareState,
  }),
]);
export type JoinedShareInfo = Static<typeof JoinedShareInfo>;

/** The answer to POST /v1/shares: `code` is shown this once (the hub keeps only its hash). */
export const CreatedShare = Type.Object({ share: ShareInfo, code: Type.String() });
export type CreatedShare = Static<typeof CreatedShare>;

/** GET /v1/shares. */
export const ShareList = Type.Object({ owned: Type.Array(ShareInfo), joined: Type.Array(JoinedShareInfo) });
export type ShareList = Static<typeof ShareList>;

/** Where a public link stands: serving, past its expiry, or revoked. */
export const LinkState = stringEnum(['active', 'expired', 'revoked']);
export type LinkState = Static<typeof LinkState>;

/** A public link as its workspace sees it (POST and GET /v1/links). The token is never shown again. */
export const LinkInfo = Type.Composite([
  AccessLimits,
  Type.Object({
    id: uuid,
    service: Type.String(),
    prefix: Type.String({ description: 'The first characters of the token, to tell links apart.' }),
    createdAt: time,
    expiresAt: time,
    revokedAt: nullable(time),
    state: LinkState,
  }),
]);
export type LinkInfo = Static<typeof LinkInfo>;

/** The answer to POST /v1/links: the token and the URLs that carry it are shown this once (the hub keeps a hash). */
export const CreatedLink = Type.Object({
  link: LinkInfo,
  token: Type.String(),
  url: Type.String({ description: 'Path mode: `<hub>/l/<token>/`; works without wildcard DNS.' }),
  subdomainUrl: nullable(Type.String({ description: 'Subdomain mode: `<scheme>://<token>.<PUBLIC_BASE_DOMAIN>/`, when the hub has PUBLIC_BASE_DOMAIN.' })),
});
export type CreatedLink = Static<typeof CreatedLink>;

/** A member's role in a workspace. */
export const MemberRole = stringEnum(['owner', 'admin', 'member']);
export type MemberRole = Static<typeof MemberRole>;

/** The role an invitation gives. */
const InvitedRole = stringEnum(['admin', 'member']);

/** Who the credential of a request is (GET /v1/me): an agent, a signed-in user or an API key. */
export const MeAnswer = Type.Union([
  Type.Object({
    kind: Type.Literal('agent'),
    workspaceId: uuid,
    agentId: uuid,
    label: Type.String(),
    expiresAt: Type.String({ format: 'date-time', description: 'When this token stops working (expiry, or the end of a rotation\'s grace period).' }),
    expiresInMs: Type.Optional(Type.Number()),
    expiring: Type.Optional(Type.Boolean({ description: 'Within the warning period before expiry.' })),
  }),
  Type.Object({ kind: Type.Literal('user'), workspaceId: uuid, userId: uuid, email: Type.String(), role: MemberRole }),
  Type.Object({ kind: Type.Literal('api_key'), workspaceId: uuid, keyId: uuid }),
]);
export type MeAnswer = Static<typeof MeAnswer>;

/** POST /v1/agents/enroll and POST /v1/device/token: the agent token is shown this once. */
export const EnrolledAgent = Type.Object({ agentId: uuid, workspaceId: uuid, label: Type.String(), token: Type.String(), expiresAt: time });
export type EnrolledAgent = Static<typeof EnrolledAgent>;

/** POST /v1/agents/me/rotate-token: the agent's new token; the previous one keeps working until `previousTokenValidUntil`. */
export const RotatedAgentToken = Type.Object({ agentId: uuid, token: Type.String(), expiresAt: time, previousTokenValidUntil: time });
export type RotatedAgentToken = Static<typeof RotatedAgentToken>;

/** POST /v1/agents/:id/rotate-token: an admin rotated a connected agent's token, handed to it over its connections. */
export const AgentTokenHandedOver = Type.Object({
  agentId: uuid,
  expiresAt: time,
  previousTokenValidUntil: time,
  connections: Type.Integer({ minimum: 1, description: "How many of the agent's connections got the new token." }),
});
export type AgentTokenHandedOver = Static<typeof AgentTokenHandedOver>;

/** POST /v1/api-keys: the key itself is shown this once. */
export const CreatedApiKey = Type.Composite([ApiKeyInfo, Type.Object({ key: Type.String() })]);
export type CreatedApiKey = Static<typeof CreatedApiKey>;

/** A workspace as a user sees it (GET /v1/workspaces, POST /v1/workspaces, GET /v1/workspaces/:id); `role` null for an API key. */
export const WorkspaceInfo = Type.Object({
  id: uuid,
  name: Type.String(),
  role: nullable(MemberRole),
  directPaths: Type.Optional(
    Type.Boolean({
      description:
        'Direct paths between agents (GET and PATCH /v1/workspaces/:id): on by default; off, the hub hands out no new direct tickets, and streams go through the hub once the tickets out lapse (within 5 minutes).',
    }),
  ),
});
export type WorkspaceInfo = Static<typeof WorkspaceInfo>;

/** A member of a workspace (GET /v1/workspaces/:id/members). */
export const MemberInfo = Type.Object({ userId: uuid, email: Type.String(), role: MemberRole, joinedAt: time });
export type MemberInfo = Static<typeof MemberInfo>;

/** POST /v1/workspaces/:id/invites: a magic link that joins the workspace was mailed. */
export const InviteSent = Type.Object({
  id: Type.String({ pattern: UUID_PATTERN, description: "The invitation's id: what GET /v1/workspaces/:id/invitations lists and DELETE .../invitations/:id revokes." }),
  email: Type.String(),
  role: InvitedRole,
  expiresAt: time,
});
export type InviteSent = Static<typeof InviteSent>;

/** A pending invitation (GET /v1/workspaces/:id/invitations): sent, not yet accepted, revoked or expired. */
export const InvitationInfo = Type.Object({
  id: uuid,
  email: Type.String(),
  role: InvitedRole,
  invitedBy: nullable(Type.String({ description: "The email of the member who sent it; null when an API key sent it or the sender's account is gone." })),
  createdAt: time,
  expiresAt: time,
});
export type InvitationInfo = Static<typeof InvitationInfo>;

/** POST /v1/auth/login: sent whether or not the address has an account (the answer never tells who is a user). */
export const LoginLinkSent = Type.Object({ sent: Type.Literal(true), expiresAt: time, message: Type.String() });
export type LoginLinkSent = Static<typeof LoginLinkSent>;

/** POST /v1/auth/verify: the session opened (its cookie is set on the answer). */
export const SignedIn = Type.Object({ userId: uuid, email: Type.String(), workspaceId: uuid, newUser: Type.Boolean() });
export type SignedIn = Static<typeof SignedIn>;

/** POST /v1/device/code: what `connect up` shows and polls with. */
export const DeviceCodeAnswer = Type.Object({
  device_code: Type.String(),
  user_code: Type.String(),
  verification_uri: Type.String(),
  verification_uri_complete: Type.String(),
  expires_in: Type.Integer({ description: 'Seconds until the code expires.' }),
  interval: Type.Integer({ description: 'Seconds to wait between polls of POST /v1/device/token.' }),
});
export type DeviceCodeAnswer = Static<typeof DeviceCodeAnswer>;

/** POST /v1/device/approve. */
export const DeviceApproved = Type.Object({ approved: Type.Literal(true), workspaceId: uuid });
export type DeviceApproved = Static<typeof DeviceApproved>;

/** GET /v1/agents. */
export const AgentList = Type.Object({ agents: Type.Array(AgentSummary) });
export type AgentList = Static<typeof AgentList>;
/** GET /v1/services. */
export const ServiceList = Type.Object({ services: Type.Array(ServiceSummary) });
export type ServiceList = Static<typeof ServiceList>;
/** GET /v1/api-keys. */
export const ApiKeyList = Type.Object({ apiKeys: Type.Array(ApiKeyInfo) });
export type ApiKeyList = Static<typeof ApiKeyList>;
/** GET /v1/links. */
export const LinkList = Type.Object({ links: Type.Array(LinkInfo) });
export type LinkList = Static<typeof LinkList>;
/** GET /v1/workspaces. */
export const WorkspaceList = Type.Object({ workspaces: Type.Array(WorkspaceInfo) });
export type WorkspaceList = Static<typeof WorkspaceList>;
/** GET /v1/workspaces/:id/members. */
export const MemberList = Type.Object({ members: Type.Array(MemberInfo) });
export type MemberList = Static<typeof MemberList>;
/** GET /v1/workspaces/:id/invitations. */
export const InvitationList = Type.Object({ invitations: Type.Array(InvitationInfo) });
export type InvitationList = Static<typeof InvitationList>;

/** GET /healthz: the process answers. */
export const HealthAnswer = Type.Object({ ok: Type.Boolean() });
export type HealthAnswer = Static<typeof HealthAnswer>;

/** GET /readyz: ready (200), or why not (503: starting, draining, the database does not answer). */
export const ReadyAnswer = Type.Object({
  ready: Type.Boolean(),
  state: stringEnum(['starting', 'ready', 'draining', 'closed']),
  reason: Type.Optional(Type.String()),
});
export type ReadyAnswer = Static<typeof ReadyAnswer>;

/** The `data` of one event of GET /v1/events, by event name. */
export const HubEventData = {
  /** An agent connection of the workspace opened or closed (or its token was rotated by an admin). */
  agent: Type.Object({ id: uuid, label: Type.String(), online: Type.Boolean(), at: time, tokenExpiresAt: Type.Optional(time) }),
  /** A service was exposed, unexposed, or went offline with its agent. */
  service: Type.Object({ name: Type.String(), online: Type.Boolean(), agentId: uuid }),
  /** Per-service traffic, every 2 s while it changes (the counters of the hub asked). */
  stats: Type.Object({ services: Type.Array(Type.Composite([ServiceTrafficSummary, Type.Object({ name: Type.String() })])) }),
  /** An exposing agent reported a check of its target. */
  health: Type.Object({ name: Type.String(), health: ServiceHealth }),
  /** The first event of every stream, naming the workspace. */
  hello: Type.Object({ workspaceId: uuid }),
} as const;

const event = <K extends keyof typeof HubEventData>(name: K) => Type.Object({ event: Type.Literal(name), data: HubEventData[name] });

/** What GET /v1/events streams (Server-Sent Events: `event: <event>`, `data: <data as JSON>`), besides `hello`. */
export const HubEvent = Type.Union([event('agent'), event('service'), event('stats'), event('health')]);
export type HubEvent = Static<typeof HubEvent>;

/** Every event of GET /v1/events: the first is `hello`, naming the workspace. */
export const HubStreamEvent = Type.Union([...HubEvent.anyOf, event('hello')]);
export type HubStreamEvent = Static<typeof HubStreamEvent>;
