/** Who is asking: authenticates an HTTP request's credential (bearer or session cookie) and records its use. */

import type { FastifyRequest } from 'fastify';
import type { Database } from '../db/index.js';
import type { Clock } from '../clock.js';
import { authenticateRequest, type Principal } from '../store/credentials.js';
import { SESSION_COOKIE } from '../store/sessions.js';
import { recordAgentTokenUse } from '../store/agent-tokens.js';
import { touchApiKey } from '../store/api-keys.js';

/** What authentication needs of the hub. */
export interface AuthDeps {
  db: Database;
  clock: Clock;
  /** Counts a refused credential (by the error's reason, for /metrics). */
  onAuthFailure(err: unknown): void;
}

/**
 * Authenticates the request (routes use `request.authenticate` / `requires` of auth/auth-plugin.ts, which call this). A signed-in user acts in the workspace named by `workspace` (routes under
 * /v1/workspaces/:id) or the X-Workspace-Id header, else in their first workspace.
 */
export async function principalOf(request: FastifyRequest, deps: AuthDeps, workspace?: string): Promise<Principal> {
  try {
    const workspaceHeader = workspace ?? request.headers['x-workspace-id'];
    const creds = { authorization: request.headers.authorization, sessionCookie: request.cookies?.[SESSION_COOKIE], workspaceHeader };
    const principal = await authenticateRequest(deps.db, creds, deps.clock.now());
    await recordCredentialUse(deps, principal, request);
    return principal;
  } catch (err) {
    deps.onAuthFailure(err);
    throw err;
  }
}

/** Every use of an agent token or API key is recorded (IP, user agent; see store/agent-tokens.ts for the audit). */
async function recordCredentialUse(deps: AuthDeps, principal: Principal, request: FastifyRequest): Promise<void> {
  const now = deps.clock.now();
  if (principal.kind === 'agent') {
    const use = { ip: request.ip, userAgent: request.headers['user-agent'], via: 'http' as const, now };
    await deps.db.withWorkspace(principal.workspaceId, (tx) => recordAgentTokenUse(tx, principal.workspaceId, principal.agentId, principal.tokenId, use));
  } else if (principal.kind === 'api_key') {
    await deps.db.withWorkspace(principal.workspaceId, (tx) => touchApiKey(tx, principal.keyId, now));
  }
}
