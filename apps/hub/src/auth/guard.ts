/**
 * The one place that decides who may do what. Every HTTP route and every agent-connection operation asks
 * `authorize(principal, action)` after authenticating and before touching data; objects are looked up inside
 * the caller's workspace only, and an object of another workspace answers `notFound` exactly like a missing one.
 *
 * How a route uses it (new routes MUST follow this; the cross-workspace battery fails for a route without a case):
 *
 *   { onRequest: requires('api_keys.manage') }                  // auth/auth-plugin.ts: authenticate (401 /
 *                                                               // TOKEN_EXPIRED), then permission (403 FORBIDDEN)
 *   const principal = callerOf(request);                        // in the handler, before any lookup
 *   const row = await deps.db.withWorkspace(principal.workspaceId, (tx) => findKey(tx, id));
 *   if (!row) throw notFound('api_key', id);                    // missing OR another workspace's: same answer
 *
 * Rules: the workspace always comes from the principal, never from the URL or body; a lookup by id or name runs
 * inside `withWorkspace(principal.workspaceId, ...)` (row level security hides other workspaces) and a miss throws
 * `notFound(kind, ref)`; `sameWorkspace(principal, row, kind, ref)` covers lookups that cannot use withWorkspace.
 * A new kind of action gets a row in POLICY below and a line in test/guard.test.ts saying who is refused.
 */

import { ConnectError } from '@private-connect/protocol';

/** Roles of a user in a workspace. */
export type Role = 'owner' | 'admin' | 'member';

/** What the guard needs of a principal: its kind and, for users, the role in the current workspace. */
export interface GuardSubject {
  kind: string;
  role?: string;
}

interface Rule {
  /** An enrolled agent, by its token: reads its own workspace and speaks the relay protocol, nothing else. */
  agent: boolean;
  /** An API key (`pc_...`): full workspace scope, for scripts and enrolment. */
  api_key: boolean;
  /** Signed-in users, by role. */
  roles: readonly Role[];
}

const ALL_ROLES: readonly Role[] = ['owner', 'admin', 'member'];
const ADMINS: readonly Role[] = ['owner', 'admin'];

/** Every action and who may perform it. Anything not listed here is refused. */
export const POLICY = {
  /** GET /v1/me: who am I. */
  'me.read': { agent: true, api_key: true, roles: ALL_ROLES },
  'workspace.read': { agent: true, api_key: true, roles: ALL_ROLES },
  'workspace.manage': { agent: false, api_key: false, roles: ['owner'] },
  /** Change the workspace's settings (PATCH /v1/workspaces/:id: direct paths on or off). */
  'workspace.settings': { agent: false, api_key: true, roles: ADMINS },
  /** Create another workspace (the creator becomes its owner): signed-in users only. */
  'workspace.create': { agent: false, api_key: false, roles: ALL_ROLES },
  'services.list': { agent: true, api_key: true, roles: ALL_ROLES },
  'agents.list': { agent: true, api_key: true, roles: ALL_ROLES },
  /** GET /v1/events: the dashboard's live stream of agent, service and traffic changes. */
  'events.read': { agent: false, api_key: true, roles: ALL_ROLES },
  /** Create an agent and its first token (POST /v1/agents/enroll, device-code approval). */
  'agents.enrol': { agent: false, api_key: true, roles: ALL_ROLES },
  'agents.revoke': { agent: false, api_key: true, roles: ADMINS },
  /** Rotate another agent's token from the dashboard or API; the hub hands the new token to the connected agent. */
  'agents.rotate': { agent: false, api_key: true, roles: ADMINS },
  /** Approve a device code in the browser, enrolling that machine: signed-in users only (scripts use --api-key). */
  'devices.approve': { agent: false, api_key: false, roles: ALL_ROLES },
  /** Rotate the calling agent's own token. */
  'agents.rotate_own_token': { agent: true, api_key: false, roles: [] },
  /** Open the agent WebSocket (/v1/agent): agent tokens only. */
  'agents.connect': { agent: true, api_key: false, roles: [] },
  /** Control operations on the agent connection (expose, reach, resolve, list, ...). */
  'relay.use': { agent: true, api_key: false, roles: [] },
  'api_keys.manage': { agent: false, api_key: true, roles: ADMINS },
  'audit.read': { agent: false, api_key: true, roles: ADMINS },
  'members.read': { agent: false, api_key: true, roles: ALL_ROLES },
  'members.manage': { agent: false, api_key: false, roles: ADMINS },
  /** List and revoke pending invitations (`connect invitations`). An API key may: revoking only takes access away,
   *  and members.read already shows it the members' addresses. Sending one stays members.manage. */
  'invitations.manage': { agent: false, api_key: true, roles: ADMINS },
  /** Create, list and revoke shares of this workspace's services (`connect share`). Letting another workspace in
   *  is an admin's decision for users; an agent or API key of the workspace acts for its operator. */
  'shares.manage': { agent: true, api_key: true, roles: ADMINS },
  /** Join another workspace's share with its code (`connect join`), and list the shares this workspace joined. */
  'shares.join': { agent: true, api_key: true, roles: ADMINS },
  /** Create, list and revoke public links (`connect link`). */
  'links.manage': { agent: true, api_key: true, roles: ADMINS },
} as const satisfies Record<string, Rule>;

export type Action = keyof typeof POLICY;

const REFUSALS: Partial<Record<Action, string>> = {
  'agents.enrol': 'enrolling an agent needs an API key (pc_...) or a signed-in member, not an agent token',
  'agents.connect': 'an API key cannot connect as an agent; run `connect up --api-key ...` to enrol',
  'devices.approve': 'approving a device needs a signed-in user; scripts enrol with --api-key',
  'workspace.create': 'creating a workspace needs a signed-in user, not an API key or agent token',
  'api_keys.manage': 'managing API keys needs an API key or a workspace owner or admin',
};

/** True when `principal` may perform `action`. Unknown kinds, roles and actions are refused. */
export function isAllowed(principal: GuardSubject, action: Action): boolean {
  const rule: Rule | undefined = Object.hasOwn(POLICY, action) ? POLICY[action] : undefined;
  if (!rule) return false;
  switch (principal.kind) {
    case 'agent':
      return rule.agent;
    case 'api_key':
      return rule.api_key;
    case 'user':
      return typeof principal.role === 'string' && (rule.roles as readonly string[]).includes(principal.role);
    default:
      return false;
  }
}

/** Throws FORBIDDEN unless `principal` may perform `action`. Call after authenticating, before any lookup. */
export function authorize(principal: GuardSubject, action: Action): void {
  if (!isAllowed(principal, action)) throw forbidden(principal, action);
}

/** The FORBIDDEN error `authorize` throws (for paths that answer instead of throwing, e.g. a refused upgrade). */
export function forbidden(principal: GuardSubject, action: Action): ConnectError {
  const who = principal.kind === 'user' ? `a workspace ${principal.role ?? 'user'}` : principal.kind === 'agent' ? 'an agent token' : 'these credentials';
  return new ConnectError('FORBIDDEN', REFUSALS[action] ?? `${who} may not do ${action}`);
}

/** Kinds of objects addressed by id or name, with the name used in "not found" messages. */
const OBJECT_NAMES = {
  agent: 'Agent',
  api_key: 'API key',
  service: 'Service',
  member: 'Member',
  workspace: 'Workspace',
  invite: 'Invitation',
  share: 'Share',
  link: 'Public link',
  tunnel: 'Tunnel',
  audit_event: 'Audit event',
} as const;

export type ObjectKind = keyof typeof OBJECT_NAMES;

/**
 * The single answer for an object the caller cannot see: missing, or in another workspace. Same code, status and
 * message for both, so a response never tells them apart. Services keep their historical SERVICE_NOT_FOUND code.
 */
export function notFound(kind: ObjectKind, ref: string): ConnectError {
  const shown = ref.slice(0, 80);
  if (kind === 'service') return new ConnectError('SERVICE_NOT_FOUND', `Service not found: ${shown}`);
  return new ConnectError('NOT_FOUND', `${OBJECT_NAMES[kind]} not found: ${shown}`);
}

/** Returns `row` when it belongs to the caller's workspace; otherwise throws `notFound(kind, ref)`. */
export function sameWorkspace<T extends { workspace_id?: string; workspaceId?: string }>(
  principal: { workspaceId: string },
  row: T | undefined | null,
  kind: ObjectKind,
  ref: string,
): T {
  const owner = row ? (row.workspace_id ?? row.workspaceId) : undefined;
  if (!row || owner !== principal.workspaceId) throw notFound(kind, ref);
  return row;
}
