/**
 * Per-service traffic for the dashboard: open streams and bytes relayed, counted on the relay's hot path with
 * plain number increments on an object both ends of a stream share (see streams.ts `relayData`).
 */

/** One service's counters. `bytesIn` went to the service (from whoever reached it), `bytesOut` came from it. */
export interface ServiceCounter {
  streams: number;
  /** Of the open streams, those end-to-end encrypted. */
  encryptedStreams: number;
  bytesIn: number;
  bytesOut: number;
}

/** What `stats` events and GET /v1/services report per service. */
export interface ServiceTrafficInfo extends ServiceCounter {
  name: string;
}

export class ServiceTraffic {
  /** workspace id → service name → counters. Created by the first stream to a service; deleted by `forget`
   *  (unexpose). Counts are cumulative since the hub started; a stream still open keeps its (detached) counter. */
  private readonly byWorkspace = new Map<string, Map<string, ServiceCounter>>();

  /** The counters of `name` in `workspaceId`, created on first use. */
  counter(workspaceId: string, name: string): ServiceCounter {
    let names = this.byWorkspace.get(workspaceId);
    if (!names) this.byWorkspace.set(workspaceId, (names = new Map()));
    let counter = names.get(name);
    if (!counter) names.set(name, (counter = { streams: 0, encryptedStreams: 0, bytesIn: 0, bytesOut: 0 }));
    return counter;
  }

  /** The counters of `name`, or zeros when nothing was relayed to it yet. */
  get(workspaceId: string, name: string): ServiceCounter {
    const counter = this.byWorkspace.get(workspaceId)?.get(name);
    return counter ? { ...counter } : { streams: 0, encryptedStreams: 0, bytesIn: 0, bytesOut: 0 };
  }

  /** Drops a service's counters (it was unexposed). */
  forget(workspaceId: string, name: string): void {
    const names = this.byWorkspace.get(workspaceId);
    names?.delete(name);
    if (names?.size === 0) this.byWorkspace.delete(workspaceId);
  }

  /** Every counted service of one workspace, by name. */
  snapshot(workspaceId: string): ServiceTrafficInfo[] {
    const names = this.byWorkspace.get(workspaceId);
    if (!names) return [];
    return [...names].map(([name, c]) => ({ name, streams: c.streams, encryptedStreams: c.encryptedStreams, bytesIn: c.bytesIn, bytesOut: c.bytesOut })).sort((a, b) => a.name.localeCompare(b.name));
  }
}
