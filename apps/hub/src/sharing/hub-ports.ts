/**
 * TCP ports on the hub for services (`connect expose ... --hub-port`), for clients that run no agent: a
 * connection to the port is a stream to the service, opened by the hub itself. Ports come from
 * HUB_TCP_PORT_RANGE and are bound on HUB_TCP_BIND (loopback by default). The allocation is a row of hub_ports:
 * a service keeps its port across hub and agent restarts until it is unexposed. A workspace holds at most
 * HUB_TCP_PORTS_PER_WORKSPACE ports (HUB_PORT_QUOTA past it), so one cannot take the range. Every hub listens on every
 * allocated port (so a port keeps working whichever hub the agent is on, or the client comes to): at start, and
 * with several hubs (NATS_URL) as other hubs allocate and release ports.
 */

import net from 'node:net';
import { ConnectError } from '@private-connect/protocol';
import { allocateHubPort, findHubPort, hubPortAllocated, listAllHubPorts, releaseHubPort, takenHubPorts, workspaceHubPorts } from '../store/hub-ports.js';
import type { SharingContext } from './context.js';

export interface HubPorts {
  /** Listens on every allocated port (hub start). */
  start(): Promise<void>;
  /** The port of `name` in the workspace: its allocation, or a new one from the range. Listening on return. */
  ensure(workspaceId: string, name: string): Promise<number>;
  /** Frees the port of `name` (unexpose): the listener closes and open connections through it end. */
  release(workspaceId: string, name: string): Promise<void>;
  /** Port numbers listened on now. */
  listening(): number[];
  /** Another hub allocated (`on`) or released a port: listen on it too, or stop. */
  follow(port: number, workspaceId: string, name: string, on: boolean): Promise<void>;
  close(): Promise<void>;
}

interface Listener {
  server: net.Server;
  workspaceId: string;
  name: string;
  sockets: Set<net.Socket>;
}

/** HUB_PORT_QUOTA: the workspace holds `quota` ports already (services `names`), with how to free one. */
function quotaFull(quota: number, names: string[]): ConnectError {
  return new ConnectError(
    'HUB_PORT_QUOTA',
    `this workspace already holds ${names.length} hub TCP ports (${names.join(', ')}), the most HUB_TCP_PORTS_PER_WORKSPACE allows (${quota}); ` +
      'free one by unexposing a service that has one (remove it from `connect daemon` and reload, or call unexpose from the SDK), or ask the hub operator to raise the limit',
  );
}

export function createHubPorts(sharing: SharingContext): HubPorts {
  const { db, config, log } = sharing;
  const { first, last } = config.tcpPortRange;
  const listeners = new Map<number, Listener>();

  const onConnection = (port: number, listener: Listener, socket: net.Socket) => {
    listener.sockets.add(socket);
    socket.once('close', () => listener.sockets.delete(socket));
    socket.on('error', () => undefined);
    const target = sharing.router.get(listener.workspaceId, listener.name);
    sharing.access.record(listener.workspaceId, {
      actorType: 'public',
      action: 'hub_port.connect',
      targetType: 'service',
      targetId: listener.name,
      ip: socket.remoteAddress,
      metadata: { port, online: Boolean(target && target.state === 'open') },
    });
    if (!target || target.state !== 'open') {
      socket.destroy();
      return;
    }
    sharing.local
      .open(target, { service: listener.name, from: { agentId: 'hub', label: `hub port ${port}`, ip: socket.remoteAddress } }, { hubPort: port })
      .then(
        (stream) => {
          if (socket.destroyed) return stream.reset('STREAM_CLOSED', 'the client left before the stream opened');
          stream.attach(socket);
        },
        (err: unknown) => {
          log.info({ port, service: listener.name, err: err instanceof Error ? err.message : String(err) }, 'hub port connection refused');
          socket.destroy();
        },
      );
  };

  /** Listens on `port` for the service; false when something else holds the port. */
  const listen = (port: number, workspaceId: string, name: string): Promise<boolean> => {
    const existing = listeners.get(port);
    if (existing) return Promise.resolve(existing.workspaceId === workspaceId && existing.name === name);
    const listener: Listener = { server: net.createServer({ pauseOnConnect: true, allowHalfOpen: true }), workspaceId, name, sockets: new Set() };
    listener.server.on('connection', (socket) => onConnection(port, listener, socket));
    return new Promise((resolve) => {
      listener.server.once('error', (err: NodeJS.ErrnoException) => {
        log.warn({ port, err: err.code ?? err.message }, 'cannot listen on hub port');
        resolve(false);
      });
      listener.server.listen(port, config.tcpBind, () => {
        listeners.set(port, listener);
        resolve(true);
      });
    });
  };

  const stop = async (port: number) => {
    const listener = listeners.get(port);
    if (!listener) return;
    listeners.delete(port);
    for (const socket of listener.sockets) socket.destroy();
    sharing.local.abortWhere((tag) => tag.hubPort === port, 'STREAM_CLOSED', 'the hub port was released');
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
  };

  return {
    async start() {
      const rows = await listAllHubPorts(db);
      for (const row of rows) {
        if (row.port < first || row.port > last) log.warn({ port: row.port }, 'hub port outside HUB_TCP_PORT_RANGE; still served');
        await listen(row.port, row.workspace_id, row.service_name);
      }
    },

    async ensure(workspaceId, name) {
      // The workspace's own ports under its RLS policy; only the free ports are looked up across workspaces.
      const mine = await findHubPort(db, workspaceId, name);
      if (mine !== undefined) {
        await listen(mine, workspaceId, name);
        sharing.cluster?.hubPort(mine, workspaceId, name, true);
        return mine;
      }
      // The quota first (cheap, and the answer people need); allocateHubPort checks it again under a lock.
      const quota = config.tcpPortsPerWorkspace;
      const held = await workspaceHubPorts(db, workspaceId);
      if (held.length >= quota) throw quotaFull(quota, held.map((h) => h.service_name));
      const taken = await takenHubPorts(db, first, last);
      for (let port = first; port <= last; port++) {
        if (taken.has(port)) continue;
        if (!(await listen(port, workspaceId, name))) continue; // held by another program: try the next
        const allocation = await allocateHubPort(db, port, workspaceId, name, quota);
        if (allocation === 'allocated') {
          sharing.cluster?.hubPort(port, workspaceId, name, true);
          return port;
        }
        // Another hub took the port, or this service got one there, or another expose of the workspace took its
        // last place: look again.
        await stop(port);
        const now = await findHubPort(db, workspaceId, name);
        if (now !== undefined) {
          await listen(now, workspaceId, name);
          return now;
        }
        if (allocation === 'quota') throw quotaFull(quota, (await workspaceHubPorts(db, workspaceId)).map((h) => h.service_name));
      }
      throw new ConnectError('HUB_PORTS_EXHAUSTED', `every port of HUB_TCP_PORT_RANGE (${first}-${last}) is taken; widen the range or unexpose a service that has one`);
    },

    async release(workspaceId, name) {
      for (const port of await releaseHubPort(db, workspaceId, name)) {
        await stop(port);
        sharing.cluster?.hubPort(port, workspaceId, name, false);
      }
    },

    async follow(port, workspaceId, name, on) {
      if (!on) return stop(port);
      // The row is the truth: listen only on a port that is still allocated to that service.
      if (await hubPortAllocated(db, workspaceId, port, name)) await listen(port, workspaceId, name);
    },

    listening: () => [...listeners.keys()],

    async close() {
      for (const port of [...listeners.keys()]) await stop(port);
    },
  };
}
