/** Shapes of the hub's REST answers that the hub writes and the SDK reads (one definition for both sides). */

import type { HealthCheck, ServiceHealth } from './control.js';

/** An API key as GET /v1/api-keys lists it: the prefix only, never the key or its hash. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** An agent as GET /v1/agents lists it (the dashboard's agents page). */
export interface AgentSummary {
  id: string;
  label: string;
  hostname: string | null;
  platform: string | null;
  version: string | null;
  /** Connected to the hub right now. */
  online: boolean;
  lastSeenAt: string | null;
  /** The address it last connected from, masked like in logs (`192.168.x.x`): never the whole address. */
  lastIp: string | null;
  /** When its current token expires (null: no valid token left). */
  tokenExpiresAt: string | null;
  createdAt: string;
  /** Its end-to-end identity key (base64 Ed25519) and fingerprint ("SHA256:…"), once it connected with one. */
  identityKey: string | null;
  fingerprint: string | null;
}

/** Open streams and bytes relayed for one service since the hub started; `bytesIn` went to the service. */
export interface ServiceTrafficSummary {
  streams: number;
  /** Of the open streams, those end-to-end encrypted between two agents (the hub cannot read them). */
  encryptedStreams: number;
  bytesIn: number;
  bytesOut: number;
}

/** One entry of GET /v1/audit. */
export interface AuditEntry {
  id: string;
  at: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  /** Whole, unlike in logs: the audit log is where addresses are kept. */
  ip: string | null;
  userAgent: string | null;
  /**
   * What the event is about. Access events (`link.access`, `share.access`, `hub_port.connect`) also carry `count`, how
   * many identical requests of one flush window the entry stands for, and `lastAt`, the last one's time, when count > 1.
   */
  metadata: Record<string, unknown>;
}

/** Where a share stands: not joined yet, joined by a workspace, past its expiry, or revoked by its owner. */
export type ShareState = 'pending' | 'joined' | 'expired' | 'revoked';

/** The limits of a share or public link, as the API shows them. */
export interface AccessLimits {
  /** Allowed HTTP methods; null means any. */
  methods: string[] | null;
  /** Allowed path prefixes; null means any. */
  paths: string[] | null;
  /**
   * Per minute over the whole share or link; null: no limit. A share counts requests (HTTP services) or new
   * connections (TCP services); a link counts requests, in each hub.
   */
  ratePerMin: number | null;
}

/** A share as its owning workspace sees it (POST and GET /v1/shares). The code is never shown again. */
export interface ShareInfo extends AccessLimits {
  id: string;
  name: string;
  /** The start of the code (`pcs_` and 4 characters), to tell codes apart. */
  prefix: string;
  services: string[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  state: ShareState;
  /** The workspace that joined, with the alias it reaches the services by. */
  grantee: { workspaceId: string; workspaceName: string; alias: string; joinedAt: string } | null;
}

/** A share this workspace joined (GET /v1/shares `joined`, POST /v1/shares/join): only what the share itself says. */
export interface JoinedShareInfo extends AccessLimits {
  id: string;
  /** The share's name in the joining workspace: reach its services as `<alias>/<service>`. */
  alias: string;
  /** The name the owner gave the share. */
  name: string;
  /** The name of the workspace that shared it. */
  ownerWorkspace: string;
  services: string[];
  joinedAt: string;
  expiresAt: string;
  revokedAt: string | null;
  state: ShareState;
}

/** The answer to POST /v1/shares: `code` is shown this once (the hub keeps only its hash). */
export interface CreatedShare {
  share: ShareInfo;
  code: string;
}

/** GET /v1/shares. */
export interface ShareList {
  owned: ShareInfo[];
  joined: JoinedShareInfo[];
}

/** Where a public link stands: serving, past its expiry, or revoked. */
export type LinkState = 'active' | 'expired' | 'revoked';

/** A public link as its workspace sees it (POST and GET /v1/links). The token is never shown again. */
export interface LinkInfo extends AccessLimits {
  id: string;
  service: string;
  /** The first characters of the token, to tell links apart. */
  prefix: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  state: LinkState;
}

/** The answer to POST /v1/links: the token and the URLs that carry it are shown this once (the hub keeps a hash). */
export interface CreatedLink {
  link: LinkInfo;
  token: string;
  /** Path mode: `<hub>/l/<token>/`; works without wildcard DNS. */
  url: string;
  /** Subdomain mode: `<scheme>://<token>.<PUBLIC_BASE_DOMAIN>/`, when the hub has PUBLIC_BASE_DOMAIN. */
  subdomainUrl: string | null;
}

/** GET /v1/services/:id/diagnostics: the latest report and the history, newest first (the latest included). */
export interface ServiceDiagnostics {
  service: { id: string; name: string };
  latest: ServiceHealth | null;
  history: ServiceHealth[];
}

/** A member's role in a workspace. */
export type MemberRole = 'owner' | 'admin' | 'member';

/** Who the credential of a request is (GET /v1/me). */
export type MeAnswer =
  | {
      kind: 'agent';
      workspaceId: string;
      agentId: string;
      label: string;
      /** When this token stops working (expiry, or the end of a rotation's grace period). */
      expiresAt: string;
      expiresInMs?: number;
      /** Within the warning period before expiry. */
      expiring?: boolean;
    }
  | { kind: 'user'; workspaceId: string; userId: string; email: string; role: MemberRole }
  | { kind: 'api_key'; workspaceId: string; keyId: string };

/** POST /v1/agents/enroll and POST /v1/device/token: the agent token is shown this once. */
export interface EnrolledAgent {
  agentId: string;
  workspaceId: string;
  label: string;
  token: string;
  expiresAt: string;
}

/** POST /v1/agents/me/rotate-token: the agent's new token; the previous one keeps working until `previousTokenValidUntil`. */
export interface RotatedAgentToken {
  agentId: string;
  token: string;
  expiresAt: string;
  previousTokenValidUntil: string;
}

/** POST /v1/agents/:id/rotate-token: an admin rotated a connected agent's token, handed to it over its connections. */
export interface AgentTokenHandedOver {
  agentId: string;
  expiresAt: string;
  previousTokenValidUntil: string;
  /** How many of the agent's connections got the new token. */
  connections: number;
}

/** POST /v1/api-keys: the key itself is shown this once. */
export type CreatedApiKey = ApiKeyInfo & { key: string };

/** One page of GET /v1/audit, newest first; `nextBefore` is the cursor of the next page (null: no more). */
export interface AuditPage {
  events: AuditEntry[];
  nextBefore: string | null;
}

/** A workspace as a user sees it (GET /v1/workspaces, POST /v1/workspaces, GET /v1/workspaces/:id); `role` null for an API key. */
export interface WorkspaceInfo {
  id: string;
  name: string;
  role: MemberRole | null;
}

/** A member of a workspace (GET /v1/workspaces/:id/members). */
export interface MemberInfo {
  userId: string;
  email: string;
  role: MemberRole;
  joinedAt: string;
}

/** POST /v1/workspaces/:id/invites: a magic link that joins the workspace was mailed. */
export interface InviteSent {
  /** The invitation's id: what GET /v1/workspaces/:id/invitations lists and DELETE .../invitations/:id revokes. */
  id: string;
  email: string;
  role: 'admin' | 'member';
  expiresAt: string;
}

/** A pending invitation (GET /v1/workspaces/:id/invitations): sent, not yet accepted, revoked or expired. */
export interface InvitationInfo {
  id: string;
  email: string;
  role: 'admin' | 'member';
  /** The email of the member who sent it; null when an API key sent it or the sender's account is gone. */
  invitedBy: string | null;
  createdAt: string;
  expiresAt: string;
}

/** POST /v1/auth/login: sent whether or not the address has an account (the answer never tells who is a user). */
export interface LoginLinkSent {
  sent: true;
  expiresAt: string;
  message: string;
}

/** POST /v1/auth/verify: the session opened (its cookie is set on the answer). */
export interface SignedIn {
  userId: string;
  email: string;
  workspaceId: string;
  newUser: boolean;
}

/** POST /v1/device/code: what `connect up` shows and polls with. */
export interface DeviceCodeAnswer {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/** POST /v1/device/approve. */
export interface DeviceApproved {
  approved: true;
  workspaceId: string;
}

/** What GET /v1/events streams (Server-Sent Events: `event: <event>`, `data: <data as JSON>`), besides `hello`. */
export type HubEvent =
  /** An agent connection of the workspace opened or closed (or its token was rotated by an admin). */
  | { event: 'agent'; data: { id: string; label: string; online: boolean; at: string; tokenExpiresAt?: string } }
  /** A service was exposed, unexposed, or went offline with its agent. */
  | { event: 'service'; data: { name: string; online: boolean; agentId: string } }
  /** Per-service traffic, every 2 s while it changes (the counters of the hub asked). */
  | { event: 'stats'; data: { services: Array<ServiceTrafficSummary & { name: string }> } }
  /** An exposing agent reported a check of its target. */
  | { event: 'health'; data: { name: string; health: ServiceHealth } };

/** Every event of GET /v1/events: the first is `hello`, naming the workspace. */
export type HubStreamEvent = HubEvent | { event: 'hello'; data: { workspaceId: string } };
