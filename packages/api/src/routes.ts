/**
 * Every REST route's whole contract, by "METHOD /path": its path parameters, query, body and answers (by status).
 * The hub registers each route with `schema: ROUTE_SCHEMAS[route]` (Fastify validates the request and serialises
 * the answer with it, and /openapi.json documents it); the SDK client and the dashboard take their types from the
 * same schemas. A test in the hub fails when a route it registers is missing here or answers outside its schema.
 */

import { Type, type TSchema } from '@sinclair/typebox';
import { IdParams, MemberParams, DiagnosticsQuery, EventsQuery } from './params.js';
import {
  AuditQueryParams,
  CreateApiKeyRequest,
  CreateLinkRequest,
  CreateShareRequest,
  CreateWorkspaceRequest,
  DeviceApproveRequest,
  DeviceTokenRequest,
  EnrolRequest,
  InvitationParams,
  InviteRequest,
  JoinShareRequest,
  LoginRequest,
  UpdateWorkspaceRequest,
  VerifyQuery,
} from './requests.js';
import * as A from './responses.js';

/** An answer without a body (204 No Content, 303 See Other). */
const noBody = (description: string) => Type.Null({ description });
/** An answer that is not JSON: its media type and a description of the text. */
const text = (mediaType: string, description: string) => ({ description, content: { [mediaType]: { schema: Type.String({ description }) } } });

/** Every refusal and failure: `{ error: { code, message } }`. */
const errors = { '4xx': A.ErrorAnswer, '5xx': A.ErrorAnswer } as const;

const ok = <T extends TSchema>(schema: T) => ({ 200: schema, ...errors }) as const;
const created = <T extends TSchema>(schema: T) => ({ 201: schema, ...errors }) as const;
const accepted = <T extends TSchema>(schema: T) => ({ 202: schema, ...errors }) as const;
const deleted = { 204: noBody('no body: done'), ...errors } as const;

export const ROUTE_SCHEMAS = {
  'GET /healthz': { response: { 200: A.HealthAnswer } },
  'GET /readyz': { response: { 200: A.ReadyAnswer, 503: A.ReadyAnswer } },
  'GET /metrics': { response: { 200: text('text/plain', 'Prometheus metrics, text exposition format.'), ...errors } },
  'GET /v1/me': { response: ok(A.MeAnswer) },
  'GET /v1/agents': { response: ok(A.AgentList) },
  'POST /v1/agents/enroll': { body: EnrolRequest, response: created(A.EnrolledAgent) },
  'POST /v1/agents/me/rotate-token': { response: created(A.RotatedAgentToken) },
  'POST /v1/agents/:id/rotate-token': { params: IdParams, response: ok(A.AgentTokenHandedOver) },
  'DELETE /v1/agents/:id': { params: IdParams, response: deleted },
  'GET /v1/services': { response: ok(A.ServiceList) },
  'GET /v1/services/:id/diagnostics': { params: IdParams, querystring: DiagnosticsQuery, response: ok(A.ServiceDiagnostics) },
  'GET /v1/events': {
    querystring: EventsQuery,
    response: { 200: text('text/event-stream', 'Server-sent events: `event: <name>` and `data: <JSON>` (HubStreamEvent), `hello` first, a `: ping` comment now and then.'), ...errors },
  },
  'GET /v1/api-keys': { response: ok(A.ApiKeyList) },
  'POST /v1/api-keys': { body: CreateApiKeyRequest, response: created(A.CreatedApiKey) },
  'DELETE /v1/api-keys/:id': { params: IdParams, response: deleted },
  'GET /v1/audit': { querystring: AuditQueryParams, response: ok(A.AuditPage) },
  'POST /v1/auth/login': { body: LoginRequest, response: accepted(A.LoginLinkSent) },
  'GET /v1/auth/verify': { querystring: VerifyQuery, response: { 303: noBody('no body: Location is the sign-in page (/auth/verify), whose button signs in'), ...errors } },
  'POST /v1/auth/verify': { querystring: VerifyQuery, response: ok(A.SignedIn) },
  'POST /v1/auth/logout': { response: deleted },
  'POST /v1/device/code': { body: EnrolRequest, response: ok(A.DeviceCodeAnswer) },
  'POST /v1/device/approve': { body: DeviceApproveRequest, response: ok(A.DeviceApproved) },
  'POST /v1/device/token': { body: DeviceTokenRequest, response: ok(A.EnrolledAgent) },
  'GET /v1/workspaces': { response: ok(A.WorkspaceList) },
  'POST /v1/workspaces': { body: CreateWorkspaceRequest, response: created(A.WorkspaceInfo) },
  'GET /v1/workspaces/:id': { params: IdParams, response: ok(A.WorkspaceInfo) },
  'PATCH /v1/workspaces/:id': { params: IdParams, body: UpdateWorkspaceRequest, response: ok(A.WorkspaceInfo) },
  'GET /v1/workspaces/:id/members': { params: IdParams, response: ok(A.MemberList) },
  'POST /v1/workspaces/:id/invites': { params: IdParams, body: InviteRequest, response: accepted(A.InviteSent) },
  'GET /v1/workspaces/:id/invitations': { params: IdParams, response: ok(A.InvitationList) },
  'DELETE /v1/workspaces/:id/invitations/:invitationId': { params: InvitationParams, response: deleted },
  'DELETE /v1/workspaces/:id/members/:userId': { params: MemberParams, response: deleted },
  'GET /v1/shares': { response: ok(A.ShareList) },
  'POST /v1/shares': { body: CreateShareRequest, response: created(A.CreatedShare) },
  'POST /v1/shares/join': { body: JoinShareRequest, response: created(A.JoinedShareInfo) },
  'DELETE /v1/shares/:id': { params: IdParams, response: deleted },
  'GET /v1/links': { response: ok(A.LinkList) },
  'POST /v1/links': { body: CreateLinkRequest, response: created(A.CreatedLink) },
  'DELETE /v1/links/:id': { params: IdParams, response: deleted },
} as const;

/** A route of the REST API, as "METHOD /path" with Fastify's `:param`s. */
export type ApiRoute = keyof typeof ROUTE_SCHEMAS;
