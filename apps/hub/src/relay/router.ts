/** Which live connection exposes which service, per workspace: the in-memory half of routing. */

import type { ServiceInfo } from '@private-connect/protocol';
import type { AgentConnection } from './agent-connection.js';
import { toServiceInfo, type ServiceRow } from '../store/services.js';

export class ServiceRouter {
  /** workspace id → service name → connection. Entries are added by `expose` and deleted by `unexpose`,
   *  by a newer connection taking the name over, and by the connection's teardown. */
  private readonly byWorkspace = new Map<string, Map<string, AgentConnection>>();

  get(workspaceId: string, name: string): AgentConnection | undefined {
    return this.byWorkspace.get(workspaceId)?.get(name);
  }

  /** Routes `name` to `conn`; returns the connection that had it before, if another. */
  set(workspaceId: string, name: string, conn: AgentConnection): AgentConnection | undefined {
    let names = this.byWorkspace.get(workspaceId);
    if (!names) this.byWorkspace.set(workspaceId, (names = new Map()));
    const previous = names.get(name);
    names.set(name, conn);
    return previous === conn ? undefined : previous;
  }

  /** Removes the route if it still points at `conn`. */
  delete(workspaceId: string, name: string, conn: AgentConnection): boolean {
    const names = this.byWorkspace.get(workspaceId);
    if (names?.get(name) !== conn) return false;
    names.delete(name);
    if (names.size === 0) this.byWorkspace.delete(workspaceId);
    return true;
  }

  isOnline(workspaceId: string, name: string): boolean {
    return this.byWorkspace.get(workspaceId)?.has(name) ?? false;
  }

  /** A stored service as agents and the API see it: online or not and, while online, its encryption policy. */
  describe(workspaceId: string, row: ServiceRow): ServiceInfo {
    const conn = this.get(workspaceId, row.name);
    const info = toServiceInfo(row, conn !== undefined);
    if (conn?.hello) info.e2e = conn.hello.plain ? 'optional' : 'required';
    return info;
  }

  /** Number of online services across all workspaces. */
  get size(): number {
    let n = 0;
    for (const names of this.byWorkspace.values()) n += names.size;
    return n;
  }
}
