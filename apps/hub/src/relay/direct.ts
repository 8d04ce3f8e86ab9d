/**
 * The hub's side of direct paths (docs/direct.md): the control ops `advertise` (an exposing agent's direct port and
 * addresses), `direct` (a reaching agent asks for a way there and a ticket), `direct_report` (the exposing agent's
 * account of the streams that went direct) and `path` (which path a reaching agent's new streams take).
 *
 * `direct` refuses exactly what an OPEN of the same name by the same agent is refused (a missing service, another
 * workspace's, a revoked or expired share, HTTP_ONLY_LIMIT): the same answers, revealing nothing more. Past those
 * checks, a missing direct path is not an error but `unavailable`, with a reason a person reads.
 */

import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  DIRECT_TICKET_TTL_MS,
  MAX_DIRECT_CANDIDATES,
  ConnectError,
  isUuid,
  signDirectTicket,
  type ControlOps,
  type DirectAnswer,
  type DirectCandidate,
  type DirectStreamReport,
  type ReachPath,
} from '@private-connect/protocol';
import { notFound } from '../auth/guard.js';
import { recordAudit } from '../store/audit.js';
import { agentExists } from '../store/agents.js';
import { clearAdvertised, directPathsOn, findAdvertised, storeAdvertised } from '../store/direct.js';
import { findService } from '../store/services.js';
import { findOwnedShare, type ShareRow } from '../store/shares.js';
import { MAX_PATHS_PER_CONNECTION, type AgentConnection, type DirectGrant, type SharedDirect } from './agent-connection.js';
import { serviceNotFound } from './missing-service.js';

type Args<Op extends keyof ControlOps> = ControlOps[Op]['args'];
type Empty = Record<string, never>;

/** An address as the hub saw it, IPv4-mapped IPv6 (`::ffff:10.0.0.5`) unwrapped. */
export function plainAddress(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1] : ip;
}

/**
 * `advertise {port, addrs}`: what this exposing agent's connection advertises, kept on the connection and in its
 * agent's row (any hub answering `direct` reads it there) until the connection closes. The address the hub sees the
 * agent at joins the agent's own as source 'hub'. Addresses must be IP literals: a reaching agent connects to
 * them, and an exposing agent must not be able to point it at names of its own choosing.
 */
export async function advertise(conn: AgentConnection, { port, addrs }: Args<'advertise'>): Promise<Empty> {
  const candidates: DirectCandidate[] = [];
  if (port > 0) {
    const seen = new Set<string>();
    const add = (host: string, source: DirectCandidate['source']) => {
      if (seen.has(host)) return;
      seen.add(host);
      candidates.push({ host, port, source });
    };
    for (const addr of addrs) {
      if (isIP(addr) === 0) throw new ConnectError('BAD_REQUEST', `args.addrs must be IP addresses; got "${addr.slice(0, 80)}"`);
      add(plainAddress(addr)!, 'local');
    }
    const seenByHub = plainAddress(conn.meta.ip);
    if (seenByHub && isIP(seenByHub) !== 0) add(seenByHub, 'hub');
  }
  const advertised = { port, candidates: candidates.slice(0, MAX_DIRECT_CANDIDATES * 2) };
  await conn.ctx.db.withWorkspace(conn.workspaceId, (tx) => storeAdvertised(tx, conn.agentId, conn.id, advertised));
  // A connection that closed while this was written: its teardown found nothing to clear, so it is cleared here.
  if (conn.state === 'closed') {
    await conn.ctx.db.withWorkspace(conn.workspaceId, (tx) => clearAdvertised(tx, conn.agentId, conn.id));
    return {};
  }
  conn.advertised = advertised;
  conn.log.info({ port, candidates: advertised.candidates.length }, port > 0 ? 'direct port advertised' : 'direct paths off on this agent');
  return {};
}

/** Where a `direct` name leads: the service's workspace and name there, its live route, the share if any. */
type DirectWhere = Omit<SharedDirect, 'share' | 'expiresAt'> & Partial<Pick<SharedDirect, 'share' | 'expiresAt'>>;

/** A service of the caller's own workspace: refused like resolve and OPEN refuse a name that is not there. */
async function ownService(conn: AgentConnection, name: string): Promise<DirectWhere> {
  const row = await conn.ctx.db.withWorkspace(conn.workspaceId, (tx) => findService(tx, name));
  if (!row) throw serviceNotFound(name);
  const target = conn.ctx.router.get(conn.workspaceId, name);
  return { workspaceId: conn.workspaceId, service: name, target: target?.state === 'open' ? target : undefined };
}

const unavailable = (reason: string): DirectAnswer => ({ unavailable: { code: 'DIRECT_UNAVAILABLE', reason } });

/**
 * `direct {name}`: the exposing agent's candidates and identity key, and a ticket (protocol direct.ts) for this agent
 * and this service only, good for DIRECT_TICKET_TTL_MS (or until the share's expiry, when sooner); or `unavailable`.
 */
export async function direct(conn: AgentConnection, { name }: Args<'direct'>): Promise<DirectAnswer> {
  // First the checks of an OPEN: whatever is refused there is refused here, with the same answer.
  const where = name.includes('/') ? await conn.ctx.shared.direct(conn, name) : await ownService(conn, name);
  const { db, clock } = conn.ctx;
  const own = where.workspaceId === conn.workspaceId;
  const exposer = where.target;
  const found = await db.withWorkspace(where.workspaceId, async (tx) => ({
    on: await directPathsOn(tx),
    exposer: exposer ? await findAdvertised(tx, exposer.agentId) : undefined,
  }));
  if (!found.on) return unavailable(own ? 'this workspace turned direct paths off' : 'the workspace that shares this service turned direct paths off');
  if (!own && !(await db.withWorkspace(conn.workspaceId, directPathsOn))) return unavailable('this workspace turned direct paths off');
  if (!exposer || !found.exposer) return unavailable('the exposing agent is offline');
  // Several processes of one agent (two `connect expose` in one config folder) each advertise a port of their own:
  // the candidates are those of the connection the service is routed to when it is on this hub (the agent's row
  // holds the latest advertisement of any of them), and the ticket names that connection.
  const local = conn.ctx.connections.has(exposer as AgentConnection) ? (exposer as AgentConnection) : undefined;
  const advertised = local ? local.advertised : found.exposer.advertised;
  const advertisedBy = local ? local.id : found.exposer.conn;
  const { identityKey } = found.exposer;
  if (!advertised) return unavailable('the exposing agent advertised no direct port (an older version, or it is still starting)');
  if (advertised.port === 0) return unavailable('the exposing agent runs with --no-direct');
  if (advertised.candidates.length === 0) return unavailable('the exposing agent gave no address to reach it at');
  if (!identityKey) return unavailable('the exposing agent has no identity key (an older version)');
  const { identityKey: idk, staticKey: sk, plain } = conn.hello ?? {};
  if (!idk || !sk) return unavailable('this agent sent no identity and static key in its hello (an older version)');

  const now = clock.now().getTime();
  const exp = Math.min(now + DIRECT_TICKET_TTL_MS, where.expiresAt?.getTime() ?? Infinity);
  const ticket = signDirectTicket(
    {
      v: 1,
      ws: where.workspaceId,
      to: exposer.agentId,
      svc: where.service,
      from: conn.agentId,
      fromWs: conn.workspaceId,
      label: conn.label,
      idk,
      sk,
      ...(plain === true ? { plain: true } : {}),
      ...(where.share ? { share: where.share } : {}),
      iat: now,
      exp,
      jti: randomBytes(16).toString('base64url'),
      ...(advertisedBy ? { conn: advertisedBy } : {}),
    },
    conn.ctx.ticketKey.privateKey,
  );
  noteGrant(conn, { workspaceId: where.workspaceId, agentId: exposer.agentId, from: conn.agentId, ...(where.share ? { shareId: where.share.id } : {}) });
  return { direct: { agentId: exposer.agentId, identityKey, candidates: advertised.candidates, ticket, expiresAt: exp } };
}

/**
 * The exposing agent's connections here learn whom a ticket was handed to (revoking that agent or share must reach
 * them); connected to another hub, that hub is told (the cluster's direct grant), whose connections note it.
 */
function noteGrant(conn: AgentConnection, grant: DirectGrant): void {
  if (applyDirectGrant(conn.ctx.connections, grant) === 0) conn.ctx.cluster?.directGrant(grant);
}

/** Notes `grant` on this hub's connections of its exposing agent; returns how many there are. */
export function applyDirectGrant(connections: Iterable<AgentConnection>, grant: DirectGrant): number {
  let noted = 0;
  for (const c of connections) {
    if (c.workspaceId !== grant.workspaceId || c.agentId !== grant.agentId || c.state !== 'open') continue;
    c.directReachers.add(grant.from);
    if (grant.shareId) c.directShares.add(grant.shareId);
    noted++;
  }
  return noted;
}

/** The streams of one report that share a service, a reaching agent and a share: one audit row. */
interface StreamGroup {
  service: string;
  from: string;
  share?: ShareRow;
  streams: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
}

/**
 * `direct_report {streams}`: streams that ended on this exposing agent's direct port. They count into its services'
 * traffic (directStreams, directBytesIn, directBytesOut) and the workspace's audit log (`stream.direct`, one row per
 * service, reaching agent and share). A service this connection does not expose is refused like a missing service,
 * a share that is not this workspace's (or does not list the service) like a missing share.
 */
export async function directReport(conn: AgentConnection, { streams }: Args<'direct_report'>): Promise<Empty> {
  for (const s of streams) if (!conn.exposed.has(s.service)) throw serviceNotFound(s.service);
  const { db, stats } = conn.ctx;
  await db.withWorkspace(conn.workspaceId, async (tx) => {
    const shares = new Map<string, ShareRow>();
    for (const id of new Set(streams.flatMap((s) => (s.shareId ? [s.shareId] : [])))) {
      const share = isUuid(id) ? await findOwnedShare(tx, id) : undefined;
      if (!share) throw notFound('share', id);
      shares.set(id, share);
    }
    const groups = groupStreams(streams, shares);
    const ids = new Map<string, string>();
    for (const g of groups) {
      if (!ids.has(g.service)) ids.set(g.service, String((await findService(tx, g.service))?.id ?? ''));
      await recordAudit(tx, conn.workspaceId, {
        actorType: 'agent',
        actorId: g.from,
        action: 'stream.direct',
        targetType: 'service',
        targetId: ids.get(g.service) || undefined,
        metadata: {
          service: g.service,
          direct: true,
          streams: g.streams,
          bytesIn: g.bytesIn,
          bytesOut: g.bytesOut,
          ms: g.ms,
          reportedBy: conn.agentId,
          ...(g.share ? { shareId: g.share.id, grantee: g.share.grantee_workspace_id } : {}),
        },
      });
    }
    for (const g of groups) {
      const counter = stats.services.counter(conn.workspaceId, g.service);
      counter.directStreams += g.streams;
      counter.directBytesIn += g.bytesIn;
      counter.directBytesOut += g.bytesOut;
    }
  });
  await noteReportedReachers(conn, streams);
  return {};
}

function groupStreams(streams: DirectStreamReport[], shares: Map<string, ShareRow>): StreamGroup[] {
  const groups = new Map<string, StreamGroup>();
  for (const s of streams) {
    const share = s.shareId ? shares.get(s.shareId) : undefined;
    if (share && !share.services.includes(s.service)) throw notFound('share', share.id);
    const key = `${s.service}\0${s.from}\0${s.shareId ?? ''}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { service: s.service, from: s.from, ...(share ? { share } : {}), streams: 0, bytesIn: 0, bytesOut: 0, ms: 0 }));
    g.streams++;
    g.bytesIn += s.bytesIn;
    g.bytesOut += s.bytesOut;
    g.ms += s.ms;
  }
  return [...groups.values()];
}

/**
 * Reaching agents of reported streams that this connection did not know of (its tickets were handed out before the
 * hub restarted, or by a hub that is gone) join its directReachers, once the hub found them where they must be:
 * an agent of this workspace, or of the workspace that joined the share.
 */
async function noteReportedReachers(conn: AgentConnection, streams: DirectStreamReport[]): Promise<void> {
  for (const s of streams) {
    if (s.shareId) conn.directShares.add(s.shareId);
    if (conn.directReachers.has(s.from) || !isUuid(s.from)) continue;
    const workspaceId = s.shareId ? (await conn.ctx.db.withWorkspace(conn.workspaceId, (tx) => findOwnedShare(tx, s.shareId!)))?.grantee_workspace_id : conn.workspaceId;
    if (workspaceId && (await conn.ctx.db.withWorkspace(workspaceId, (tx) => agentExists(tx, s.from)))) conn.directReachers.add(s.from);
  }
}

/** `path {name, mode, via?, reason?}`: kept on the reaching agent's connection for GET /v1/agents and the dashboard. */
export function reportPath(conn: AgentConnection, path: Args<'path'>): Empty {
  const known: ReachPath = { name: path.name, mode: path.mode, ...(path.via ? { via: path.via } : {}), ...(path.reason ? { reason: path.reason } : {}) };
  conn.paths.delete(path.name);
  conn.paths.set(path.name, { ...known, at: conn.ctx.clock.now() });
  if (conn.paths.size > MAX_PATHS_PER_CONNECTION) conn.paths.delete(conn.paths.keys().next().value!);
  return {};
}
