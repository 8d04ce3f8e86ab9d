/**
 * Agents of the workspace, searchable and filtered by status: online state live from /v1/events, version, last seen, masked address, token expiry (in
 * the warning colour within 7 days), the path each reached service takes (direct, or relayed and why), and for admins: rotate the token of a
 * connected agent, revoke an agent.
 */

import { useState } from 'react';
import { request } from '../api.js';
import { FormError, ListState, StatusDot, formatTime, relative } from '../components.js';
import { ListFilter, useListFilter } from '../list-filter.js';
import { useAgents, type Agent } from '../live-lists.js';
import { useSession } from '../workspace.js';

export type { Agent } from '../live-lists.js';

const WARN_MS = 7 * 24 * 3_600_000;

/** The hub sends the address masked; a whole IPv4 address (an older hub) is masked here the same way. */
export function maskIp(ip: string | null | undefined): string {
  if (!ip) return '—';
  return ip.replace(/^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/, '$1.$2.x.x');
}

export function AgentsPage() {
  const { current } = useSession();
  const admin = current.role === 'owner' || current.role === 'admin';
  const [error, setError] = useState<Error | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const agents = useAgents();
  const { update, reload } = agents;
  const act = (run: () => Promise<string>) => {
    setError(null);
    setNotice(null);
    run().then(setNotice, setError);
  };
  const rotate = (agent: Agent) =>
    act(async () => {
      const answer = await request('POST /v1/agents/:id/rotate-token', { params: { id: agent.id } });
      update((list) => list.map((a) => (a.id === agent.id ? { ...a, tokenExpiresAt: answer.expiresAt } : a)));
      return `${agent.label} has a new token, valid until ${formatTime(answer.expiresAt)}; the old one stops working ${formatTime(answer.previousTokenValidUntil)}.`;
    });
  const revoke = (agent: Agent) => {
    if (!window.confirm(`Revoke ${agent.label}? Its connections end now and its token stops working; the machine must enrol again.`)) return;
    act(async () => {
      await request('DELETE /v1/agents/:id', { params: { id: agent.id } });
      update((list) => list.filter((a) => a.id !== agent.id));
      return `${agent.label} was revoked.`;
    });
  };
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <FormError error={error} />
      {notice ? <p role="status" data-testid="agents-notice">{notice}</p> : null}
      <ListState
        state={agents.state}
        retry={reload}
        isEmpty={(list) => list.length === 0}
        empty={<p>No agents yet. Enrol one with <code>connect up</code>; see Getting started.</p>}
      >
        {(list) => <AgentCards list={list} admin={admin} rotate={rotate} revoke={revoke} />}
      </ListState>
    </section>
  );
}

/** "direct via host:port", or "relayed: why not direct" (GET /v1/agents `paths`, as the agent last said). */
export function pathText(path: Agent['paths'][number]): string {
  if (path.mode === 'direct') return path.via ? `direct via ${path.via}` : 'direct';
  return path.reason ? `relayed: ${path.reason}` : 'relayed';
}

const AGENT_STATUSES: Array<['online' | 'offline', string]> = [['online', 'Online'], ['offline', 'Offline']];

function AgentCards({ list, admin, rotate, revoke }: { list: Agent[]; admin: boolean; rotate: (a: Agent) => void; revoke: (a: Agent) => void }) {
  const filter = useListFilter(list, (a) => [a.label, a.hostname, a.platform, a.version].join(' '), (a) => (a.online ? 'online' : 'offline'));
  return (
    <>
      <ListFilter what="agents" one="agent" value={filter.value} onChange={filter.set} statuses={AGENT_STATUSES} shown={filter.shown.length} total={list.length} />
      {filter.shown.length === 0 ? <div className="state empty"><p>No agent matches this search.</p></div> : null}
      <ul className="cards" aria-label="Agents">
        {filter.shown.map((agent) => {
          const expiresIn = agent.tokenExpiresAt ? new Date(agent.tokenExpiresAt).getTime() - Date.now() : null;
          const expiring = expiresIn !== null && expiresIn < WARN_MS;
          return (
            <li key={agent.id} className="card" data-testid="agent" data-agent-label={agent.label} data-online={agent.online}>
              <div className="card-head">
                <strong>{agent.label}</strong>
                <StatusDot status={agent.online ? 'online' : 'offline'} />
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
                <dt>Identity key</dt>
                <dd data-testid="fingerprint">
                  <code>{agent.fingerprint ?? '—'}</code>
                </dd>
                {agent.paths?.length ? (
                  <>
                    <dt>Reaches</dt>
                    <dd>
                      <ul className="paths" aria-label={`Paths of ${agent.label}`}>
                        {agent.paths.map((path) => (
                          <li key={path.name} data-testid="path" data-service={path.name} data-mode={path.mode}>
                            <code>{path.name}</code>: {pathText(path)}
                          </li>
                        ))}
                      </ul>
                    </dd>
                  </>
                ) : null}
                <dt>Token expires</dt>
                <dd className={expiring ? 'warn' : undefined} data-testid="token-expiry" data-expiring={expiring}>
                  {agent.tokenExpiresAt ? `${formatTime(agent.tokenExpiresAt)} (${relative(agent.tokenExpiresAt)})` : '—'}
                  {expiring ? ' · rotate it soon' : null}
                </dd>
              </dl>
              {admin ? (
                <div className="actions">
                  <button
                    type="button"
                    onClick={() => rotate(agent)}
                    disabled={!agent.online}
                    title={agent.online ? undefined : 'The agent must be online; or run `connect up --rotate-token` on its machine'}
                  >
                    Rotate token<span className="sr-only"> of {agent.label}</span>
                  </button>
                  <button type="button" className="danger" onClick={() => revoke(agent)}>
                    Revoke<span className="sr-only"> {agent.label}</span>
                  </button>
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
    </>
  );
}
