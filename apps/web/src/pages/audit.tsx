/**
 * The audit log: filters (action, actor type, target type, agent, time range), older pages (by `before`), and every
 * matching entry exported as JSON lines (fetched page by page, up to EXPORT_MAX). Actors and targets are shown by
 * name (names.ts), the id on hover. Coalesced access entries show how many requests they stand for (×N).
 */

import { useState, type FormEvent } from 'react';
import type { AuditEntry, AuditQueryParams } from '@private-connect/api';
import { request } from '../api.js';
import { FormError, formatTime } from '../components.js';
import { nameOf, useNames, type Names } from '../names.js';
import { useSession } from '../workspace.js';
import { useResource } from '../use-resource.js';

const PAGE = 50;
/** Largest page the API serves (MAX_AUDIT_PAGE), used for the export. */
const EXPORT_PAGE = 500;
const EXPORT_MAX = 50_000;

interface Filters {
  action: string;
  actorType: string;
  targetType: string;
  agent: string;
  /** `datetime-local` values (local time), empty when not set. */
  since: string;
  until: string;
}

const NO_FILTERS: Filters = { action: '', actorType: '', targetType: '', agent: '', since: '', until: '' };

/** One page of GET /v1/audit with these filters. */
function auditPage(filters: Filters, before?: string, limit = PAGE) {
  const query: AuditQueryParams = {
    limit,
    action: filters.action ? filters.action.trim() : undefined,
    actor_type: filters.actorType || undefined,
    target_type: filters.targetType ? filters.targetType.trim() : undefined,
    agent: filters.agent || undefined,
    // datetime-local is the browser's local time; the API takes ISO instants.
    since: filters.since ? new Date(filters.since).toISOString() : undefined,
    until: filters.until ? new Date(filters.until).toISOString() : undefined,
    before,
  };
  return request('GET /v1/audit', { query });
}

/** Every entry matching `filters`, newest first, page by page. */
async function fetchAll(filters: Filters): Promise<AuditEntry[]> {
  const all: AuditEntry[] = [];
  let before: string | undefined;
  do {
    const page = await auditPage(filters, before, EXPORT_PAGE);
    all.push(...page.events);
    before = page.nextBefore ?? undefined;
  } while (before && all.length < EXPORT_MAX);
  return all;
}

function download(events: AuditEntry[]): void {
  const blob = new Blob([events.map((e) => JSON.stringify(e)).join('\n') + '\n'], { type: 'application/x-ndjson' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `audit-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.jsonl`;
  a.click();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * "×N" for an access entry that stands for N identical requests (the hub writes identical accesses of one flush
 * window as one entry: `metadata.count`, from `at` to `metadata.lastAt`); nothing for a single event.
 */
function Repeats({ entry }: { entry: AuditEntry }) {
  const { count, lastAt } = entry.metadata;
  if (typeof count !== 'number' || count < 2) return null;
  const span = typeof lastAt === 'string' ? `, from ${formatTime(entry.at)} to ${formatTime(lastAt)}` : '';
  return (
    <span className="badge" data-testid="audit-count" title={`${count} identical requests${span}`}>
      ×{count}
    </span>
  );
}

const KIND: Record<string, string> = { api_key: 'API key', user: 'member', device_code: 'device' };

/** An actor or target: its kind, then its name (the whole id on hover, for when two things share a name). */
export function Named({ names, type, id, metadata }: { names: Names; type: string | null; id: string | null; metadata?: Record<string, unknown> }) {
  if (!type) return <span className="muted">—</span>;
  const { name, known } = nameOf(names, type, id, metadata);
  return (
    <span className="named" title={id ?? undefined} data-testid="audit-name" data-known={known}>
      <span className="kind">{KIND[type] ?? type.replace(/_/g, ' ')}</span> {known ? name : <code>{name}</code>}
    </span>
  );
}

/** The metadata that names the target, for target types whose name the event records (not the actor's). */
const targetMeta = (e: AuditEntry) => (e.targetType === e.actorType && e.targetId === e.actorId ? undefined : e.metadata);

export function AuditPage() {
  const { current } = useSession();
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState(draft);
  const agents = useResource(() => request('GET /v1/agents', {}).then((r) => r.agents), current.id);
  const { names, ready: named } = useNames();
  const [exporting, setExporting] = useState<{ busy: boolean; error: Error | null }>({ busy: false, error: null });
  const exportAll = () => {
    setExporting({ busy: true, error: null });
    fetchAll(filters).then(
      (events) => {
        download(events);
        setExporting({ busy: false, error: null });
      },
      (error: Error) => setExporting({ busy: false, error }),
    );
  };
  const page = useResource(() => auditPage(filters), `${current.id}|${JSON.stringify(filters)}`);
  const [more, setMore] = useState<{ busy: boolean; error: Error | null }>({ busy: false, error: null });
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
  };
  const loadOlder = (before: string) => {
    setMore({ busy: true, error: null });
    auditPage(filters, before).then(
      (older) => {
        page.update((loaded) => ({ events: [...loaded.events, ...older.events], nextBefore: older.nextBefore }));
        setMore({ busy: false, error: null });
      },
      (error: Error) => setMore({ busy: false, error }),
    );
  };
  const set = (field: keyof Filters) => (event: { target: { value: string } }) => setDraft({ ...draft, [field]: event.target.value });
  // The entries wait for the names too (a moment), so that ids never flash in the table.
  const state = named || page.state.status !== 'ready' ? page.state : ({ status: 'loading' } as const);
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
        <label>
          Agent
          <select value={draft.agent} onChange={set('agent')}>
            <option value="">any</option>
            {(agents.state.status === 'ready' ? agents.state.data : []).map((a) => (
              <option key={a.id} value={a.id}>{a.label}</option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="datetime-local" value={draft.since} onChange={set('since')} />
        </label>
        <label>
          Until
          <input type="datetime-local" value={draft.until} onChange={set('until')} />
        </label>
        <button type="submit">Apply filters</button>
        <button type="button" onClick={() => { setDraft(NO_FILTERS); setFilters(NO_FILTERS); }}>Clear</button>
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
            <button type="button" onClick={exportAll} disabled={exporting.busy}>
              {exporting.busy ? 'Exporting…' : 'Export all matching entries as JSON lines'}
            </button>
          </p>
          <FormError error={exporting.error} />
          <div className="table-wrap">
            <table className="stacking">
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
                    <td data-label="When">{formatTime(e.at)}</td>
                    <td data-label="Action"><code>{e.action}</code> <Repeats entry={e} /></td>
                    <td data-label="Actor"><Named names={names} type={e.actorType} id={e.actorId} /></td>
                    <td data-label="Target"><Named names={names} type={e.targetType} id={e.targetId} metadata={targetMeta(e)} /></td>
                    <td data-label="Address">{e.ip ?? '—'}</td>
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
