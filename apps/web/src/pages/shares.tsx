/**
 * Shares: give another workspace some of this workspace's services (picked from its list; create → the code is
 * shown once), list, revoke; and join another workspace's share with the code its owner sent (what `connect join`
 * does).
 */

import { useState, type FormEvent } from 'react';
import type { CreateShareRequest, JoinedShareInfo, ShareInfo } from '@private-connect/api';
import { request } from '../api.js';
import { FormError, ListState, OneTimeSecret, StatusDot, formatTime } from '../components.js';
import { serviceStatus, type Service } from '../live-lists.js';
import { EMPTY_LIMITS, LimitsFields, describeLimits, limitsBody } from '../limits-fields.js';
import { useSession } from '../workspace.js';
import { useResource, useSubmit } from '../use-resource.js';

/** The workspace's services as checkboxes, with their status: what a share may give. */
function ServicePicker({ services, chosen, onChange }: { services: Service[] | undefined; chosen: string[]; onChange: (names: string[]) => void }) {
  if (!services) return <p className="muted">Loading the services…</p>;
  if (services.length === 0) return <p className="muted">This workspace has no services yet: expose one with <code>connect expose</code> first.</p>;
  const toggle = (name: string, on: boolean) => onChange(on ? [...chosen, name] : chosen.filter((n) => n !== name));
  return (
    <div className="choices" data-testid="share-services">
      {services.map((s) => (
        <label key={s.id} className="choice">
          <input type="checkbox" checked={chosen.includes(s.name)} onChange={(e) => toggle(s.name, e.target.checked)} />
          <span>{s.name}</span>
          <StatusDot status={serviceStatus(s)} />
        </label>
      ))}
    </div>
  );
}

function CreateShare({ services, onCreated }: { services: Service[] | undefined; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<string[]>([]);
  const [limits, setLimits] = useState(EMPTY_LIMITS);
  const [code, setCode] = useState<string | null>(null);
  const [missing, setMissing] = useState<Error | null>(null);
  const { busy, error, submit } = useSubmit(
    () => request('POST /v1/shares', { body: { name: name.trim(), services: chosen, ...limitsBody(limits) } satisfies CreateShareRequest }),
    (created) => {
      setCode(created.code);
      setName('');
      setChosen([]);
      setLimits(EMPTY_LIMITS);
      onCreated();
    },
  );
  const send = (event: FormEvent) => {
    if (chosen.length === 0) {
      event.preventDefault();
      setMissing(new Error('Choose at least one service to share.'));
      return;
    }
    setMissing(null);
    submit(event);
  };
  return (
    <div>
      <form className="grid-form" onSubmit={send} aria-label="Create a share">
        <label>
          Share name
          <input value={name} onChange={(e) => setName(e.target.value)} required placeholder="partner-db" />
        </label>
        <fieldset className="wide">
          <legend>Services</legend>
          <ServicePicker services={services} chosen={chosen} onChange={setChosen} />
        </fieldset>
        <LimitsFields value={limits} onChange={setLimits} />
        <button type="submit" disabled={busy}>Create share</button>
      </form>
      <FormError error={missing ?? error} />
      {code ? (
        <OneTimeSecret title="The share code; the other workspace joins with `connect join <code>`." value={code} testId="new-share-code" onDone={() => setCode(null)} />
      ) : null}
    </div>
  );
}

function JoinShare({ onJoined }: { onJoined: () => void }) {
  const [code, setCode] = useState('');
  const [alias, setAlias] = useState('');
  const [joined, setJoined] = useState<JoinedShareInfo | null>(null);
  const { busy, error, submit } = useSubmit(
    () => request('POST /v1/shares/join', { body: { code: code.trim(), ...(alias.trim() ? { alias: alias.trim() } : {}) } }),
    (answer) => {
      setJoined(answer);
      setCode('');
      setAlias('');
      onJoined();
    },
  );
  return (
    <div>
      <form className="grid-form" onSubmit={submit} aria-label="Join a share">
        <label>
          Share code
          <input value={code} onChange={(e) => setCode(e.target.value)} required autoComplete="off" placeholder="pcs_…" />
        </label>
        <label>
          Alias (optional)
          <input value={alias} onChange={(e) => setAlias(e.target.value)} placeholder="acme" />
        </label>
        <button type="submit" disabled={busy}>Join share</button>
      </form>
      <FormError error={error} />
      {joined ? (
        <p role="status" data-testid="joined-share">
          Joined. Reach its services with {joined.services.map((s) => <code key={s}>connect reach {joined.alias}/{s}</code>)}
        </p>
      ) : null}
    </div>
  );
}

export function SharesPage() {
  const { current } = useSession();
  const shares = useResource(() => request('GET /v1/shares', {}), current.id);
  const services = useResource(() => request('GET /v1/services', {}).then((r) => r.services), current.id);
  const [error, setError] = useState<Error | null>(null);
  const revoke = (share: ShareInfo) => {
    if (!window.confirm(`Revoke the share "${share.name}"? The other workspace loses access now.`)) return;
    setError(null);
    request('DELETE /v1/shares/:id', { params: { id: share.id } }).then(shares.reload, setError);
  };
  return (
    <section aria-labelledby="shares-title">
      <h1 id="shares-title">Shares</h1>
      <CreateShare services={services.state.status === 'ready' ? services.state.data : undefined} onCreated={shares.reload} />
      <FormError error={error} />
      <h2>Shared by this workspace</h2>
      <ListState state={shares.state} retry={shares.reload} isEmpty={(list) => list.owned.length === 0} empty={<p>No shares yet.</p>}>
        {(list) => (
          <ul className="cards" aria-label="Shares">
            {list.owned.map((share) => (
              <li key={share.id} className="card" data-testid="share" data-share-name={share.name} data-state={share.state}>
                <div className="card-head">
                  <strong>{share.name}</strong>
                  <span className={`badge ${share.state}`}>{share.state}</span>
                </div>
                <dl>
                  <dt>Code</dt>
                  <dd><code>{share.prefix}…</code></dd>
                  <dt>Services</dt>
                  <dd>{share.services.join(', ')}</dd>
                  <dt>Limits</dt>
                  <dd>{describeLimits(share)}</dd>
                  <dt>Expires</dt>
                  <dd>{formatTime(share.expiresAt)}</dd>
                  <dt>Joined by</dt>
                  <dd>{share.grantee ? `${share.grantee.workspaceName} (as ${share.grantee.alias})` : '—'}</dd>
                </dl>
                {share.state === 'pending' || share.state === 'joined' ? (
                  <button type="button" className="danger" onClick={() => revoke(share)}>Revoke<span className="sr-only"> share {share.name}</span></button>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </ListState>
      <h2>Joined by this workspace</h2>
      <JoinShare onJoined={shares.reload} />
      {shares.state.status === 'ready' && shares.state.data.joined.length > 0 ? (
        <>
          <ul className="cards" aria-label="Joined shares">
            {shares.state.data.joined.map((share) => (
              <li key={share.id} className="card" data-testid="joined" data-alias={share.alias} data-state={share.state}>
                <div className="card-head">
                  <strong>{share.alias}</strong>
                  <span className={`badge ${share.state}`}>{share.state}</span>
                </div>
                <p>From {share.ownerWorkspace}: {share.services.map((s) => `${share.alias}/${s}`).join(', ')}</p>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}
