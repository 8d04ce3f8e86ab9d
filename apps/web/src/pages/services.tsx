/**
 * Services of the workspace: target, exposing agent, online state, health (the exposing agent's checks of its
 * target), open tunnels, traffic and a throughput chart, all live from /v1/events; the `connect reach` line.
 */

import type { ServiceHealth, ServiceInfo, ServiceTrafficSummary } from '@private-connect/protocol';
import { api } from '../api.js';
import { Copyable, ListState, OnlineBadge, relative } from '../components.js';
import { useHubEvent, type StatsEvent } from '../events.js';
import { useSession } from '../workspace.js';
import { useResource } from '../use-resource.js';
import { useMemo, useState } from 'react';
import { ThroughputChart, useThroughput } from '../throughput.js';

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A service as GET /v1/services lists it: with its traffic since the hub started (hubs that count it). */
type Service = ServiceInfo & Partial<ServiceTrafficSummary> & { health?: ServiceHealth };

/** The latest check of the target by its exposing agent: ✓/✗ per check, with the reason and the fix when it failed. */
/** How streams between agents are protected while the service is online (hub ports and public links end at the hub). */
function Encryption({ policy }: { policy: ServiceInfo['e2e'] }) {
  if (policy === 'required') return <span>🔒 end-to-end encrypted: the hub relays only ciphertext</span>;
  if (policy === 'optional') return <span className="warn">end-to-end unless both agents run with --no-e2e (plaintext then)</span>;
  return <span>—</span>;
}

function Health({ health }: { health: ServiceHealth | undefined }) {
  if (!health) return <span className="muted">not checked yet</span>;
  const failed = health.checks.filter((c) => !c.ok);
  return (
    <details className="health" data-testid="health" data-ok={health.ok}>
      <summary>
        <span className={health.ok ? 'ok' : 'bad'}>{health.ok ? '✓ healthy' : `✗ ${failed.map((c) => c.name).join(', ') || 'failing'}`}</span>
        <span className="muted"> · {relative(health.checkedAt)}</span>
      </summary>
      <ul>
        {health.checks.map((c) => (
          <li key={c.name}>
            <span className={c.ok ? 'ok' : 'bad'}>{c.ok ? '✓' : '✗'}</span> {c.name}: {c.detail}
            {c.ms !== undefined ? ` (${Math.round(c.ms)} ms)` : ''}
            {!c.ok && c.hint ? <div className="muted">{c.hint}</div> : null}
          </li>
        ))}
      </ul>
    </details>
  );
}

export function ServicesPage() {
  const { current } = useSession();
  const services = useResource(() => api<{ services: Service[] }>('GET', '/v1/services').then((r) => r.services), current.id);
  const [stats, setStats] = useState<Map<string, StatsEvent['services'][number]>>(new Map());
  useHubEvent('service', (event) => {
    if (services.state.status === 'ready' && !services.state.data.some((s) => s.name === event.name)) return services.reload();
    services.update((list) => list.map((s) => (s.name === event.name ? { ...s, online: event.online, agentId: event.agentId ?? s.agentId } : s)));
  });
  useHubEvent('health', (event) => services.update((list) => list.map((s) => (s.name === event.name ? { ...s, health: event.health } : s))));
  useHubEvent('stats', (event) => setStats(new Map(event.services.map((s) => [s.name, s]))));
  const totals = useMemo(() => {
    const map = new Map<string, number>();
    if (services.state.status === 'ready') for (const s of services.state.data) map.set(s.name, (s.bytesIn ?? 0) + (s.bytesOut ?? 0));
    for (const [name, s] of stats) map.set(name, s.bytesIn + s.bytesOut);
    return map;
  }, [services.state, stats]);
  const throughput = useThroughput(totals);
  return (
    <section aria-labelledby="services-title">
      <h1 id="services-title">Services</h1>
      <ListState
        state={services.state}
        retry={services.reload}
        isEmpty={(list) => list.length === 0}
        empty={<p>No services yet. On the machine that runs it: <code>connect expose localhost:5432 --name prod-db</code></p>}
      >
        {(list) => (
          <ul className="cards" aria-label="Services">
            {list.map((service) => {
              const live =
                stats.get(service.name) ??
                (service.streams !== undefined
                  ? { streams: service.streams, encryptedStreams: service.encryptedStreams ?? 0, bytesIn: service.bytesIn ?? 0, bytesOut: service.bytesOut ?? 0 }
                  : undefined);
              return (
                <li key={service.id} className="card" data-testid="service" data-service-name={service.name} data-online={service.online}>
                  <div className="card-head">
                    <strong>{service.name}</strong>
                    <OnlineBadge online={service.online} />
                  </div>
                  <dl>
                    <dt>Target</dt>
                    <dd>
                      <code>{service.target}</code>
                    </dd>
                    <dt>Agent</dt>
                    <dd>{service.agentLabel ?? service.agentId ?? '—'}</dd>
                    <dt>Health</dt>
                    <dd><Health health={service.health} /></dd>
                    <dt>Encryption</dt>
                    <dd data-testid="e2e" data-e2e={service.e2e ?? 'unknown'}>
                      <Encryption policy={service.e2e} />
                    </dd>
                    {live ? (
                      <>
                        <dt>Traffic</dt>
                        <dd>
                          {live.streams} open{live.streams > 0 ? ` (${live.encryptedStreams} end-to-end encrypted)` : ''}, {formatBytes(live.bytesIn)} in,{' '}
                          {formatBytes(live.bytesOut)} out
                        </dd>
                      </>
                    ) : null}
                  </dl>
                  <ThroughputChart name={service.name} samples={throughput.get(service.name) ?? []} />
                  <Copyable text={`connect reach ${service.name}`} label="Copy command" />
                </li>
              );
            })}
          </ul>
        )}
      </ListState>
    </section>
  );
}
