/**
 * The workspace's agents and services as pages show them: loaded once from the API, then kept current by the
 * hub's events (`agent`, `service`, `health`, `stats`) without polling. The Overview, Agents and Services pages
 * share these hooks; a service's status (online / failing its checks / offline) is decided here once.
 */

import { useMemo, useState } from 'react';
import type { AgentSummary, ServiceSummary } from '@private-connect/api';
import { request } from './api.js';
import { useHubEvent, type StatsEvent } from './events.js';
import { useThroughput } from './throughput.js';
import { useResource, type ResourceHandle } from './use-resource.js';
import { useSession } from './workspace.js';

/** An agent as GET /v1/agents lists it; `lastIp` comes masked from the hub (`192.168.x.x`). */
export type Agent = AgentSummary;

/** A service as GET /v1/services lists it: with its traffic since the hub started and its latest health report. */
export type Service = ServiceSummary;

/** Traffic of one service right now, from the latest `stats` event (or the list's own counters before one came). */
export type ServiceTraffic = StatsEvent['services'][number];

/** online: its agent is connected and its target passes the checks (or was not checked yet). */
export type ServiceStatus = 'online' | 'failing' | 'offline';

export function serviceStatus(service: Pick<Service, 'online' | 'health'>): ServiceStatus {
  if (!service.online) return 'offline';
  return service.health && !service.health.ok ? 'failing' : 'online';
}

/** The agents of the current workspace, live. */
export function useAgents(): ResourceHandle<Agent[]> {
  const { current } = useSession();
  const agents = useResource(() => request('GET /v1/agents', {}).then((r) => r.agents), current.id);
  const { update, reload } = agents;
  useHubEvent('agent', (event) => {
    // An agent enrolled since the list was loaded: fetch once to get all of its fields.
    if (agents.state.status === 'ready' && !agents.state.data.some((a) => a.id === event.id)) return reload();
    update((list) =>
      list.map((agent) =>
        agent.id === event.id
          ? { ...agent, online: event.online, label: event.label ?? agent.label, lastSeenAt: event.at ?? agent.lastSeenAt, tokenExpiresAt: event.tokenExpiresAt ?? agent.tokenExpiresAt }
          : agent,
      ),
    );
  });
  return agents;
}

export interface LiveServices {
  services: ResourceHandle<Service[]>;
  /** Open streams and byte counts per service name. */
  traffic: Map<string, ServiceTraffic>;
  /** Bytes per second of each service over the last minute, oldest first (see throughput.ts). */
  throughput: Map<string, number[]>;
}

/** The services of the current workspace with their health and traffic, live. */
export function useServices(): LiveServices {
  const { current } = useSession();
  const services = useResource(() => request('GET /v1/services', {}).then((r) => r.services), current.id);
  const [stats, setStats] = useState<Map<string, ServiceTraffic>>(new Map());
  useHubEvent('service', (event) => {
    if (services.state.status === 'ready' && !services.state.data.some((s) => s.name === event.name)) return services.reload();
    services.update((list) => list.map((s) => (s.name === event.name ? { ...s, online: event.online, agentId: event.agentId ?? s.agentId } : s)));
  });
  useHubEvent('health', (event) => services.update((list) => list.map((s) => (s.name === event.name ? { ...s, health: event.health } : s))));
  useHubEvent('stats', (event) => setStats(new Map(event.services.map((s) => [s.name, s]))));
  const traffic = useMemo(() => {
    const map = new Map<string, ServiceTraffic>();
    if (services.state.status === 'ready') {
      for (const s of services.state.data) {
        if (s.streams === undefined) continue;
        map.set(s.name, {
          name: s.name,
          streams: s.streams,
          encryptedStreams: s.encryptedStreams ?? 0,
          bytesIn: s.bytesIn ?? 0,
          bytesOut: s.bytesOut ?? 0,
          // Streams that went direct between two agents, reported by the exposing agent as each one ended.
          directStreams: s.directStreams ?? 0,
          directBytesIn: s.directBytesIn ?? 0,
          directBytesOut: s.directBytesOut ?? 0,
        });
      }
    }
    for (const [name, s] of stats) map.set(name, s);
    return map;
  }, [services.state, stats]);
  const totals = useMemo(() => new Map([...traffic].map(([name, t]) => [name, t.bytesIn + t.bytesOut])), [traffic]);
  const throughput = useThroughput(totals);
  return { services, traffic, throughput };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
