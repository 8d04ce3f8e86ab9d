/**
 * Control requests of an agent connection (expose, resolve, reach, list, ...; the direct paths' ops are in
 * direct.ts), and its open/close bookkeeping.
 */

import { randomUUID } from 'node:crypto';
import {
  ConnectError,
  parseControlArgs,
  parseTarget,
  validateServiceName,
  type ControlOps,
  type RequestMessage,
} from '@private-connect/protocol';
import { recordAudit } from '../store/audit.js';
import { agentKeys, updateAgentDetails } from '../store/agents.js';
import { recordAgentTokenUse } from '../store/agent-tokens.js';
import { deleteService, findService, listServices, markServicesOffline, upsertService } from '../store/services.js';
import { closeConnectionTunnels, closeTunnel, openTunnel } from '../store/tunnels.js';
import type { AgentConnection, ControlHandler } from './agent-connection.js';
import { endSessions } from './cuts.js';
import { serviceNotFound } from './missing-service.js';
import { authorize } from '../auth/guard.js';
import { reportHealth } from './health-report.js';
import { serviceDiagnostics } from '../store/diagnostics.js';
import { clearAdvertised } from '../store/direct.js';
import { advertise, direct, directReport, reportPath } from './direct.js';

type Args<Op extends keyof ControlOps> = ControlOps[Op]['args'];

/** The control plane of every agent connection (RelayContext.control). */
export const controlHandler: ControlHandler = { request: handleControlRequest, opened: onConnectionOpen, closed: onConnectionClosed };

/**
 * Runs one control request; the result is sent back as the reply. Throws ConnectError for refusals. The arguments
 * are checked here, once, against the op's schema (parseControlArgs: BAD_REQUEST naming the argument).
 */
export async function handleControlRequest(conn: AgentConnection, msg: RequestMessage): Promise<unknown> {
  authorize(conn.principal, 'relay.use');
  switch (msg.op) {
    case 'expose':
      return expose(conn, parseControlArgs('expose', msg.args));
    case 'unexpose':
      return unexpose(conn, parseControlArgs('unexpose', msg.args));
    case 'resolve':
      return { service: await resolve(conn, parseControlArgs('resolve', msg.args).name) };
    case 'reach':
      return reach(conn, parseControlArgs('reach', msg.args));
    case 'unreach':
      return unreach(conn, parseControlArgs('unreach', msg.args));
    case 'list':
      return list(conn);
    case 'access':
      return conn.ctx.shared.reportAccess(conn, parseControlArgs('access', msg.args));
    case 'health':
      return reportHealth(conn, parseControlArgs('health', msg.args));
    case 'advertise':
      return advertise(conn, parseControlArgs('advertise', msg.args));
    case 'direct':
      return direct(conn, parseControlArgs('direct', msg.args));
    case 'direct_report':
      return directReport(conn, parseControlArgs('direct_report', msg.args));
    case 'path':
      return reportPath(conn, parseControlArgs('path', msg.args));
  }
}

async function expose(conn: AgentConnection, args: Args<'expose'>): Promise<ControlOps['expose']['result']> {
  const name = validateServiceName(args.name);
  const target = parseTarget(args.target);
  const replace = args.replace === true;
  const protocol = args.protocol ?? 'tcp';
  const { db, router } = conn.ctx;
  const current = router.get(conn.workspaceId, name);
  if (current && current !== conn && current.agentId !== conn.agentId && !replace) {
    throw new ConnectError('SERVICE_NAME_TAKEN', `"${name}" is already exposed by agent "${current.label}"; choose another name or pass --replace`);
  }
  const { row } = await db.withWorkspace(conn.workspaceId, async (tx) => {
    const result = await upsertService(tx, conn.workspaceId, conn.agentId, name, target, replace, protocol);
    if (result.changed) {
      await recordAudit(tx, conn.workspaceId, {
        actorType: 'agent',
        actorId: conn.agentId,
        action: 'service.expose',
        targetType: 'service',
        targetId: result.row.id,
        ip: conn.meta.ip,
        metadata: { name, target: `${target.host}:${target.port}`, protocol, replaced: replace && !result.created },
      });
    }
    return result;
  });
  if (conn.state === 'closed') throw new ConnectError('STREAM_CLOSED', 'the connection closed');
  const previous = router.set(conn.workspaceId, name, conn);
  if (previous) {
    previous.exposed.delete(name);
    previous.sendControl({ t: 'event', event: 'service_offline', name });
  }
  conn.exposed.add(name);
  conn.log.info({ service: name }, 'service exposed');
  conn.ctx.events.publish(conn.workspaceId, { event: 'service', data: { name, online: true, agentId: conn.agentId } });
  const info = router.describe(conn.workspaceId, row);
  if (args.hubPort === true) {
    info.hubPort = await conn.ctx.hubPorts.ensure(conn.workspaceId, name);
  }
  return { service: info };
}

async function unexpose(conn: AgentConnection, { name }: Args<'unexpose'>): Promise<Record<string, never>> {
  const row = await conn.ctx.db.withWorkspace(conn.workspaceId, async (tx) => {
    const deleted = await deleteService(tx, conn.agentId, name);
    if (deleted) {
      await recordAudit(tx, conn.workspaceId, {
        actorType: 'agent',
        actorId: conn.agentId,
        action: 'service.unexpose',
        targetType: 'service',
        targetId: deleted.id,
        ip: conn.meta.ip,
        metadata: { name },
      });
    }
    return deleted;
  });
  if (!row) throw serviceNotFound(name);
  await conn.ctx.hubPorts.release(conn.workspaceId, name);
  const owner = conn.ctx.router.getLocal(conn.workspaceId, name);
  if (owner && owner.agentId === conn.agentId && conn.ctx.router.delete(conn.workspaceId, name, owner)) owner.exposed.delete(name);
  conn.ctx.stats.services.forget(conn.workspaceId, name);
  conn.ctx.events.publish(conn.workspaceId, { event: 'service', data: { name, online: false, agentId: conn.agentId } });
  return {};
}

async function resolve(conn: AgentConnection, name: string) {
  // `alias/service`: a service of another workspace, through a share this workspace joined.
  if (name.includes('/')) return (await conn.ctx.shared.resolve(conn, name)).info;
  const found = await conn.ctx.db.withWorkspace(conn.workspaceId, async (tx) => {
    const row = await findService(tx, name);
    if (!row) return undefined;
    // The exposing agent's keys while it is online (here or on another hub): the opener makes its session with them.
    const live = conn.ctx.router.get(conn.workspaceId, name);
    const keys = live ? await agentKeys(tx, live.agentId) : undefined;
    // The latest report of its exposing agent: `connect reach` warns when the target fails its checks.
    return { row, keys, health: (await serviceDiagnostics(tx, String(row.id), 1))[0] };
  });
  if (!found) throw serviceNotFound(name);
  const info = conn.ctx.router.describe(conn.workspaceId, found.row);
  return { ...info, ...(found.health ? { health: found.health } : {}), ...(info.online && found.keys ? { keys: found.keys } : {}) };
}

async function reach(conn: AgentConnection, { name, localPort }: Args<'reach'>): Promise<ControlOps['reach']['result']> {
  if (name.includes('/')) return reachShared(conn, name, localPort);
  const service = await resolve(conn, name);
  const tunnelId = await conn.ctx.db.withWorkspace(conn.workspaceId, async (tx) => {
    const id = await openTunnel(tx, conn.workspaceId, service.id, conn.agentId, localPort, conn.id, conn.ctx.hubId);
    await recordAudit(tx, conn.workspaceId, {
      actorType: 'agent',
      actorId: conn.agentId,
      action: 'tunnel.open',
      targetType: 'service',
      targetId: service.id,
      ip: conn.meta.ip,
      metadata: { name, localPort, tunnelId: id },
    });
    return id;
  });
  conn.tunnels.add(tunnelId);
  return { service, tunnelId };
}

/**
 * A reach of `alias/service`. It keeps no tunnels row (a row names a service of the caller's own workspace, and
 * this one lives in the owner's): the reach is audited here, each stream through the share in the owner's log.
 */
async function reachShared(conn: AgentConnection, name: string, localPort: number): Promise<ControlOps['reach']['result']> {
  const { info, shareId } = await conn.ctx.shared.resolve(conn, name);
  const tunnelId = randomUUID();
  await conn.ctx.db.withWorkspace(conn.workspaceId, (tx) =>
    recordAudit(tx, conn.workspaceId, {
      actorType: 'agent',
      actorId: conn.agentId,
      action: 'tunnel.open',
      targetType: 'share',
      targetId: shareId,
      ip: conn.meta.ip,
      metadata: { name, localPort, tunnelId },
    }),
  );
  conn.tunnels.add(tunnelId);
  return { service: info, tunnelId };
}

async function unreach(conn: AgentConnection, { tunnelId }: Args<'unreach'>): Promise<Record<string, never>> {
  if (!conn.tunnels.has(tunnelId)) throw new ConnectError('NOT_FOUND', 'no such tunnel on this connection');
  await conn.ctx.db.withWorkspace(conn.workspaceId, async (tx) => {
    if (await closeTunnel(tx, tunnelId, conn.id)) {
      await recordAudit(tx, conn.workspaceId, { actorType: 'agent', actorId: conn.agentId, action: 'tunnel.close', targetType: 'tunnel', targetId: tunnelId });
    }
  });
  conn.tunnels.delete(tunnelId);
  return {};
}

async function list(conn: AgentConnection): Promise<ControlOps['list']['result']> {
  const rows = await conn.ctx.db.withWorkspace(conn.workspaceId, (tx) => listServices(tx));
  return { services: rows.map((row) => conn.ctx.router.describe(conn.workspaceId, row)) };
}

/** After the handshake: record the token use (IP, user agent, ip_changed), the connect event and the agent's details. */
export function onConnectionOpen(conn: AgentConnection): void {
  const { ip, userAgent } = conn.meta;
  const agent = conn.hello!.agent;
  const now = conn.ctx.clock.now();
  conn.ctx.events.publish(conn.workspaceId, { event: 'agent', data: { id: conn.agentId, label: conn.label, online: true, at: now.toISOString() } });
  const { identityKey, staticKey, staticSig } = conn.hello!;
  conn.ctx.db
    .withWorkspace(conn.workspaceId, async (tx) => {
      await recordAgentTokenUse(tx, conn.workspaceId, conn.agentId, conn.principal.tokenId, { ip, userAgent, via: 'websocket', now });
      const before = await updateAgentDetails(tx, conn.agentId, { version: agent.version, hostname: agent.hostname, platform: agent.platform, identityKey, staticKey, staticSig });
      await recordAudit(tx, conn.workspaceId, {
        actorType: 'agent',
        actorId: conn.agentId,
        action: 'agent.connect',
        targetType: 'agent',
        targetId: conn.agentId,
        ip,
        userAgent,
        metadata: { connectionId: conn.id, version: agent.version },
      });
      return before;
    })
    .then((before) => {
      const changed = (stored: string | null, sent: string | undefined) => stored !== null && sent !== undefined && stored !== sent;
      if (!changed(before.identityKey, identityKey) && !changed(before.staticKey, staticKey)) return;
      // It came back with another identity: sessions made with the old keys must not carry new streams.
      const end = { workspaceId: conn.workspaceId, agentId: conn.agentId, reason: 'the agent came back with a new identity' };
      conn.log.info('the agent connected with keys other than those stored: its end-to-end sessions end');
      endSessions(conn.ctx.connections, end, conn);
      conn.ctx.cluster?.endSessions(end);
    })
    .catch((err) => conn.log.error({ err }, 'recording the agent connect failed'));
}

/** After the socket closed: drop its routes, close its tunnels, forget what it advertised, record the disconnect. */
export function onConnectionClosed(conn: AgentConnection): void {
  const { router } = conn.ctx;
  for (const name of conn.exposed) router.delete(conn.workspaceId, name, conn);
  const offline = [...conn.exposed];
  conn.exposed.clear();
  conn.tunnels.clear();
  conn.log.info({ services: offline }, 'agent disconnected');
  const { events } = conn.ctx;
  for (const name of offline) events.publish(conn.workspaceId, { event: 'service', data: { name, online: false, agentId: conn.agentId } });
  events.publish(conn.workspaceId, { event: 'agent', data: { id: conn.agentId, label: conn.label, online: false, at: conn.ctx.clock.now().toISOString() } });
  conn.ctx.db
    .withWorkspace(conn.workspaceId, async (tx) => {
      await closeConnectionTunnels(tx, conn.id);
      if (conn.advertised) await clearAdvertised(tx, conn.agentId, conn.id);
      if (offline.length > 0) {
        await markServicesOffline(tx, conn.agentId, offline);
      }
      await recordAudit(tx, conn.workspaceId, {
        actorType: 'agent',
        actorId: conn.agentId,
        action: 'agent.disconnect',
        targetType: 'agent',
        targetId: conn.agentId,
        ip: conn.meta.ip,
        metadata: { connectionId: conn.id, services: offline },
      });
    })
    .catch((err) => conn.log.error({ err }, 'recording the agent disconnect failed'));
}
