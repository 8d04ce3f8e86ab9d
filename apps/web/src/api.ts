/**
 * The dashboard's one way to the hub's REST API: relative URLs (the hub serves this app on the API's origin), the
 * HttpOnly session cookie, X-Workspace-Id for the chosen workspace, JSON on every change (the hub's CSRF rules ask
 * for it; the browser adds the Origin). A 401 sends the browser to the sign-in page. Calls name a route of the API
 * contract (@private-connect/api): what they send and answer is typed from the schemas the hub serves with.
 */

import type { JsonRoute, RouteAnswer, RouteInput } from '@private-connect/api';
// The one runtime piece of the contract the dashboard bundles: it imports nothing (no TypeBox in the bundle).
import { routeRequest } from '@private-connect/api/route-path';

/** An error answer of the API ({error:{code,message}}), or a network failure (code `network`). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

let workspaceId: string | null = null;

/** The workspace every later call acts in (null: the user's first workspace, the hub's default). */
export function setApiWorkspace(id: string | null): void {
  workspaceId = id;
}

/** Sends the browser to the hub's sign-in page, coming back to where it is now. */
export function toLogin(): void {
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(here)}`);
}

/**
 * Calls one route of the API, e.g. `request('DELETE /v1/links/:id', { params: { id } })`; resolves with its answer
 * (undefined for 204), rejects with an ApiError.
 */
export function request<R extends JsonRoute>(route: R, input: RouteInput<R>): Promise<RouteAnswer<R>> {
  const { method, path } = routeRequest(route, input);
  return send<RouteAnswer<R>>(method, path, input.body);
}

async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (workspaceId) headers['x-workspace-id'] = workspaceId;
  // Every change is JSON, even without a body: the hub refuses a cookie request that changes state otherwise (CSRF).
  if (body !== undefined || (method !== 'GET' && method !== 'HEAD')) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError('network', 'the hub did not answer; check your connection', 0);
  }
  if (response.status === 401) {
    toLogin();
    throw new ApiError('UNAUTHORIZED', 'signing in again', 401);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(error?.code ?? 'internal', error?.message ?? `the hub answered ${response.status}`, response.status);
  }
  return parsed as T;
}
