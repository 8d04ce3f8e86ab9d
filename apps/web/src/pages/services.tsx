/**
 * Services of the workspace, searchable and filtered by status (online / failing its checks / offline): target,
 * exposing agent, health (the exposing agent's checks of its target), open tunnels, traffic and a throughput chart,
 * all live from /v1/events; the `connect reach` line.
 */

import type { ServiceSummary } from '@private-connect/api';
import { Copyable, ListState, StatusDot, relative } from '../components.js';
import { ListFilter, useListFilter } from '../list-filter.js';
import { formatBytes, serviceStatus, useServices, type LiveServices, type Service } from '../live-lists.js';
import { ThroughputChart } from '../throughput.js';

/** How streams between agents are protected while the service is online (hub ports and public links end at the hub). */
function Encryption({ policy }: { policy: ServiceSummary['e2e'] }) {
  if (policy === 'required') return <span>end-to-end encrypted: the hub relays only ciphertext</span>;
  if (policy === 'optional') return <span className="warn">end-to-end unless both agents run with --no-e2e (plaintext then)</span>;
  return <span>—</span>;
}

/** The latest check of the target by its exposing agent: ✓/✗ per check, with the reason and the fix when it failed. */
export function Health({ health }: { health: ServiceSummary['health'] }) {
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
  const live = useServices();
  const { services } = live;
  return (
    <section aria-labelledby="services-title">
      <h1 id="services-title">Services</h1>
      <ListState
        state={services.state}
        retry={services.reload}
        isEmpty={(list) => list.length === 0}
        empty={<p>No services yet. On the machine that runs it: <code>connect expose localhost:5432 --name prod-db</code></p>}
      >
        {(list) => <ServiceCards list={list} live={live} />}
      </ListState>
    </section>
  );
}

const SERVICE_STATUSES: Array<['online' | 'failing' | 'offline', string]> = [['online', 'Online'], ['failing', 'Failing checks'], ['offline', 'Offline']];

function ServiceCards({ list, live }: { list: Service[]; live: LiveServices }) {
  const filter = useListFilter(list, (s) => [s.name, s.target, s.agentLabel, s.protocol].join(' '), serviceStatus);
  return (
    <>
      <ListFilter what="services" one="service" value={filter.value} onChange={filter.set} statuses={SERVICE_STATUSES} shown={filter.shown.length} total={list.length} />
      {filter.shown.length === 0 ? <div className="state empty"><p>No service matches this search.</p></div> : null}
      <ul className="cards" aria-label="Services">
        {filter.shown.map((service) => {
          const traffic = live.traffic.get(service.name);
          return (
            <li key={service.id} className="card" data-testid="service" data-service-name={service.name} data-online={service.online} data-status={serviceStatus(service)}>
              <div className="card-head">
                <strong>{service.name}</strong>
                <StatusDot status={serviceStatus(service)} />
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
                {traffic ? (
                  <>
                    <dt>Traffic</dt>
                    <dd>
                      Relayed: {traffic.streams} open{traffic.streams > 0 ? ` (${traffic.encryptedStreams} end-to-end encrypted)` : ''}, {formatBytes(traffic.bytesIn)} in,{' '}
                      {formatBytes(traffic.bytesOut)} out
                    </dd>
                    <dd data-testid="direct-traffic" data-direct-streams={traffic.directStreams ?? 0}>
                      Direct: {traffic.directStreams ?? 0} ended, {formatBytes(traffic.directBytesIn ?? 0)} in, {formatBytes(traffic.directBytesOut ?? 0)} out
                    </dd>
                  </>
                ) : null}
              </dl>
              <ThroughputChart name={service.name} samples={live.throughput.get(service.name) ?? []} />
              <Copyable text={`connect reach ${service.name}`} label="Copy command" />
            </li>
          );
        })}
      </ul>
    </>
  );
}
