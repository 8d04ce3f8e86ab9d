/**
 * Service shares across workspaces, on the relay side: resolving `<alias>/<service>` for the workspace that joined
 * (stream opens, and the resolve/reach control ops), the hub's limits on TCP services, the exposing agent's
 * reports of HTTP requests, and finding the open streams of shares that were revoked or ran out (relay/cuts.ts cuts
 * them). The relay asks its questions about `alias/service` through sharedServices (RelayContext.shared).
 *
 * Who enforces what: the hub decides whether a stream may open at all (joined, not revoked, not expired, the
 * service is in the share, and for TCP services the rate of new connections, each one audited). For HTTP services
 * the exposing agent applies methods, paths and the request rate to every request and reports each one (op
 * `access`), because the hub relays bytes it does not read (packages/sdk/src/agent/share-filter.ts).
 */

import { ConnectError, isUuid, parseReachName, type AccessReport, type OpenNotice, type ServiceInfo, type ServiceProtocol, type SharePolicy } from '@private-connect/protocol';
import { notFound } from '../auth/guard.js';
import type { AgentConnection, SharedDirect, SharedServices } from '../relay/agent-connection.js';
import { cutShareStreams, endSessions } from '../relay/cuts.js';
import { agentKeys } from '../store/agents.js';
import { findJoinedService, findOwnedShare, isExpired, shareEndsOf, type ShareRow } from '../store/shares.js';
import type { SharingContext } from './context.js';

/** A service reached through a share: the share, and what the owner's service row says (absent: not exposed). */
interface SharedService {
  share: ShareRow;
  alias: string;
  service: string;
  protocol?: ServiceProtocol;
  port?: number;
}

/**
 * The share the workspace joined under the alias of `name` (`alias/service`), when `service` is one of its
 * services; undefined otherwise, so that an unknown alias and a service the share does not list (whether the
 * owner has it or not) get the same answer as any missing name.
 */
async function findShared(sharing: SharingContext, workspaceId: string, name: string): Promise<SharedService | undefined> {
  let alias: string | undefined;
  let service: string;
  try {
    ({ alias, service } = parseReachName(name));
  } catch {
    return undefined;
  }
  if (alias === undefined) return undefined;
  const found = await findJoinedService(sharing.db, workspaceId, alias, service);
  return found && { share: found.share, alias, service, protocol: found.protocol, port: found.port };
}

/** Why the share opens nothing any more (revoked, expired), or undefined while it is live. */
function shareEnded(share: ShareRow, alias: string, now: Date): ConnectError | undefined {
  if (share.revoked_at) return new ConnectError('SHARE_REVOKED', `the share "${alias}" was revoked by its owner; ask them for a new one`);
  if (isExpired(share, now)) {
    return new ConnectError('SHARE_EXPIRED', `the share "${alias}" expired at ${new Date(share.expires_at).toISOString()}; ask its owner for a new one`);
  }
  return undefined;
}

function notExposed(name: string): ConnectError {
  return new ConnectError('SERVICE_OFFLINE', `"${name}" is not available right now: the workspace that shares it is not exposing it`);
}

/** A share that limits methods or paths passes no raw TCP: only an HTTP service's agent applies those limits. */
function httpOnlyLimit(found: SharedService, name: string): ConnectError | undefined {
  if (found.protocol === 'http' || !(found.share.methods || found.share.paths)) return undefined;
  return new ConnectError('HTTP_ONLY_LIMIT', `"${name}" is exposed as TCP now, and the share limits HTTP methods or paths; its owner must expose it with --http`);
}

/** The share's limits as the exposing agent gets them: in the OPEN notice of each stream, and in direct tickets. */
function sharePolicy(share: ShareRow): SharePolicy {
  return {
    id: share.id,
    name: share.name,
    ...(share.methods ? { methods: share.methods } : {}),
    ...(share.paths ? { paths: share.paths } : {}),
    ...(share.rate_per_min !== null ? { ratePerMin: share.rate_per_min } : {}),
  };
}

/** The relay's questions about `alias/service` names (RelayContext.shared), answered by this module. */
export function sharedServices(sharing: SharingContext): SharedServices {
  return {
    resolve: (conn, name) => resolveSharedService(sharing, conn, name),
    open: (conn, id, name, handshake) => openShared(sharing, conn, id, name, handshake),
    direct: (conn, name) => directShared(sharing, conn, name),
    reportAccess: (conn, args) => reportAccess(sharing, conn, args),
  };
}

/**
 * The service `alias/service` for the resolve and reach control ops of a joining workspace's agent. Describes the
 * shared service only: its name here, its port (the reach listener's default) and whether it is online; never the
 * owner's agent or host.
 */
export async function resolveSharedService(sharing: SharingContext, conn: AgentConnection, name: string): Promise<{ info: ServiceInfo; shareId: string }> {
  const found = await findShared(sharing, conn.workspaceId, name);
  if (!found) throw notFound('service', name);
  const ended = shareEnded(found.share, found.alias, sharing.clock.now());
  if (ended) throw ended;
  if (found.protocol === undefined || found.port === undefined) throw notExposed(name);
  // The exposing agent's keys, for the opener's end-to-end session; the owner's agent stays unnamed otherwise.
  const live = sharing.router.get(found.share.workspace_id, found.service);
  const keys = live && (await sharing.db.withWorkspace(found.share.workspace_id, (tx) => agentKeys(tx, live.agentId)));
  const info: ServiceInfo = {
    id: found.share.id,
    name,
    target: `shared:${found.port}`,
    agentId: 'share',
    agentLabel: `share "${found.share.name}"`,
    online: live !== undefined,
    protocol: found.protocol,
    ...(keys ? { keys } : {}),
  };
  return { info, shareId: found.share.id };
}

/** Opens `conn`'s stream `id` to `alias/service` through a share its workspace joined, or refuses it. */
export async function openShared(
  sharing: SharingContext,
  conn: AgentConnection,
  id: number,
  name: string,
  handshake: Pick<OpenNotice, 'e2e' | 'plain'> = {},
): Promise<void> {
  const found = await findShared(sharing, conn.workspaceId, name);
  if (!found) {
    const missing = notFound('service', name);
    return conn.refuseOpen(id, missing.code, missing.message);
  }
  const { share, service } = found;
  const http = found.protocol === 'http';
  // Every attempt through the share is the owner's business: TCP opens and every refusal here; the requests of an
  // HTTP service are reported one by one by the exposing agent.
  const audit = (result: string) =>
    sharing.access.record(share.workspace_id, {
      actorType: 'share',
      actorId: conn.workspaceId,
      action: 'share.access',
      targetType: 'share',
      targetId: share.id,
      ip: conn.meta.ip,
      metadata: { service, grantee: conn.workspaceId, agent: conn.label, result },
    });
  const refuse = (err: ConnectError) => {
    audit(err.code);
    conn.refuseOpen(id, err.code, err.message);
  };
  const ended = shareEnded(share, found.alias, sharing.clock.now());
  if (ended) return refuse(ended);
  const target = sharing.router.get(share.workspace_id, service);
  if (found.protocol === undefined || !target || target.state !== 'open') return refuse(notExposed(name));
  const limited = httpOnlyLimit(found, name);
  if (limited) return refuse(limited);
  if (!http && share.rate_per_min !== null) {
    const wait = sharing.rates.take(share.id, share.rate_per_min, Date.now());
    if (wait > 0) {
      return refuse(new ConnectError('RATE_LIMITED', `the share "${found.alias}" allows ${share.rate_per_min} new connections a minute; try again in ${wait} s`));
    }
  }
  if (!http) audit('open');
  const notice: OpenNotice = {
    service,
    from: conn.openerInfo(conn.meta.ip),
    share: sharePolicy(share),
    ...handshake,
  };
  conn.openTo(id, target, notice, { shareId: share.id });
}

/**
 * The checks an OPEN of `alias/service` gets, for a direct ticket (relay/direct.ts): the same refusals, in the same
 * order, but for the rate of new connections (the exposing agent applies it to direct streams, from the ticket's
 * share policy) and for an offline exposing agent (`target` undefined: the caller says why there is no direct path).
 */
export async function directShared(sharing: SharingContext, conn: AgentConnection, name: string): Promise<SharedDirect> {
  const found = await findShared(sharing, conn.workspaceId, name);
  if (!found) throw notFound('service', name);
  const ended = shareEnded(found.share, found.alias, sharing.clock.now());
  if (ended) throw ended;
  if (found.protocol === undefined) throw notExposed(name);
  const limited = httpOnlyLimit(found, name);
  if (limited) throw limited;
  const target = sharing.router.get(found.share.workspace_id, found.service);
  return {
    workspaceId: found.share.workspace_id,
    service: found.service,
    target: target?.state === 'open' ? target : undefined,
    share: sharePolicy(found.share),
    expiresAt: new Date(found.share.expires_at),
  };
}

/**
 * The exposing agent reports one HTTP request through a share (control op `access`) for the owner's audit log. The
 * report's fields were checked where the request came in (parseControlArgs).
 */
export async function reportAccess(sharing: SharingContext, conn: AgentConnection, report: AccessReport): Promise<Record<string, never>> {
  const { shareId, service, method, path, status, ip, count = 1 } = report;
  // Only a share of the reporting agent's own workspace: another workspace's answers like a missing one.
  const share = isUuid(shareId) ? await sharing.db.withWorkspace(conn.workspaceId, (tx) => findOwnedShare(tx, shareId)) : undefined;
  if (!share) throw notFound('share', shareId);
  if (!share.services.includes(service)) throw new ConnectError('BAD_REQUEST', `"${service.slice(0, 80)}" is not a service of share ${share.name}`);
  sharing.access.record(share.workspace_id, {
    actorType: 'share',
    actorId: share.grantee_workspace_id ?? undefined,
    action: 'share.access',
    targetType: 'share',
    targetId: share.id,
    ip,
    metadata: { service, grantee: share.grantee_workspace_id, method, path, status, reportedBy: conn.agentId },
  }, count);
  return {};
}

/** Cuts the streams of shares that expired or were revoked (by another hub) since they opened. */
export async function sweepShareStreams(sharing: SharingContext): Promise<number> {
  // Shares of relayed streams, and of direct tickets handed out (or direct streams reported) on this hub.
  const ids = directShareIds(sharing);
  for (const conn of sharing.connections) for (const end of conn.streams.values()) if (end.tag?.shareId) ids.add(end.tag.shareId);
  if (ids.size === 0) return 0;
  const rows = await shareEndsOf(sharing.db, [...ids]);
  const now = sharing.clock.now();
  let cut = 0;
  for (const row of rows) {
    ids.delete(row.id);
    let why: string | undefined;
    if (row.revoked_at) cut += cutShareStreams(sharing.connections, row.id, 'SHARE_REVOKED', (why = 'the share was revoked by its owner'));
    else if (isExpired(row, now)) cut += cutShareStreams(sharing.connections, row.id, 'SHARE_EXPIRED', (why = `the share expired at ${new Date(row.expires_at).toISOString()}`));
    if (why) endDirectShare(sharing, { workspaceId: row.workspace_id, shareId: row.id, services: row.services, reason: why });
  }
  // A share that is gone altogether (its workspace was deleted).
  for (const id of ids) {
    cut += cutShareStreams(sharing.connections, id, 'SHARE_REVOKED', 'the share no longer exists');
    for (const conn of sharing.connections) conn.directShares.delete(id);
  }
  return cut;
}

/**
 * The exposing agents of a share that ended (the sweep found it expired, or revoked on another hub) drop its
 * end-to-end sessions and cut its direct streams: told once, as the share leaves the connections' directShares.
 */
function endDirectShare(sharing: SharingContext, end: { workspaceId: string; shareId: string; services: string[]; reason: string }): void {
  const holders = [...sharing.connections].filter((conn) => conn.directShares.has(end.shareId));
  if (holders.length === 0) return;
  endSessions(holders, end);
  for (const conn of holders) conn.directShares.delete(end.shareId);
}

/** The shares of this hub's direct tickets and reports (AgentConnection.directShares), for the sweep. */
function directShareIds(sharing: SharingContext): Set<string> {
  const ids = new Set<string>();
  for (const conn of sharing.connections) for (const id of conn.directShares) ids.add(id);
  return ids;
}

/** Runs sweepShareStreams every `intervalMs` until stopped. */
export function startShareSweep(sharing: SharingContext, intervalMs: number): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepShareStreams(sharing)
      .catch((err: unknown) => sharing.log.error({ err }, 'checking shared streams for expiry failed'))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
