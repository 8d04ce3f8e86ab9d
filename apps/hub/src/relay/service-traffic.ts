/**
 * Per-service traffic for the dashboard: open streams and bytes relayed, counted on the relay's hot path with
 * plain number increments on an object both ends of a stream share (see streams.ts `relayData`); and the streams that
 * went direct between two agents, as their exposing agent reported them when they ended (relay/direct.ts).
 */

/** One service's counters. `bytesIn` went to the service (from whoever reached it), `bytesOut` came from it. */
export interface ServiceCounter {
  streams: number;
  /** Of the open streams, those end-to-end encrypted. */
  encryptedStreams: number;
  bytesIn: number;
  bytesOut: number;
  /** Streams that ended on the exposing agent's direct port (op direct_report), and their bytes: never relayed. */
  directStreams: number;
  directBytesIn: number;
  directBytesOut: number;
}

const zero = (): ServiceCounter => ({ streams: 0, encryptedStreams: 0, bytesIn: 0, bytesOut: 0, directStreams: 0, directBytesIn: 0, directBytesOut: 0 });
/** The counters' fields, for sums and snapshots. */
const FIELDS = Object.keys(zero()) as Array<keyof ServiceCounter>;

/** What `stats` events and GET /v1/services report per service. */
export interface ServiceTrafficInfo extends ServiceCounter {
  name: string;
}

export class ServiceTraffic {
  /** workspace id → service name → counters. Created by the first stream to a service; deleted by `forget`
   *  (unexpose). Counts are cumulative since the hub started; a stream still open keeps its (detached) counter. */
  private readonly byWorkspace = new Map<string, Map<string, ServiceCounter>>();
  /**
   * With several hubs: what each other hub counted for the services exposed through it (a stream is counted by the
   * hub of its exposing agent only), workspace id → hub id → its snapshot. Replaced by each report, dropped with the hub.
   */
  private readonly remote = new Map<string, Map<string, ServiceTrafficInfo[]>>();

  /** The counters of `name` in `workspaceId`, created on first use. */
  counter(workspaceId: string, name: string): ServiceCounter {
    let names = this.byWorkspace.get(workspaceId);
    if (!names) this.byWorkspace.set(workspaceId, (names = new Map()));
    let counter = names.get(name);
    if (!counter) names.set(name, (counter = zero()));
    return counter;
  }

  /** The counters of `name` (this hub's and the other hubs' together), or zeros when nothing was relayed to it yet. */
  get(workspaceId: string, name: string): ServiceCounter {
    const sum = zero();
    const local = this.byWorkspace.get(workspaceId)?.get(name);
    for (const c of [local, ...[...(this.remote.get(workspaceId)?.values() ?? [])].map((list) => list.find((s) => s.name === name))]) {
      if (!c) continue;
      // Another hub of an older version reports no direct counters.
      for (const field of FIELDS) sum[field] += c[field] ?? 0;
    }
    return sum;
  }

  /** Another hub's counters of the services exposed through it in `workspaceId` (its latest report replaces the last). */
  setRemote(workspaceId: string, hubId: string, services: ServiceTrafficInfo[]): void {
    let hubs = this.remote.get(workspaceId);
    if (!hubs) this.remote.set(workspaceId, (hubs = new Map()));
    hubs.set(hubId, services);
  }

  /** Forgets what hub `hubId` reported (it is gone). */
  dropHub(hubId: string): void {
    for (const [workspaceId, hubs] of this.remote) {
      hubs.delete(hubId);
      if (hubs.size === 0) this.remote.delete(workspaceId);
    }
  }

  /** Workspaces this hub has counters of. */
  workspaces(): string[] {
    return [...this.byWorkspace.keys()];
  }

  /** This hub's own counters of one workspace's services (what it reports to the other hubs). */
  localSnapshot(workspaceId: string): ServiceTrafficInfo[] {
    const names = this.byWorkspace.get(workspaceId);
    if (!names) return [];
    return [...names].map(([name, c]) => ({ name, ...pick(c) })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Drops a service's counters (it was unexposed). */
  forget(workspaceId: string, name: string): void {
    const names = this.byWorkspace.get(workspaceId);
    names?.delete(name);
    if (names?.size === 0) this.byWorkspace.delete(workspaceId);
  }

  /** Every counted service of one workspace, by name: this hub's counters and the other hubs' together. */
  snapshot(workspaceId: string): ServiceTrafficInfo[] {
    const names = new Set(this.byWorkspace.get(workspaceId)?.keys() ?? []);
    for (const list of this.remote.get(workspaceId)?.values() ?? []) for (const s of list) names.add(s.name);
    return [...names].sort((a, b) => a.localeCompare(b)).map((name) => ({ name, ...this.get(workspaceId, name) }));
  }
}

/** The counter fields of `c` only. */
function pick(c: ServiceCounter): ServiceCounter {
  const out = zero();
  for (const field of FIELDS) out[field] = c[field];
  return out;
}
