/**
 * Overview, the landing page once a workspace has agents or services: how many agents are online, each service
 * with its status (online / failing its checks / offline) and why, the traffic right now, and the latest audit
 * events, all live from /v1/events except the events (read once).
 */

import type { ReactNode } from 'react';
import { request, ApiError } from '../api.js';
import { StatusDot, formatTime, relative, type Status } from '../components.js';
import { formatBytes, serviceStatus, useAgents, useServices, type Agent, type LiveServices, type Service } from '../live-lists.js';
import { useNames } from '../names.js';
import { Link } from '../router.js';
import { ThroughputChart, formatRate } from '../throughput.js';
import { useResource } from '../use-resource.js';
import { useSession } from '../workspace.js';
import { Named } from './audit.js';

const RECENT = 8;

/** The sum of every service's samples, aligned on the newest. */
function sumSamples(series: number[][]): number[] {
  const length = Math.max(0, ...series.map((samples) => samples.length));
  const sum: number[] = new Array<number>(length).fill(0);
  for (const samples of series) samples.forEach((value, i) => (sum[length - samples.length + i]! += value));
  return sum;
}

/** Why a service is not online, in a few words: the failed checks or the agent being gone. */
function reason(service: Service): string {
  if (!service.online) return `${service.agentLabel ?? 'its agent'} is not connected`;
  if (!service.health) return 'not checked yet';
  if (service.health.ok) return `healthy · checked ${relative(service.health.checkedAt)}`;
  const failed = service.health.checks.filter((c) => !c.ok);
  return failed.map((c) => `${c.name}: ${c.detail}`).join('; ') || 'failing';
}

function Tile({ title, testId, children, data }: { title: string; testId: string; children: ReactNode; data?: Record<string, string | number> }) {
  const attributes = Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [`data-${k}`, v]));
  return (
    <section className="tile" aria-label={title} data-testid={testId} {...attributes}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** A bar split by status, for a tile's figure (its words are in the tile's text). */
function Meter({ parts }: { parts: Array<[Status, number]> }) {
  const total = parts.reduce((n, [, count]) => n + count, 0);
  return (
    <span className="meter" aria-hidden="true">
      {total === 0 ? null : parts.map(([status, count]) => (count > 0 ? <span key={status} className={status} style={{ flexGrow: count }} /> : null))}
    </span>
  );
}

function ServiceRows({ services, rates }: { services: Service[]; rates: Map<string, number[]> }) {
  // Failing and offline first: what needs a look.
  const order = { failing: 0, offline: 1, online: 2 } as const;
  const sorted = [...services].sort((a, b) => order[serviceStatus(a)] - order[serviceStatus(b)] || a.name.localeCompare(b.name));
  return (
    <ul className="rows" aria-label="Services and their health">
      {sorted.map((s) => (
        <li key={s.id} data-testid="overview-service" data-service-name={s.name} data-status={serviceStatus(s)}>
          <StatusDot status={serviceStatus(s)} compact />
          <span className="row-main">
            <strong>{s.name}</strong>
            <span className="muted"> on {s.agentLabel}</span>
            <span className={`row-detail ${serviceStatus(s) === 'failing' ? 'failing' : 'muted'}`}>{reason(s)}</span>
          </span>
          <span className="row-side muted">{rates.get(s.name)?.length ? formatRate(rates.get(s.name)!.at(-1)!) : ''}</span>
        </li>
      ))}
    </ul>
  );
}

function AgentRows({ agents }: { agents: Agent[] }) {
  const sorted = [...agents].sort((a, b) => Number(b.online) - Number(a.online) || a.label.localeCompare(b.label));
  return (
    <ul className="rows" aria-label="Agents">
      {sorted.map((a) => (
        <li key={a.id} data-testid="overview-agent" data-agent-label={a.label} data-online={a.online}>
          <StatusDot status={a.online ? 'online' : 'offline'} compact />
          <span className="row-main">
            <strong>{a.label}</strong>
            <span className="row-detail muted">{[a.hostname, a.platform, a.version && `v${a.version}`].filter(Boolean).join(' · ') || '—'}</span>
          </span>
          <span className="row-side muted">{a.online ? 'online' : a.lastSeenAt ? `seen ${relative(a.lastSeenAt)}` : 'never seen'}</span>
        </li>
      ))}
    </ul>
  );
}

function RecentEvents() {
  const { current } = useSession();
  const { names, ready: named } = useNames();
  const recent = useResource(() => request('GET /v1/audit', { query: { limit: RECENT } }).then((r) => r.events), current.id);
  if (recent.state.status === 'loading' || !named) return <p className="muted" role="status">Loading…</p>;
  if (recent.state.status === 'error') {
    const forbidden = recent.state.error instanceof ApiError && recent.state.error.code === 'FORBIDDEN';
    return <p className="muted">{forbidden ? 'Owners and admins of this workspace see its events.' : `Could not load the events: ${recent.state.error.message}`}</p>;
  }
  if (recent.state.data.length === 0) return <p className="muted">Nothing has happened yet.</p>;
  return (
    <ul className="rows events" aria-label="Recent events">
      {recent.state.data.map((e) => (
        <li key={e.id} data-testid="overview-event">
          <span className="row-main">
            <code>{e.action}</code>
            <span className="row-detail">
              <Named names={names} type={e.actorType} id={e.actorId} />
              {e.targetType && !(e.targetType === e.actorType && e.targetId === e.actorId) ? (
                <>
                  {' → '}
                  <Named names={names} type={e.targetType} id={e.targetId} metadata={e.metadata} />
                </>
              ) : null}
            </span>
          </span>
          <time className="row-side muted" dateTime={e.at} title={formatTime(e.at)}>{relative(e.at)}</time>
        </li>
      ))}
    </ul>
  );
}

/** The three figures: agents online of all, services by status, the traffic now. */
function Tiles({ agents, services, traffic, throughput }: { agents: Agent[]; services: Service[]; traffic: LiveServices['traffic']; throughput: LiveServices['throughput'] }) {
  const online = agents.filter((a) => a.online).length;
  const counts = { online: 0, failing: 0, offline: 0 };
  for (const s of services) counts[serviceStatus(s)]++;
  const total = sumSamples([...throughput.values()]);
  const streams = [...traffic.values()].reduce((n, t) => n + t.streams, 0);
  const bytes = [...traffic.values()].reduce((n, t) => n + t.bytesIn + t.bytesOut, 0);
  return (
    <div className="tiles">
      <Tile title="Agents online" testId="overview-agents" data={{ online, total: agents.length }}>
        <p className="figure">
          {online}
          <span className="of"> / {agents.length}</span>
        </p>
        <Meter parts={[['online', online], ['offline', agents.length - online]]} />
        <p className="muted">{agents.length === 0 ? 'none enrolled yet' : agents.length - online === 0 ? 'all connected' : `${agents.length - online} offline`}</p>
      </Tile>
      <Tile title="Services" testId="overview-services" data={counts}>
        <p className="figure">{services.length}</p>
        <Meter parts={[['online', counts.online], ['failing', counts.failing], ['offline', counts.offline]]} />
        <p className="tally">
          <StatusDot status="online" text={`${counts.online} online`} />
          <StatusDot status="failing" text={`${counts.failing} failing`} />
          <StatusDot status="offline" text={`${counts.offline} offline`} />
        </p>
      </Tile>
      <Tile title="Traffic now" testId="overview-traffic" data={{ streams }}>
        <p className="figure">{total.length === 0 ? '…' : formatRate(total.at(-1)!)}</p>
        <p className="muted">
          {streams} open stream{streams === 1 ? '' : 's'} · {formatBytes(bytes)} in all
        </p>
        <ThroughputChart name="all services" samples={total} />
      </Tile>
    </div>
  );
}

export function OverviewPage() {
  const agents = useAgents();
  const { services, traffic, throughput } = useServices();
  const agentList = agents.state.status === 'ready' ? agents.state.data : [];
  const serviceList = services.state.status === 'ready' ? services.state.data : [];
  const ready = agents.state.status === 'ready' && services.state.status === 'ready';
  const failed = agents.state.error ?? services.state.error;
  return (
    <section aria-labelledby="overview-title" className="overview">
      <h1 id="overview-title">Overview</h1>
      {failed ? <p className="state error" role="alert">Could not load the workspace: {failed.message}</p> : null}
      {!ready && !failed ? <p className="state" role="status">Loading…</p> : null}
      {ready ? (
        <>
          <Tiles agents={agentList} services={serviceList} traffic={traffic} throughput={throughput} />
          <div className="panels">
            <section className="panel" aria-labelledby="overview-services-title">
              <div className="panel-head">
                <h2 id="overview-services-title">Services</h2>
                <Link to="/services" aria-describedby="overview-services-title">View all</Link>
              </div>
              {serviceList.length === 0 ? <p className="muted">No services yet.</p> : <ServiceRows services={serviceList} rates={throughput} />}
            </section>
            <section className="panel" aria-labelledby="overview-agents-title">
              <div className="panel-head">
                <h2 id="overview-agents-title">Agents</h2>
                <Link to="/agents" aria-describedby="overview-agents-title">View all</Link>
              </div>
              {agentList.length === 0 ? <p className="muted">No agents yet.</p> : <AgentRows agents={agentList} />}
            </section>
            <section className="panel wide" aria-labelledby="overview-events-title">
              <div className="panel-head">
                <h2 id="overview-events-title">Recent events</h2>
                <Link to="/audit" aria-describedby="overview-events-title">View all</Link>
              </div>
              <RecentEvents />
            </section>
          </div>
        </>
      ) : null}
    </section>
  );
}
