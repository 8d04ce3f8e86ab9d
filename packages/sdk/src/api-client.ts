/** A typed client for the hub's REST API. Errors come back as ConnectError with the hub's code. */

import {
  ConnectError,
  errorFromBody,
  type AgentSummary as ProtocolAgentSummary,
  type ApiKeyInfo,
  type AuditEntry,
  type ServiceInfo,
  type ServiceTrafficSummary,
  type ServiceDiagnostics,
  type ServiceHealth,
} from '@private-connect/protocol';
import type { CreatedShare, JoinedShareInfo, ShareList, CreatedLink, LinkInfo } from '@private-connect/protocol';
// Request types come from the schemas the hub validates with (one definition: @private-connect/api).
import type { AuditQueryParams, CreateApiKeyRequest, CreateLinkRequest, CreateShareRequest, EnrolRequest, JoinShareRequest } from '@private-connect/api';
import { apiBaseUrl } from './agent/hub-url.js';
import { hubRequest } from './hub-request.js';

export interface EnrolResult {
  agentId: string;
  workspaceId: string;
  label: string;
  token: string;
  expiresAt: string;
}

/** An agent as GET /v1/agents lists it (defined in the protocol package, shared with the hub). */
export type AgentSummary = ProtocolAgentSummary;

/** A service as GET /v1/services lists it: what the hub knows, and its traffic since the hub started. */
export type ServiceSummary = ServiceInfo & ServiceTrafficSummary & { health?: ServiceHealth };

export type Me =
  | { kind: 'agent'; workspaceId: string; agentId: string; label: string; expiresAt: string; expiresInMs?: number; expiring?: boolean }
  | { kind: 'api_key'; workspaceId: string; keyId: string };

export interface RotatedToken {
  agentId: string;
  token: string;
  expiresAt: string;
  /** The previous token keeps working until then (24-hour grace period). */
  previousTokenValidUntil: string;
}

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
  credential: string;
  allowInsecure?: boolean;
  timeoutMs?: number;
  /** An extra CA certificate (PEM) for a hub with a private certificate (see also trustHubCa). */
  ca?: string | Buffer;
}

export class ApiClient {
  private readonly base: string;

  constructor(private readonly options: ApiClientOptions) {
    this.base = apiBaseUrl(options.hubUrl, options.allowInsecure ?? false);
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

  /** Revokes an agent: its token stops working and its connections close at once. */
  async revokeAgent(id: string): Promise<void> {
    await this.call('DELETE', `/v1/agents/${encodeURIComponent(id)}`);
  }

  /** Creates an API key; `key` is shown only in this answer. */
  createApiKey(name: string): Promise<ApiKeyInfo & { key: string }> {
    return this.call('POST', '/v1/api-keys', { name } satisfies CreateApiKeyRequest);
  }

  async apiKeys(): Promise<ApiKeyInfo[]> {
    return (await this.call<{ apiKeys: ApiKeyInfo[] }>('GET', '/v1/api-keys')).apiKeys;
  }

  async revokeApiKey(id: string): Promise<void> {
    await this.call('DELETE', `/v1/api-keys/${encodeURIComponent(id)}`);
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
    await this.call('DELETE', `/v1/shares/${encodeURIComponent(id)}`);
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
    await this.call('DELETE', `/v1/links/${encodeURIComponent(id)}`);
  }

  /** A service's health as its exposing agent reported it: the latest report and the history, newest first. */
  serviceDiagnostics(id: string, limit?: number): Promise<ServiceDiagnostics> {
    return this.call('GET', `/v1/services/${encodeURIComponent(id)}/diagnostics${limit !== undefined ? `?limit=${limit}` : ''}`);
  }

  /** One page of the workspace's audit log, newest first. */
  audit(query: AuditQuery = {}): Promise<{ events: AuditEntry[]; nextBefore: string | null }> {
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

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await hubRequest({
      method,
      url: this.base + path,
      hubUrl: this.options.hubUrl,
      headers: {
        authorization: `Bearer ${this.options.credential}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      timeoutMs: this.options.timeoutMs ?? 15_000,
      ca: this.options.ca,
    });
    const text = response.text;
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new ConnectError('HUB_UNREACHABLE', `the hub at ${this.options.hubUrl} answered HTTP ${response.status} with something that is not JSON; is this a Private Connect hub?`);
    }
    if (response.status < 200 || response.status > 299) throw errorFromBody((json as { error?: unknown }).error);
    return json as T;
  }
}
