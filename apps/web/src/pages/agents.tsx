/** Agents of the workspace: online state live from /v1/events, version, last seen, masked address, token expiry. */

import type { AgentSummary } from '@private-connect/protocol';
import { api } from '../api.js';
import { ListState, formatTime, relative } from '../components.js';
import { useHubEvent } from '../events.js';
import { useSession } from '../workspace.js';
import { useResource } from '../use-resource.js';

/** An agent as GET /v1/agents lists it; `lastIp` comes masked from the hub (`192.168.x.x`). */
export type Agent = AgentSummary;

const WARN_MS = 7 * 24 * 3_600_000;

/** The hub sends the address masked; a whole IPv4 address (an older hub) is masked here the same way. */
export function maskIp(ip: string | null | undefined): string {
  if (!ip) return '—';
  return ip.replace(/^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/, '$1.$2.x.x');
}

export function AgentsPage() {
  const { current } = useSession();
  const agents = useResource(() => api<{ agents: Agent[] }>('GET', '/v1/agents').then((r) => r.agents), current.id);
  const { update, reload } = agents;
  useHubEvent('agent', (event) => {
    // An agent enrolled since the list was loaded: fetch once to get all of its fields.
    if (agents.state.status === 'ready' && !agents.state.data.some((a) => a.id === event.id)) return reload();
    update((list) =>
      list.map((agent) =>
        agent.id === event.id ? { ...agent, online: event.online, label: event.label ?? agent.label, lastSeenAt: event.at ?? agent.lastSeenAt } : agent,
      ),
    );
  });
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <ListState
        state={agents.state}
        retry={reload}
        isEmpty={(list) => list.length === 0}
        empty={<p>No agents yet. Enrol one with <code>connect up</code>; see Getting started.</p>}
      >
        {(list) => (
          <ul className="cards" aria-label="Agents">
            {list.map((agent) => {
              const expiresIn = agent.tokenExpiresAt ? new Date(agent.tokenExpiresAt).getTime() - Date.now() : null;
              return (
                <li key={agent.id} className="card" data-testid="agent" data-agent-label={agent.label} data-online={agent.online}>
                  <div className="card-head">
                    <strong>{agent.label}</strong>
                    <span className={agent.online ? 'badge online' : 'badge offline'}>{agent.online ? 'online' : 'offline'}</span>
                  </div>
                  <dl>
                    <dt>Host</dt>
                    <dd>{agent.hostname ?? '—'}</dd>
                    <dt>Platform</dt>
                    <dd>{agent.platform ?? '—'}</dd>
                    <dt>Version</dt>
                    <dd>{agent.version ?? '—'}</dd>
                    <dt>Last seen</dt>
                    <dd>{agent.online ? 'now' : formatTime(agent.lastSeenAt)}</dd>
                    <dt>Address</dt>
                    <dd>{maskIp(agent.lastIp)}</dd>
                    <dt>Token expires</dt>
                    <dd className={expiresIn !== null && expiresIn < WARN_MS ? 'warn' : undefined}>
                      {agent.tokenExpiresAt ? `${formatTime(agent.tokenExpiresAt)} (${relative(agent.tokenExpiresAt)})` : '—'}
                    </dd>
                  </dl>
                </li>
              );
            })}
          </ul>
        )}
      </ListState>
    </section>
  );
}
