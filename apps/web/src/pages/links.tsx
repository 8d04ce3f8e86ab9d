/**
 * Public links: a URL that reaches one HTTP service of the workspace (picked from its list) without an agent
 * (create → the URL is shown once), revoke.
 */

import { useState } from 'react';
import type { CreateLinkRequest, CreatedLink, LinkInfo, ServiceSummary } from '@private-connect/api';
import { request } from '../api.js';
import { Copyable, FormError, ListState, OneTimeSecret, formatTime } from '../components.js';
import { EMPTY_LIMITS, LimitsFields, describeLimits, limitsBody } from '../limits-fields.js';
import { useSession } from '../workspace.js';
import { useResource, useSubmit } from '../use-resource.js';

function CreateLink({ services, onCreated }: { services: ServiceSummary[] | undefined; onCreated: () => void }) {
  const [service, setService] = useState('');
  const [limits, setLimits] = useState(EMPTY_LIMITS);
  const [created, setCreated] = useState<CreatedLink | null>(null);
  const { busy, error, submit } = useSubmit(
    () => request('POST /v1/links', { body: { service, ...limitsBody(limits) } satisfies CreateLinkRequest }),
    (answer) => {
      setCreated(answer);
      setService('');
      setLimits(EMPTY_LIMITS);
      onCreated();
    },
  );
  return (
    <div>
      <form className="grid-form" onSubmit={submit} aria-label="Create a public link">
        <label>
          Service
          <select value={service} onChange={(e) => setService(e.target.value)} required disabled={!services || services.length === 0} data-testid="link-service">
            <option value="">{!services ? 'Loading…' : services.length === 0 ? 'No services yet' : 'Choose a service'}</option>
            {(services ?? []).map((s) => (
              <option key={s.id} value={s.name}>
                {s.name}
                {s.protocol === 'http' ? ' · HTTP' : ''}
                {s.online ? '' : ' · offline'}
              </option>
            ))}
          </select>
        </label>
        <LimitsFields value={limits} onChange={setLimits} />
        <button type="submit" disabled={busy}>Create public link</button>
      </form>
      <FormError error={error} />
      {created ? (
        <div>
          <OneTimeSecret title="The public link: anyone with it reaches the service." value={created.url} testId="new-link-url" onDone={() => setCreated(null)} />
          {created.subdomainUrl ? <Copyable text={created.subdomainUrl} label="Copy subdomain URL" /> : null}
        </div>
      ) : null}
    </div>
  );
}

export function LinksPage() {
  const { current } = useSession();
  const links = useResource(() => request('GET /v1/links', {}).then((r) => r.links), current.id);
  const services = useResource(() => request('GET /v1/services', {}).then((r) => r.services), current.id);
  const [error, setError] = useState<Error | null>(null);
  const revoke = (link: LinkInfo) => {
    if (!window.confirm(`Revoke the public link to ${link.service} (${link.prefix}…)? It stops working now.`)) return;
    setError(null);
    request('DELETE /v1/links/:id', { params: { id: link.id } }).then(links.reload, setError);
  };
  return (
    <section aria-labelledby="links-title">
      <h1 id="links-title">Public links</h1>
      <CreateLink services={services.state.status === 'ready' ? services.state.data : undefined} onCreated={links.reload} />
      <FormError error={error} />
      <ListState state={links.state} retry={links.reload} isEmpty={(list) => list.length === 0} empty={<p>No public links yet.</p>}>
        {(list) => (
          <ul className="cards" aria-label="Public links">
            {list.map((link) => (
              <li key={link.id} className="card" data-testid="link" data-state={link.state}>
                <div className="card-head">
                  <strong>{link.service}</strong>
                  <span className={`badge ${link.state}`}>{link.state}</span>
                </div>
                <dl>
                  <dt>Token</dt>
                  <dd><code>{link.prefix}…</code></dd>
                  <dt>Limits</dt>
                  <dd>{describeLimits(link)}</dd>
                  <dt>Expires</dt>
                  <dd>{formatTime(link.expiresAt)}</dd>
                </dl>
                {link.state === 'active' ? (
                  <button type="button" className="danger" onClick={() => revoke(link)}>Revoke<span className="sr-only"> link to {link.service}</span></button>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </ListState>
    </section>
  );
}
