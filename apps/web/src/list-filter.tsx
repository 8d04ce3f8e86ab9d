/** Search and status filter above a list (agents, services): narrows it as one types, says how many are shown. */

import { useState } from 'react';
import type { Status } from './components.js';

export interface FilterValue {
  text: string;
  status: Status | '';
}

/** The filter's state and the items of `list` it keeps: every word of the search in `haystack(item)`, and the status. */
export function useListFilter<T>(list: T[], haystack: (item: T) => string, statusOf: (item: T) => Status): { value: FilterValue; set: (v: FilterValue) => void; shown: T[] } {
  const [value, set] = useState<FilterValue>({ text: '', status: '' });
  const words = value.text.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = list.filter((item) => {
    if (value.status && statusOf(item) !== value.status) return false;
    const text = haystack(item).toLowerCase();
    return words.every((word) => text.includes(word));
  });
  return { value, set, shown };
}

/** The search box and status select; `statuses` are the ones this list can have. */
export function ListFilter({ what, one, value, onChange, statuses, shown, total }: {
  /** What the list holds, plural and singular: "agents", "agent". */
  what: string;
  one: string;
  value: FilterValue;
  onChange: (value: FilterValue) => void;
  statuses: Array<[Status, string]>;
  shown: number;
  total: number;
}) {
  return (
    <div className="filter" role="search" aria-label={`Filter ${what}`}>
      <label className="filter-text">
        <span className="sr-only">Search {what}</span>
        <input type="search" value={value.text} onChange={(e) => onChange({ ...value, text: e.target.value })} placeholder={`Search ${what}…`} />
      </label>
      <label className="filter-status">
        <span className="sr-only">Status</span>
        <select value={value.status} onChange={(e) => onChange({ ...value, status: e.target.value as Status | '' })}>
          <option value="">All statuses</option>
          {statuses.map(([status, text]) => (
            <option key={status} value={status}>{text}</option>
          ))}
        </select>
      </label>
      <span className="filter-count muted" aria-live="polite" data-testid="filter-count">
        {shown === total ? '' : `${shown} of `}
        {total} {total === 1 ? one : what}
      </span>
    </div>
  );
}
