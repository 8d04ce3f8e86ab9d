/** The audit log: filters, older pages (by `before`), and the loaded entries exported as JSON lines. */

import { useState, type FormEvent } from 'react';
import type { AuditEntry } from '@private-connect/protocol';
import { api } from '../api.js';
import { FormError, formatTime } from '../components.js';
import { useSession } from '../workspace.js';
import { useResource } from '../use-resource.js';

const PAGE = 50;

interface Filters {
  action: string;
  actorType: string;
  targetType: string;
}

interface Page {
  events: AuditEntry[];
  nextBefore: string | null;
}

function query(filters: Filters, before?: string): string {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (filters.action) params.set('action', filters.action);
  if (filters.actorType) params.set('actor_type', filters.actorType);
  if (filters.targetType) params.set('target_type', filters.targetType);
  if (before) params.set('before', before);
  return `/v1/audit?${params}`;
}

function exportJsonLines(events: AuditEntry[]): void {
  const blob = new Blob([events.map((e) => JSON.stringify(e)).join('\n') + '\n'], { type: 'application/x-ndjson' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `audit-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.jsonl`;
  a.click();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function AuditPage() {
  const { current } = useSession();
  const [draft, setDraft] = useState<Filters>({ action: '', actorType: '', targetType: '' });
  const [filters, setFilters] = useState(draft);
  const page = useResource(() => api<Page>('GET', query(filters)), `${current.id}|${JSON.stringify(filters)}`);
  const [more, setMore] = useState<{ busy: boolean; error: Error | null }>({ busy: false, error: null });
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
  };
  const loadOlder = (before: string) => {
    setMore({ busy: true, error: null });
    api<Page>('GET', query(filters, before)).then(
      (older) => {
        page.update((loaded) => ({ events: [...loaded.events, ...older.events], nextBefore: older.nextBefore }));
        setMore({ busy: false, error: null });
      },
      (error: Error) => setMore({ busy: false, error }),
    );
  };
  const set = (field: keyof Filters) => (event: { target: { value: string } }) => setDraft({ ...draft, [field]: event.target.value });
  const state = page.state;
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form className="grid-form" onSubmit={apply} aria-label="Filter the audit log">
        <label>
          Action
          <input value={draft.action} onChange={set('action')} placeholder="share.create" />
        </label>
        <label>
          Actor type
          <select value={draft.actorType} onChange={set('actorType')}>
            <option value="">any</option>
            <option value="user">user</option>
            <option value="api_key">API key</option>
            <option value="agent">agent</option>
            <option value="system">system</option>
          </select>
        </label>
        <label>
          Target type
          <input value={draft.targetType} onChange={set('targetType')} placeholder="agent" />
        </label>
        <button type="submit">Apply filters</button>
      </form>
      {state.status === 'loading' ? <p className="state" role="status">Loading…</p> : null}
      {state.status === 'error' ? (
        <div className="state error" role="alert">
          <p>Could not load the audit log: {state.error.message}</p>
          <button type="button" onClick={page.reload}>Try again</button>
        </div>
      ) : null}
      {state.status === 'ready' && state.data.events.length === 0 ? <div className="state empty"><p>No audit entries match.</p></div> : null}
      {state.status === 'ready' && state.data.events.length > 0 ? (
        <>
          <p>
            <button type="button" onClick={() => exportJsonLines(state.data.events)}>Export {state.data.events.length} entries as JSON lines</button>
          </p>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Action</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Target</th>
                  <th scope="col">Address</th>
                </tr>
              </thead>
              <tbody>
                {state.data.events.map((e) => (
                  <tr key={e.id} data-testid="audit-entry">
                    <td>{formatTime(e.at)}</td>
                    <td><code>{e.action}</code></td>
                    <td>{e.actorType}{e.actorId ? ` ${e.actorId.slice(0, 8)}` : ''}</td>
                    <td>{e.targetType ? `${e.targetType} ${e.targetId ?? ''}` : '—'}</td>
                    <td>{e.ip ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {state.data.nextBefore ? (
            <button type="button" disabled={more.busy} onClick={() => loadOlder(state.data.nextBefore!)}>Load older entries</button>
          ) : null}
          <FormError error={more.error} />
        </>
      ) : null}
    </section>
  );
}
