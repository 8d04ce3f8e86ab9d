/** API keys: create (the key is shown once and never stored), list by prefix, revoke. */

import { useState } from 'react';
import type { ApiKeyInfo } from '@private-connect/api';
import { request } from '../api.js';
import { FormError, ListState, OneTimeSecret, formatTime } from '../components.js';
import { useSession } from '../workspace.js';
import { useResource, useSubmit } from '../use-resource.js';

/** The create form and the one-time display of the new key; shared with Getting started. */
export function CreateApiKey({ onCreated }: { onCreated?: () => void }) {
  const [name, setName] = useState('');
  const [key, setKey] = useState<string | null>(null);
  const { busy, error, submit } = useSubmit(
    () => request('POST /v1/api-keys', { body: { name: name.trim() || 'dashboard' } }),
    (created) => {
      setKey(created.key);
      setName('');
      onCreated?.();
    },
  );
  return (
    <div>
      <form className="inline-form" onSubmit={submit}>
        <label>
          Key name
          <input value={name} onChange={(e) => setName(e.target.value)} maxLength={128} placeholder="laptop" />
        </label>
        <button type="submit" disabled={busy}>Create API key</button>
      </form>
      <FormError error={error} />
      {key ? <OneTimeSecret title="Your new API key." value={key} testId="new-api-key" onDone={() => setKey(null)} /> : null}
    </div>
  );
}

export function ApiKeysPage() {
  const { current } = useSession();
  const keys = useResource(() => request('GET /v1/api-keys', {}).then((r) => r.apiKeys), current.id);
  const [error, setError] = useState<Error | null>(null);
  const revoke = (key: ApiKeyInfo) => {
    if (!window.confirm(`Revoke the API key "${key.name}" (${key.prefix}…)? Scripts using it stop working.`)) return;
    setError(null);
    request('DELETE /v1/api-keys/:id', { params: { id: key.id } }).then(keys.reload, setError);
  };
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <p>An API key enrols agents (<code>connect up --api-key</code>) and drives scripts. It has the whole workspace's rights.</p>
      <CreateApiKey onCreated={keys.reload} />
      <FormError error={error} />
      <ListState state={keys.state} retry={keys.reload} isEmpty={(list) => list.length === 0} empty={<p>No API keys yet.</p>}>
        {(list) => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Prefix</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col"><span className="sr-only">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {list.map((key) => (
                  <tr key={key.id} data-testid="api-key">
                    <td>{key.name}</td>
                    <td><code>{key.prefix}…</code></td>
                    <td>{formatTime(key.createdAt)}</td>
                    <td>{formatTime(key.lastUsedAt)}</td>
                    <td>
                      {key.revokedAt ? (
                        <span className="badge offline">revoked</span>
                      ) : (
                        <button type="button" className="danger" onClick={() => revoke(key)}>Revoke<span className="sr-only"> {key.name}</span></button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </ListState>
    </section>
  );
}
