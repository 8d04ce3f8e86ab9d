/**
 * A typed client for the whole REST API of a hub: every route of the contract in @private-connect/api
 * (ROUTE_SCHEMAS), by `request(route, input)` or by the named methods below, each of which calls one route. What a
 * call sends and what it answers are typed from the schemas the hub validates and serialises with, so a route
 * whose contract changes no longer compiles here. Errors come back as ConnectError with the hub's code.
 *
 * Credentials: an API key or agent token (`credential`, sent as a bearer), or a user's session (`session`, the
 * pc_session cookie, which `signIn` sets from a magic-link token).
 */

import { ConnectError, errorFromBody } from '@private-connect/protocol';
import type {
  AgentSummary as ContractAgentSummary,
  AgentTokenHandedOver,
  ApiKeyInfo,
  AuditPage,
  AuditQueryParams,
  CreateLinkRequest,
  CreateShareRequest,
  CreatedApiKey,
  CreatedLink,
  CreatedShare,
  DeviceApproved,
  EnrolRequest,
  EnrolledAgent,
  HubStreamEvent,
  InvitationInfo,
  InviteRequest,
  InviteSent,
  JoinedShareInfo,
  JsonRoute,
  LinkInfo,
  LoginLinkSent,
  MeAnswer,
  MemberInfo,
  RotatedAgentToken,
  RouteAnswer,
  RouteInput,
  ServiceDiagnostics,
  ServiceSummary as ContractServiceSummary,
  ShareList,
  SignedIn,
  WorkspaceInfo,
} from '@private-connect/api';
// The one runtime import of the contract, from its TypeBox-free entry: the package's index builds every route's
// schema when it loads, which put TypeBox in the CLI bundle and 9 MiB on every idle agent (bench memory part).
import { routeRequest } from '@private-connect/api/route-path';
import { apiBaseUrl } from './agent/hub-url.js';
import { hubRequest, hubStream } from './hub-request.js';

/**
 * The session cookie's names: `__Host-pc_session` on a hub served over https, `pc_session` over plain http. A script
 * cannot always tell which one the hub sees (TLS may end at a proxy in front of it), so it sends the session under both.
 */
const SESSION_COOKIES = ['__Host-pc_session', 'pc_session'];

/** POST /v1/agents/enroll's answer: the agent token, shown this once. */
export type EnrolResult = EnrolledAgent;

/** An agent as GET /v1/agents lists it (the API contract's AgentSummary). */
export type AgentSummary = ContractAgentSummary;

/** A service as GET /v1/services lists it: what the hub knows, its traffic since the hub started, its latest health. */
export type ServiceSummary = ContractServiceSummary;

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
    return (await this.request('GET /healthz', {})).ok;
  }

  /** Readiness: whether the hub's database answers and it takes agents (false while starting or draining). */
  async ready(): Promise<boolean> {
    const answer = await this.sendRoute('GET /readyz', {});
    return answer.status === 200;
  }

  /** The Prometheus metrics text (METRICS_TOKEN as `credential`, or from loopback). */
  async metrics(): Promise<string> {
    const answer = await this.sendRoute('GET /metrics', {});
    if (answer.status !== 200) throw this.failure(answer.status, answer.text);
    return answer.text;
  }

  enrol(body: EnrolRequest): Promise<EnrolResult> {
    return this.request('POST /v1/agents/enroll', { body });
  }

  me(): Promise<Me> {
    return this.request('GET /v1/me', {});
  }

  async services(): Promise<ServiceSummary[]> {
    return (await this.request('GET /v1/services', {})).services;
  }

  async agents(): Promise<AgentSummary[]> {
    return (await this.request('GET /v1/agents', {})).agents;
  }

  /** Replaces the calling agent's token; the old one keeps working for 24 hours. */
  rotateToken(): Promise<RotatedToken> {
    return this.request('POST /v1/agents/me/rotate-token', {});
  }

  /** An admin replaces a connected agent's token: the agent gets it over its connection (AGENT_OFFLINE otherwise). */
  rotateAgentToken(id: string): Promise<AgentTokenHandedOver> {
    return this.request('POST /v1/agents/:id/rotate-token', { params: { id } });
  }

  /** Revokes an agent: its token stops working and its connections close at once. */
  async revokeAgent(id: string): Promise<void> {
    await this.request('DELETE /v1/agents/:id', { params: { id } });
  }

  /** Creates an API key; `key` is shown only in this answer. */
  createApiKey(name: string): Promise<CreatedApiKey> {
    return this.request('POST /v1/api-keys', { body: { name } });
  }

  async apiKeys(): Promise<ApiKeyInfo[]> {
    return (await this.request('GET /v1/api-keys', {})).apiKeys;
  }

  async revokeApiKey(id: string): Promise<void> {
    await this.request('DELETE /v1/api-keys/:id', { params: { id } });
  }

  /** Shares some services with one other workspace; `code` is shown only in this answer. */
  createShare(body: CreateShareRequest): Promise<CreatedShare> {
    return this.request('POST /v1/shares', { body });
  }

  /** The workspace's own shares, and the shares of other workspaces it joined. */
  shares(): Promise<ShareList> {
    return this.request('GET /v1/shares', {});
  }

  /** Revokes a share: its open streams end at once. */
  async revokeShare(id: string): Promise<void> {
    await this.request('DELETE /v1/shares/:id', { params: { id } });
  }

  /** Joins another workspace's share with its code; its services are then reached as `<alias>/<service>`. */
  joinShare(code: string, alias?: string): Promise<JoinedShareInfo> {
    return this.request('POST /v1/shares/join', { body: { code, ...(alias !== undefined ? { alias } : {}) } });
  }

  /** Creates a public link to a service; the token and URLs are shown only in this answer. */
  createLink(body: CreateLinkRequest): Promise<CreatedLink> {
    return this.request('POST /v1/links', { body });
  }

  /** The workspace's public links, newest first (revoked and expired ones too). */
  async links(): Promise<LinkInfo[]> {
    return (await this.request('GET /v1/links', {})).links;
  }

  /** Revokes a public link: it answers 410 from now on and its open requests end at once. */
  async revokeLink(id: string): Promise<void> {
    await this.request('DELETE /v1/links/:id', { params: { id } });
  }

  /** A service's health as its exposing agent reported it: the latest report and the history, newest first. */
  serviceDiagnostics(id: string, limit?: number): Promise<ServiceDiagnostics> {
    return this.request('GET /v1/services/:id/diagnostics', { params: { id }, query: limit !== undefined ? { limit: String(limit) } : {} });
  }

  /** One page of the workspace's audit log, newest first. */
  audit(query: AuditQuery = {}): Promise<AuditPage> {
    // Each filter's query parameter, as the hub's schema of GET /v1/audit names it.
    const params: AuditQueryParams = {
      action: query.action,
      actor_type: query.actorType,
      target_type: query.targetType,
      agent: query.agent,
      since: query.since,
      until: query.until,
      before: query.before,
      limit: query.limit,
    };
    return this.request('GET /v1/audit', { query: params });
  }

  /**
   * The workspace's live events (GET /v1/events), `hello` first, until `signal` aborts or the hub ends the stream
   * (a revoked credential, the hub shutting down). An API key or a session; agent tokens are refused.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<HubStreamEvent> {
    const res = await hubStream({
      method: 'GET',
      url: this.base + routeRequest('GET /v1/events', { query: {} }).path,
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
    return this.request('POST /v1/auth/login', { body: { email } });
  }

  /** Trades a magic link's token for a session; this client then acts as that user. Returns the session too. */
  async signIn(token: string): Promise<SignedIn & { session: string }> {
    const answer = await this.sendRoute('POST /v1/auth/verify', { query: { token } });
    const signedIn = this.parse<SignedIn>(answer.status, answer.text);
    const pairs = answer.setCookie.map((c) => c.split(';')[0]!);
    const cookie = pairs.find((c) => SESSION_COOKIES.includes(c.slice(0, c.indexOf('='))));
    if (!cookie) throw new ConnectError('INTERNAL', 'the hub signed in but set no session cookie');
    this.session = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
    return { ...signedIn, session: this.session };
  }

  /** Ends this client's session. */
  async signOut(): Promise<void> {
    await this.request('POST /v1/auth/logout', {});
    this.session = undefined;
  }

  /** A signed-in user approves the code a device shows (`connect up` without an API key). */
  approveDevice(userCode: string, workspaceId?: string): Promise<DeviceApproved> {
    return this.request('POST /v1/device/approve', { body: { user_code: userCode, ...(workspaceId ? { workspaceId } : {}) } });
  }

  /** The workspaces of the signed-in user (an API key: its own). */
  async workspaces(): Promise<WorkspaceInfo[]> {
    return (await this.request('GET /v1/workspaces', {})).workspaces;
  }

  /** Creates a workspace; the signed-in user owns it. */
  createWorkspace(name: string): Promise<WorkspaceInfo> {
    return this.request('POST /v1/workspaces', { body: { name } });
  }

  workspace(id: string): Promise<WorkspaceInfo> {
    return this.request('GET /v1/workspaces/:id', { params: { id } });
  }

  async members(workspaceId: string): Promise<MemberInfo[]> {
    return (await this.request('GET /v1/workspaces/:id/members', { params: { id: workspaceId } })).members;
  }

  /** Invites a person by email: they get a magic link that joins them to the workspace. */
  invite(workspaceId: string, body: InviteRequest): Promise<InviteSent> {
    return this.request('POST /v1/workspaces/:id/invites', { params: { id: workspaceId }, body });
  }

  async removeMember(workspaceId: string, userId: string): Promise<void> {
    await this.request('DELETE /v1/workspaces/:id/members/:userId', { params: { id: workspaceId, userId } });
  }

  /** The workspace's pending invitations (not accepted, revoked or expired): an admin's session or an API key. */
  async invitations(workspaceId: string): Promise<InvitationInfo[]> {
    return (await this.request('GET /v1/workspaces/:id/invitations', { params: { id: workspaceId } })).invitations;
  }

  /** Revokes a pending invitation: its link is refused with INVITATION_REVOKED from now on. */
  async revokeInvitation(workspaceId: string, invitationId: string): Promise<void> {
    await this.request('DELETE /v1/workspaces/:id/invitations/:invitationId', { params: { id: workspaceId, invitationId } });
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

  /**
   * Calls one route of the API contract (ROUTE_SCHEMAS in `@private-connect/api`) with its path parameters, query and
   * body, and resolves with its answer (undefined for 204), typed from the route's schemas. The named methods of
   * this class are shortcuts to it; this reaches every route, including one added since they were written.
   */
  async request<R extends JsonRoute>(route: R, input: RouteInput<R>): Promise<RouteAnswer<R>> {
    const answer = await this.sendRoute(route, input);
    return this.parse<RouteAnswer<R>>(answer.status, answer.text);
  }

  private sendRoute<R extends Parameters<typeof routeRequest>[0]>(route: R, input: RouteInput<R>) {
    const { method, path } = routeRequest(route, input);
    return this.send(method, path, input.body);
  }
}
