/**
 * Which live connection exposes which service, per workspace: the in-memory half of routing. With several hubs
 * (cluster/), a service exposed by an agent on another hub is a remote route: a StreamTarget that opens the stream
 * over that hub's link.
 */

import type { ConnectError, OpenNotice, ServiceInfo } from '@private-connect/protocol';
import type { RelayPeer, StreamTag } from './streams.js';
import { toServiceInfo, type ServiceRow } from '../store/services.js';

/** Where a stream to a service is opened: the exposing agent's connection here, or a route to another hub. */
export interface StreamTarget {
  readonly state: 'handshake' | 'open' | 'closed';
  readonly agentId: string;
  readonly label: string;
  /** The exposing agent also takes plaintext streams (--no-e2e). */
  readonly acceptsPlaintext: boolean;
  /** Opens a stream from `opener` (its id `openerId`) to the service; returns the refusal when it cannot. */
  acceptStream(opener: RelayPeer, openerId: number, notice: OpenNotice, tag?: StreamTag): ConnectError | undefined;
}

/**
 * A route to an agent connection of this hub (relay/agent-connection.ts): what the router and those that take a
 * name over (a newer expose, a later claim on another hub) need of it.
 */
export interface LocalRoute extends StreamTarget {
  /** The names the connection routes; whoever moves a route away deletes the name here. */
  readonly exposed: Set<string>;
  /** Sends a control message to the agent (service_offline when its name was taken over). */
  sendControl(message: unknown): void;
}

/** What a hub tells the others about a service one of its agents exposes. */
export interface RemoteRoute extends StreamTarget {
  readonly hubId: string;
  /** When the owning hub routed the name (its clock, ms): the later claim of a name wins. */
  readonly since: number;
}

/** Told of every change of a local route: `conn` undefined when the name stopped being routed here. */
export type LocalRouteListener = (workspaceId: string, name: string, conn: LocalRoute | undefined) => void;

export class ServiceRouter {
  /** workspace id → service name → connection. Entries are added by `expose` and deleted by `unexpose`,
   *  by a newer connection taking the name over, and by the connection's teardown. */
  private readonly byWorkspace = new Map<string, Map<string, LocalRoute>>();
  /** workspace id → service name → route to another hub; kept by the cluster (cluster/presence.ts). */
  private readonly remote = new Map<string, Map<string, RemoteRoute>>();
  /** When each local route was set (ms), for the cluster's "later claim wins". */
  private readonly localSince = new Map<LocalRoute, Map<string, number>>();
  private listener: LocalRouteListener | undefined;

  /** The cluster's hook: called after every change of a local route. */
  onLocalChange(listener: LocalRouteListener): void {
    this.listener = listener;
  }

  /** The target for `name`: the local connection first, else a route to another hub. */
  get(workspaceId: string, name: string): StreamTarget | undefined {
    return this.getLocal(workspaceId, name) ?? this.remote.get(workspaceId)?.get(name);
  }

  /** The connection of this hub that exposes `name`. */
  getLocal(workspaceId: string, name: string): LocalRoute | undefined {
    return this.byWorkspace.get(workspaceId)?.get(name);
  }

  /** When the local route of `name` was set, or undefined when it is not routed here. */
  localSinceOf(workspaceId: string, name: string): number | undefined {
    const conn = this.getLocal(workspaceId, name);
    return conn ? this.localSince.get(conn)?.get(name) : undefined;
  }

  /** Every local route, for a hub that asks for them. */
  *locals(): Generator<{ workspaceId: string; name: string; conn: LocalRoute; since: number }> {
    for (const [workspaceId, names] of this.byWorkspace) {
      for (const [name, conn] of names) yield { workspaceId, name, conn, since: this.localSince.get(conn)?.get(name) ?? 0 };
    }
  }

  /** Routes `name` to `conn`; returns the connection that had it before, if another. */
  set(workspaceId: string, name: string, conn: LocalRoute): LocalRoute | undefined {
    let names = this.byWorkspace.get(workspaceId);
    if (!names) this.byWorkspace.set(workspaceId, (names = new Map()));
    const previous = names.get(name);
    names.set(name, conn);
    if (previous && previous !== conn) this.localSince.get(previous)?.delete(name);
    let since = this.localSince.get(conn);
    if (!since) this.localSince.set(conn, (since = new Map()));
    since.set(name, Date.now());
    // A route of another hub to the name is superseded (its hub yields to the later claim, or is gone already).
    const remote = this.remote.get(workspaceId);
    remote?.delete(name);
    if (remote?.size === 0) this.remote.delete(workspaceId);
    this.listener?.(workspaceId, name, conn);
    return previous === conn ? undefined : previous;
  }

  /** Removes the route if it still points at `conn`. */
  delete(workspaceId: string, name: string, conn: LocalRoute): boolean {
    const names = this.byWorkspace.get(workspaceId);
    if (names?.get(name) !== conn) return false;
    names.delete(name);
    if (names.size === 0) this.byWorkspace.delete(workspaceId);
    const since = this.localSince.get(conn);
    since?.delete(name);
    if (since?.size === 0) this.localSince.delete(conn);
    this.listener?.(workspaceId, name, undefined);
    return true;
  }

  /** Sets or replaces the route of `name` to another hub. */
  setRemote(workspaceId: string, name: string, route: RemoteRoute): void {
    let names = this.remote.get(workspaceId);
    if (!names) this.remote.set(workspaceId, (names = new Map()));
    names.set(name, route);
  }

  /** Removes the route of `name` to hub `hubId` (a route to another hub stays), if it is still `route` when given. */
  deleteRemote(workspaceId: string, name: string, hubId: string, route?: RemoteRoute): void {
    const names = this.remote.get(workspaceId);
    const current = names?.get(name);
    if (!names || current?.hubId !== hubId || (route && current !== route)) return;
    names.delete(name);
    if (names.size === 0) this.remote.delete(workspaceId);
  }

  /** Removes every route to hub `hubId` (it died or left); returns them. */
  deleteHub(hubId: string): Array<{ workspaceId: string; name: string; route: RemoteRoute }> {
    const removed: Array<{ workspaceId: string; name: string; route: RemoteRoute }> = [];
    for (const [workspaceId, names] of this.remote) {
      for (const [name, route] of names) {
        if (route.hubId !== hubId) continue;
        names.delete(name);
        removed.push({ workspaceId, name, route });
      }
      if (names.size === 0) this.remote.delete(workspaceId);
    }
    return removed;
  }

  isOnline(workspaceId: string, name: string): boolean {
    return this.get(workspaceId, name) !== undefined;
  }

  /** A stored service as agents and the API see it: online or not and, while online, its encryption policy. */
  describe(workspaceId: string, row: ServiceRow): ServiceInfo {
    const target = this.get(workspaceId, row.name);
    const info = toServiceInfo(row, target !== undefined);
    if (target) info.e2e = target.acceptsPlaintext ? 'optional' : 'required';
    return info;
  }

  /** Number of services online through this hub's own connections, across all workspaces. */
  get size(): number {
    let n = 0;
    for (const names of this.byWorkspace.values()) n += names.size;
    return n;
  }
}
