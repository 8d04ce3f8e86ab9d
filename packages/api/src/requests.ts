/**
 * What each REST route takes, as one TypeBox schema: the hub hands it to Fastify, which validates requests with it
 * and writes it into /openapi.json (and docs/api.md); `Static<typeof X>` is the TypeScript type the SDK client and the
 * dashboard send. One definition, so the validator, the reference and the client cannot drift apart.
 *
 * Path parameters are in params.ts, answers in responses.ts, and routes.ts puts each route's parts together.
 */

import { Type, type Static } from '@sinclair/typebox';
import { MAX_LABEL, MAX_SERVICE_NAME, UUID_PATTERN } from '@private-connect/protocol';
import { stringEnum } from './schema-helpers.js';

/** Longest email address (RFC 5321's path limit). */
export const MAX_EMAIL = 254;
/** Longest magic-link token taken in a URL. */
export const MAX_LINK_TOKEN = 128;
/** Longest workspace name. */
export const MAX_WORKSPACE_NAME = 128;
/** Most audit entries in one page. */
export const MAX_AUDIT_PAGE = 500;
/** Highest rate of a public link (requests per minute). */
export const MAX_LINK_RATE = 1_000_000;
/** Most services in one share. */
export const MAX_SHARE_SERVICES = 64;
/** Highest rate of a share (requests or new connections per minute). */
export const MAX_SHARE_RATE = 1_000_000;

const closed = { additionalProperties: false } as const;
const serviceName = Type.String({ minLength: 1, maxLength: MAX_SERVICE_NAME });
const duration = Type.String({ minLength: 1, maxLength: 16, description: 'A duration: 30m, 12h, 7d, 2w.' });

/** PATCH /v1/workspaces/:id: the workspace's settings to change (owners and admins, or an API key). */
export const UpdateWorkspaceRequest = Type.Object(
  {
    directPaths: Type.Optional(Type.Boolean({ description: 'Hand out direct paths between agents (on by default).' })),
  },
  { ...closed, minProperties: 1 },
);
export type UpdateWorkspaceRequest = Static<typeof UpdateWorkspaceRequest>;

/** POST /v1/agents/enroll and POST /v1/device/code: what an agent says about itself. */
export const EnrolRequest = Type.Object(
  {
    label: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_LABEL })),
    hostname: Type.Optional(Type.String({ maxLength: MAX_LABEL })),
    platform: Type.Optional(Type.String({ maxLength: 64 })),
  },
  closed,
);
export type EnrolRequest = Static<typeof EnrolRequest>;

/** POST /v1/auth/login. */
export const LoginRequest = Type.Object({ email: Type.String({ maxLength: MAX_EMAIL }) }, closed);
export type LoginRequest = Static<typeof LoginRequest>;

/** GET /v1/auth/verify (the magic link's query) and POST /v1/auth/verify. */
export const VerifyQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: MAX_LINK_TOKEN })) });
export type VerifyQuery = Static<typeof VerifyQuery>;

/** POST /v1/api-keys. */
export const CreateApiKeyRequest = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }, closed);
export type CreateApiKeyRequest = Static<typeof CreateApiKeyRequest>;

/** GET /v1/audit: filters and the page cursor, as query parameters. */
export const AuditQueryParams = Type.Object(
  {
    action: Type.Optional(Type.String({ maxLength: 128 })),
    actor_type: Type.Optional(Type.String({ maxLength: 32 })),
    target_type: Type.Optional(Type.String({ maxLength: 64 })),
    agent: Type.Optional(Type.String({ maxLength: 64 })),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    before: Type.Optional(
      Type.String({ pattern: UUID_PATTERN, description: 'The nextBefore of the previous page (the id of its last event).' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_AUDIT_PAGE })),
  },
  closed,
);
export type AuditQueryParams = Static<typeof AuditQueryParams>;

/** POST /v1/device/approve. */
export const DeviceApproveRequest = Type.Object(
  { user_code: Type.String({ maxLength: 32 }), workspaceId: Type.Optional(Type.String({ maxLength: 64 })) },
  closed,
);
export type DeviceApproveRequest = Static<typeof DeviceApproveRequest>;

/** POST /v1/device/token. */
export const DeviceTokenRequest = Type.Object({ device_code: Type.String({ maxLength: 128 }) }, closed);
export type DeviceTokenRequest = Static<typeof DeviceTokenRequest>;

/** POST /v1/workspaces. */
export const CreateWorkspaceRequest = Type.Object({ name: Type.String({ minLength: 1, maxLength: MAX_WORKSPACE_NAME }) }, closed);
export type CreateWorkspaceRequest = Static<typeof CreateWorkspaceRequest>;

/** POST /v1/workspaces/:id/invites. */
export const InviteRequest = Type.Object(
  { email: Type.String({ maxLength: MAX_EMAIL }), role: Type.Optional(stringEnum(['admin', 'member'])) },
  closed,
);
export type InviteRequest = Static<typeof InviteRequest>;

/**
 * DELETE /v1/workspaces/:id/invitations/:invitationId. Ids are checked as UUIDs by the hub itself, so that a
 * malformed one answers NOT_FOUND exactly like a missing or another workspace's one; the schema bounds the length.
 */
export const InvitationParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64 }), invitationId: Type.String({ minLength: 1, maxLength: 64 }) },
  closed,
);
export type InvitationParams = Static<typeof InvitationParams>;

/** POST /v1/shares. */
export const CreateShareRequest = Type.Object(
  {
    name: serviceName,
    services: Type.Array(serviceName, { minItems: 1, maxItems: MAX_SHARE_SERVICES }),
    expiresIn: duration,
    methods: Type.Optional(Type.Array(Type.String({ maxLength: 16 }), { maxItems: 64 })),
    paths: Type.Optional(Type.Array(Type.String({ maxLength: 512 }), { maxItems: 64 })),
    rate: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SHARE_RATE })),
  },
  closed,
);
export type CreateShareRequest = Static<typeof CreateShareRequest>;

/** POST /v1/shares/join. */
export const JoinShareRequest = Type.Object(
  {
    code: Type.String({ minLength: 1, maxLength: 64 }),
    alias: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_SERVICE_NAME, description: "The name to reach the services by (default: the share's name)." })),
  },
  closed,
);
export type JoinShareRequest = Static<typeof JoinShareRequest>;

/** Methods or paths of a public link: a list, or one comma-separated string. */
const linkRules = Type.Union([Type.String({ maxLength: 4096 }), Type.Array(Type.String({ maxLength: 512 }), { maxItems: 64 })]);

/** POST /v1/links. */
export const CreateLinkRequest = Type.Object(
  {
    service: serviceName,
    expiresIn: Type.Optional(Type.String({ minLength: 1, maxLength: 16, description: 'A duration: 30m, 12h, 7d, 2w (default 7d, at most 365d).' })),
    methods: Type.Optional(linkRules),
    paths: Type.Optional(linkRules),
    rate: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LINK_RATE })),
  },
  closed,
);
export type CreateLinkRequest = Static<typeof CreateLinkRequest>;
