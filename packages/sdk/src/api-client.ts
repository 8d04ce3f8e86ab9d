/**
 * A typed client for the whole REST API of a hub: every /v1 route (API_ROUTES says which method calls which, and a
 * test holds it to the routes the hub registers), /healthz, /readyz and /metrics. Request types are the TypeBox
 * schemas the hub validates with (@private-connect/api); answer types are the ones the hub writes
 * (@private-connect/protocol). Errors come back as ConnectError with the hub's code.
 *
 * Credentials: an API key or agent token (`credential`, sent as a bearer), or a user's session (`session`, the
 * pc_session cookie, which `signIn` sets from a magic-link token).
 */

import {
  ConnectError,
  errorFromBody,
  type AgentSummary as ProtocolAgentSummary,
  type AgentTokenHandedOver,
  type ApiKeyInfo,
  type AuditPage,
  type CreatedApiKey,
  type CreatedLink,
  type CreatedShare,
  type DeviceApproved,
  type EnrolledAgent,
  type HubStreamEvent,
  type InvitationInfo,
  type InviteSent,
  type JoinedShareInfo,
  type LinkInfo,
  type LoginLinkSent,
  type MeAnswer,
  type MemberInfo,
  type RotatedAgentToken,
  type ServiceDiagnostics,
  type ServiceHealth,
  type ServiceInfo,
  type ServiceTrafficSummary,
  type ShareList,
  type SignedIn,
  type WorkspaceInfo,
} from '@private-connect/protocol';
// Request types come from the schemas the hub validates with (one definition: @private-connect/api).
import type {
  AuditQueryParams,
  CreateApiKeyRequest,
  CreateLinkRequest,
  CreateShareRequest,
  CreateWorkspaceRequest,
  DeviceApproveRequest,
  EnrolRequest,
  InviteRequest,
  JoinShareRequest,
  LoginRequest,
} from '@private-connect/api';
import { apiBaseUrl } from './agent/hub-url.js';
import { hubRequest, hubStream } from './hub-request.js';

/**
 * The session cookie's names: `__Host-pc_session` on a hub served over https, `pc_session` over plain http. A script
 * cannot always tell which one the hub sees (TLS may end at a proxy in front of it), so it sends the session under both.
 */
const SESSION_COOKIES = ['__Host-pc_session', 'pc_session'];

/** POST /v1/agents/enroll's answer: the agent token, shown this once. */
export type EnrolResult = EnrolledAgent;

/** An agent as GET /v1/agents lists it (defined in the protocol package, shared with the hub). */
export type AgentSummary = ProtocolAgentSummary;

/** A service as GET /v1/services lists it: what the hub knows, and its traffic since the hub started. */
export type ServiceSummary = ServiceInfo & ServiceTrafficSummary & { health?: ServiceHealth };

/** Who the credential is (GET /v1/me). */
export type Me = MeAnswer;

/** An agent's new token (POST /v1/agents/me/rotate-token). */
export type RotatedToken = RotatedAgentToken;

/** Filters of GET /v1/audit, named for TypeScript; each maps to its query parameter (AuditQueryParams). */
export interface AuditQuery {
  action?: string;
  actorType?: string;
  targetType?: string;
  /** Entries by this agent (its id), as actor or target. */
  agent?: string;
  since?: string;
  until?: string;
  /** Cursor: the `nextBefore` of the previous page. */
  before?: string;
  limit?: number;
}

export interface ApiClientOptions {
  hubUrl: string;
  /** API key or agent token. */
  credential?: string;
  /** A user's session (the pc_session cookie's value), e.g. from signIn(). */
  session?: string;
  /** With a session: the workspace to act in (default: the user's first). */
  workspaceId?: string;
  allowInsecure?: boolean;
  timeoutMs?: number;
  /** An extra CA certificate (PEM) for a hub with a private certificate (see also trustHubCa). */
  ca?: string | Buffer;
}

/**
 * Every route of the hub and what calls it: an ApiClient method, or `deviceLogin` (the device-code flow of
 * `connect up`, a function of this package). GET /v1/auth/verify is the magic link a browser opens (it leads to
 * the sign-in page, whose button signs in); signIn() takes the same token by POST.
 */
export const API_ROUTES = {
  'GET /healthz': 'health',
  'GET /readyz': 'ready',
  'GET /metrics': 'metrics',
  'GET /v1/me': 'me',
  'GET /v1/agents': 'agents',
  'POST /v1/agents/enroll': 'enrol',
  'POST /v1/agents/me/rotate-token': 'rotateToken',
  'POST /v1/agents/:id/rotate-token': 'rotateAgentToken',
  'DELETE /v1/agents/:id': 'revokeAgent',
  'GET /v1/services': 'services',
  'GET /v1/services/:id/diagnostics': 'serviceDiagnostics',
  'GET /v1/events': 'events',
  'GET /v1/api-keys': 'apiKeys',
  'POST /v1/api-keys': 'createApiKey',
  'DELETE /v1/api-keys/:id': 'revokeApiKey',
  'GET /v1/audit': 'audit',
  'POST /v1/auth/login': 'requestLoginLink',
  'GET /v1/auth/verify': 'signIn',
  'POST /v1/auth/verify': 'signIn',
  'POST /v1/auth/logout': 'signOut',
  'POST /v1/device/code': 'deviceLogin',
  'POST /v1/device/token': 'deviceLogin',
  'POST /v1/device/approve': 'approveDevice',
  'GET /v1/workspaces': 'workspaces',
  'POST /v1/workspaces': 'createWorkspace',
  'GET /v1/workspaces/:id': 'workspace',
  'GET /v1/workspaces/:id/members': 'members',
  'POST /v1/workspaces/:id/invites': 'invite',
  'DELETE /v1/workspaces/:id/members/:userId': 'removeMember',
  'GET /v1/workspaces/:id/invitations': 'invitations',
  'DELETE /v1/workspaces/:id/invitations/:invitationId': 'revokeInvitation',
  'GET /v1/shares': 'shares',
  'POST /v1/shares': 'createShare',
  'POST /v1/shares/join': 'joinShare',
  'DELETE /v1/shares/:id': 'revokeShare',
  'GET /v1/links': 'links',
  'POST /v1/links': 'createLink',
  'DELETE /v1/links/:id': 'revokeLink',
} as const satisfies Record<string, keyof ApiClient | 'deviceLogin'>;

const path = (strings: TemplateStringsArray, ...ids: string[]) => strings.reduce((out, part, i) => out + part + (i < ids.length ? encodeURIComponent(ids[i]!) : ''), '');

export class ApiClient {
  private readonly base: string;
  /** The session cookie's value, once signed in (or given). */
  private session: string | undefined;

  constructor(private readonly options: ApiClientOptions) {
    this.base = apiBaseUrl(options.hubUrl, options.allowInsecure ?? false);
    this.session = options.session;
  }

  /** Liveness: true while the hub's process serves requests. */
  async health(): Promise<boolean> {
    return (await this.call<{ ok: boolean }>('GET', '/healthz')).ok;
  }

  /** Readiness: whether the hub's database answers and it takes agents (false while starting or draining). */
  async ready(): Promise<boolean> {
    const answer = await this.send('GET', '/readyz');
    return answer.status === 200;
  }

  /** The Prometheus metrics text (METRICS_TOKEN as `credential`, or from loopback). */
  async metrics(): Promise<string> {
    const answer = await this.send('GET', '/metrics');
    if (answer.status !== 200) throw this.failure(answer.status, answer.text);
    return answer.text;
  }

  enrol(body: EnrolRequest): Promise<EnrolResult> {
    return this.call('POST', '/v1/agents/enroll', body);
  }

  me(): Promise<Me> {
    return this.call('GET', '/v1/me');
  }

  async services(): Promise<ServiceSummary[]> {
    return (await this.call<{ services: ServiceSummary[] }>('GET', '/v1/services')).services;
  }

  async agents(): Promise<AgentSummary[]> {
    return (await this.call<{ agents: AgentSummary[] }>('GET', '/v1/agents')).agents;
  }

  /** Replaces the calling agent's token; the old one keeps working for 24 hours. */
  rotateToken(): Promise<RotatedToken> {
    return this.call('POST', '/v1/agents/me/rotate-token');
  }

  /** An admin replaces a connected agent's token: the agent gets it over its connection (AGENT_OFFLINE otherwise). */
  rotateAgentToken(id: string): Promise<AgentTokenHandedOver> {
    return this.call('POST', path`/v1/agents/${id}/rotate-token`);
  }

  /** Revokes an agent: its token stops working and its connections close at once. */
  async revokeAgent(id: string): Promise<void> {
    await this.call('DELETE', path`/v1/agents/${id}`);
  }

  /** Creates an API key; `key` is shown only in this answer. */
  createApiKey(name: string): Promise<CreatedApiKey> {
    return this.call('POST', '/v1/api-keys', { name } satisfies CreateApiKeyRequest);
  }

  async apiKeys(): Promise<ApiKeyInfo[]> {
    return (await this.call<{ apiKeys: ApiKeyInfo[] }>('GET', '/v1/api-keys')).apiKeys;
  }

  async revokeApiKey(id: string): Promise<void> {
    await this.call('DELETE', path`/v1/api-keys/${id}`);
  }

  /** Shares some services with one other workspace; `code` is shown only in this answer. */
  createShare(body: CreateShareRequest): Promise<CreatedShare> {
    return this.call('POST', '/v1/shares', body);
  }

  /** The workspace's own shares, and the shares of other workspaces it joined. */
  shares(): Promise<ShareList> {
    return this.call('GET', '/v1/shares');
  }

  /** Revokes a share: its open streams end at once. */
  async revokeShare(id: string): Promise<void> {
    await this.call('DELETE', path`/v1/shares/${id}`);
  }

  /** Joins another workspace's share with its code; its services are then reached as `<alias>/<service>`. */
  joinShare(code: string, alias?: string): Promise<JoinedShareInfo> {
    return this.call('POST', '/v1/shares/join', { code, ...(alias !== undefined ? { alias } : {}) } satisfies JoinShareRequest);
  }

  /** Creates a public link to a service; the token and URLs are shown only in this answer. */
  createLink(body: CreateLinkRequest): Promise<CreatedLink> {
    return this.call('POST', '/v1/links', body);
  }

  /** The workspace's public links, newest first (revoked and expired ones too). */
  async links(): Promise<LinkInfo[]> {
    return (await this.call<{ links: LinkInfo[] }>('GET', '/v1/links')).links;
  }

  /** Revokes a public link: it answers 410 from now on and its open requests end at once. */
  async revokeLink(id: string): Promise<void> {
    await this.call('DELETE', path`/v1/links/${id}`);
  }

  /** A service's health as its exposing agent reported it: the latest report and the history, newest first. */
  serviceDiagnostics(id: string, limit?: number): Promise<ServiceDiagnostics> {
    return this.call('GET', `${path`/v1/services/${id}/diagnostics`}${limit !== undefined ? `?limit=${limit}` : ''}`);
  }

  /** One page of the workspace's audit log, newest first. */
  audit(query: AuditQuery = {}): Promise<AuditPage> {
    const params = new URLSearchParams();
    // Each filter's query parameter, checked against the hub's schema of GET /v1/audit.
    const names: Record<keyof AuditQuery, keyof AuditQueryParams> = { action: 'action', actorType: 'actor_type', targetType: 'target_type', agent: 'agent', since: 'since', until: 'until', before: 'before', limit: 'limit' };
    for (const [key, name] of Object.entries(names) as Array<[keyof AuditQuery, string]>) {
      const value = query[key];
      if (value !== undefined) params.set(name, String(value));
    }
    const qs = params.toString();
    return this.call('GET', `/v1/audit${qs ? `?${qs}` : ''}`);
  }

  /**
   * The workspace's live events (GET /v1/events), `hello` first, until `signal` aborts or the hub ends the stream
   * (a revoked credential, the hub shutting down). An API key or a session; agent tokens are refused.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<HubStreamEvent> {
    const res = await hubStream({
      method: 'GET',
      url: this.base + '/v1/events',
      hubUrl: this.options.hubUrl,
      headers: { accept: 'text/event-stream', ...this.authHeaders() },
      connectTimeoutMs: this.options.timeoutMs ?? 15_000,
      ca: this.options.ca,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      throw this.failure(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
    }
    res.setEncoding('utf8');
    let buffered = '';
    try {
      for await (const chunk of res) {
        buffered += chunk as string;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) yield { event, data: JSON.parse(data.join('\n')) } as HubStreamEvent;
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError' && !options.signal?.aborted) throw err;
    }
  }

  /** Mails a magic sign-in link to `email` (answered the same whether or not the address has an account). */
  requestLoginLink(email: string): Promise<LoginLinkSent> {
    return this.call('POST', '/v1/auth/login', { email } satisfies LoginRequest);
  }

  /** Trades a magic link's token for a session; this client then acts as that user. Returns the session too. */
  async signIn(token: string): Promise<SignedIn & { session: string }> {
    const answer = await this.send('POST', `/v1/auth/verify?token=${encodeURIComponent(token)}`);
    const signedIn = this.parse<SignedIn>(answer.status, answer.text);
    const pairs = answer.setCookie.map((c) => c.split(';')[0]!);
    const cookie = pairs.find((c) => SESSION_COOKIES.includes(c.slice(0, c.indexOf('='))));
    if (!cookie) throw new ConnectError('INTERNAL', 'the hub signed in but set no session cookie');
    this.session = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
    return { ...signedIn, session: this.session };
  }

  /** Ends this client's session. */
  async signOut(): Promise<void> {
    await this.call('POST', '/v1/auth/logout');
    this.session = undefined;
  }

  /** A signed-in user approves the code a device shows (`connect up` without an API key). */
  approveDevice(userCode: string, workspaceId?: string): Promise<DeviceApproved> {
    return this.call('POST', '/v1/device/approve', { user_code: userCode, ...(workspaceId ? { workspaceId } : {}) } satisfies DeviceApproveRequest);
  }

  /** The workspaces of the signed-in user (an API key: its own). */
  async workspaces(): Promise<WorkspaceInfo[]> {
    return (await this.call<{ workspaces: WorkspaceInfo[] }>('GET', '/v1/workspaces')).workspaces;
  }

  /** Creates a workspace; the signed-in user owns it. */
  createWorkspace(name: string): Promise<WorkspaceInfo> {
    return this.call('POST', '/v1/workspaces', { name } satisfies CreateWorkspaceRequest);
  }

  workspace(id: string): Promise<WorkspaceInfo> {
    return this.call('GET', path`/v1/workspaces/${id}`);
  }

  async members(workspaceId: string): Promise<MemberInfo[]> {
    return (await this.call<{ members: MemberInfo[] }>('GET', path`/v1/workspaces/${workspaceId}/members`)).members;
  }

  /** Invites a person by email: they get a magic link that joins them to the workspace. */
  invite(workspaceId: string, body: InviteRequest): Promise<InviteSent> {
    return this.call('POST', path`/v1/workspaces/${workspaceId}/invites`, body);
  }

  async removeMember(workspaceId: string, userId: string): Promise<void> {
    await this.call('DELETE', path`/v1/workspaces/${workspaceId}/members/${userId}`);
  }

  /** The workspace's pending invitations (not accepted, revoked or expired): an admin's session or an API key. */
  async invitations(workspaceId: string): Promise<InvitationInfo[]> {
    return (await this.call<{ invitations: InvitationInfo[] }>('GET', path`/v1/workspaces/${workspaceId}/invitations`)).invitations;
  }

  /** Revokes a pending invitation: its link is refused with INVITATION_REVOKED from now on. */
  async revokeInvitation(workspaceId: string, invitationId: string): Promise<void> {
    await this.call('DELETE', path`/v1/workspaces/${workspaceId}/invitations/${invitationId}`);
  }

  private authHeaders(): Record<string, string> {
    return {
      ...(this.options.credential ? { authorization: `Bearer ${this.options.credential}` } : {}),
      ...(this.session ? { cookie: SESSION_COOKIES.map((name) => `${name}=${encodeURIComponent(this.session!)}`).join('; ') } : {}),
      ...(this.session && this.options.workspaceId ? { 'x-workspace-id': this.options.workspaceId } : {}),
    };
  }

  /**
   * A change made with the session cookie goes as the dashboard's would: JSON (even without a body) from the hub's
   * own origin. The hub refuses anything else on a cookie (403 CSRF); bearer credentials need neither.
   */
  private sessionChangeHeaders(method: string): Record<string, string> {
    if (!this.session || this.options.credential || method === 'GET' || method === 'HEAD') return {};
    return { origin: new URL(this.base).origin, 'content-type': 'application/json' };
  }

  private send(method: string, path: string, body?: unknown) {
    return hubRequest({
      method,
      url: this.base + path,
      hubUrl: this.options.hubUrl,
      headers: { ...this.authHeaders(), ...this.sessionChangeHeaders(method), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      timeoutMs: this.options.timeoutMs ?? 15_000,
      ca: this.options.ca,
    });
  }

  private failure(status: number, text: string): ConnectError {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return new ConnectError('HUB_UNREACHABLE', `the hub at ${this.options.hubUrl} answered HTTP ${status} with something that is not JSON; is this a Private Connect hub?`);
    }
    return errorFromBody((json as { error?: unknown }).error);
  }

  private parse<T>(status: number, text: string): T {
    if (status < 200 || status > 299) throw this.failure(status, text);
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw this.failure(status, text);
    }
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.send(method, path, body);
    return this.parse<T>(answer.status, answer.text);
  }
}
