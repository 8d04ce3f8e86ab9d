/**
 * Path parameters and the query strings not in requests.ts. Ids are checked as UUIDs by the hub itself (isUuid), so
 * that a malformed id answers NOT_FOUND exactly like a missing one or another workspace's; the schemas bound the length.
 */

import { Type, type Static } from '@sinclair/typebox';

/** Longest id taken in a path. */
export const MAX_ID = 64;

const id = Type.String({ minLength: 1, maxLength: MAX_ID });

/** Routes on one object: /v1/agents/:id, /v1/api-keys/:id, /v1/shares/:id, /v1/links/:id, /v1/workspaces/:id… */
export const IdParams = Type.Object({ id }, { additionalProperties: false });
export type IdParams = Static<typeof IdParams>;

/** DELETE /v1/workspaces/:id/members/:userId. */
export const MemberParams = Type.Object({ id, userId: id }, { additionalProperties: false });
export type MemberParams = Static<typeof MemberParams>;

/** GET /v1/services/:id/diagnostics: how many reports (checked by the hub: a whole number from 1 to 100, default 20). */
export const DiagnosticsQuery = Type.Object({
  limit: Type.Optional(Type.String({ maxLength: 20, description: 'How many reports, newest first: 1 to 100 (default 20).' })),
});
export type DiagnosticsQuery = Static<typeof DiagnosticsQuery>;

/** GET /v1/events: a browser's EventSource cannot set X-Workspace-Id, so a signed-in user names the workspace here. */
export const EventsQuery = Type.Object({
  workspace: Type.Optional(Type.String({ maxLength: MAX_ID, description: 'The workspace to follow (a signed-in user; default: X-Workspace-Id, else their first).' })),
});
export type EventsQuery = Static<typeof EventsQuery>;
