/** Small shared pieces: list states (loading / error / empty), status dots, copy buttons, one-time secrets, dates. */

import { useState, type ReactNode } from 'react';
import type { Resource } from './use-resource.js';

/** Renders `children(data)` when ready, else the loading, error or (when `isEmpty`) empty state. */
export function ListState<T>({ state, isEmpty, empty, retry, children }: {
  state: Resource<T>;
  isEmpty: (data: T) => boolean;
  empty: ReactNode;
  retry: () => void;
  children: (data: T) => ReactNode;
}) {
  if (state.status === 'loading') return <p className="state" role="status">Loading…</p>;
  if (state.status === 'error') {
    return (
      <div className="state error" role="alert">
        <p>Could not load this list: {state.error.message}</p>
        <button type="button" onClick={retry}>Try again</button>
      </div>
    );
  }
  if (isEmpty(state.data)) return <div className="state empty">{empty}</div>;
  return <>{children(state.data)}</>;
}

/** A button that copies `text` and says so for a moment. */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = () => {
    navigator.clipboard.writeText(text).then(
      () => setDone('copied'),
      () => setDone('failed'),
    );
    window.setTimeout(() => setDone('idle'), 2000);
  };
  return (
    <button type="button" className="copy" onClick={copy} aria-label={`${label}: ${text}`}>
      {done === 'copied' ? 'Copied' : done === 'failed' ? 'Select and copy' : label}
    </button>
  );
}

/** A command or value shown in monospace with a copy button. */
export function Copyable({ text, label }: { text: string; label?: string }) {
  return (
    <span className="copyable">
      <code>{text}</code>
      <CopyButton text={text} label={label} />
    </span>
  );
}

/** A secret shown once (API key, share code, link URL): never stored, gone when dismissed or on reload. */
export function OneTimeSecret({ title, value, testId, onDone }: { title: string; value: string; testId: string; onDone: () => void }) {
  return (
    <div className="secret" role="status">
      <p>
        <strong>{title}</strong> It is shown only this once; copy it now.
      </p>
      <span className="copyable">
        <code data-testid={testId}>{value}</code>
        <CopyButton text={value} />
      </span>
      <button type="button" onClick={onDone}>Done</button>
    </div>
  );
}

/** What a status dot says: connected and well, connected but its target fails the checks, not connected. */
export type Status = 'online' | 'failing' | 'offline';

const STATUS_TEXT: Record<Status, string> = { online: 'online', failing: 'failing checks', offline: 'offline' };

/** A coloured dot with its word beside it (the colour is never the only sign); `compact`: the word for screen readers only. */
export function StatusDot({ status, text = STATUS_TEXT[status], compact = false }: { status: Status; text?: string; compact?: boolean }) {
  return (
    <span className={`status ${status}`} data-testid="status" data-status={status}>
      <span className="dot" aria-hidden="true" />
      {compact ? <span className="sr-only">{text}</span> : text}
    </span>
  );
}

/** An error from a form action, announced to screen readers. */
export function FormError({ error }: { error: Error | null }) {
  return error ? <p className="form-error" role="alert">{error.message}</p> : null;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return 'never';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** "in 3 days", "2 hours ago". */
export function relative(iso: string, now = Date.now()): string {
  const ms = new Date(iso).getTime() - now;
  const abs = Math.abs(ms);
  if (abs < 60_000) return 'just now';
  const [value, unit] = abs < 3_600_000 ? [Math.round(abs / 60_000), 'minute'] : abs < 86_400_000 ? [Math.round(abs / 3_600_000), 'hour'] : [Math.round(abs / 86_400_000), 'day'];
  const text = `${value} ${unit}${value === 1 ? '' : 's'}`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** Parses a comma- or space-separated list; empty means "not given". */
export function parseList(text: string): string[] | undefined {
  const items = text.split(/[\s,]+/).filter(Boolean);
  return items.length > 0 ? items : undefined;
}
