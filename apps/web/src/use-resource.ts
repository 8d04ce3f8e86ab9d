/** Loads one API resource for a page: loading, error and ready states, a reload, and local updates (from SSE). */

import { useCallback, useEffect, useState, type FormEvent } from 'react';

export type Resource<T> =
  | { status: 'loading'; data?: undefined; error?: undefined }
  | { status: 'error'; data?: undefined; error: Error }
  | { status: 'ready'; data: T; error?: undefined };

export interface ResourceHandle<T> {
  state: Resource<T>;
  reload(): void;
  /** Changes the loaded data in place (no-op while loading or failed). */
  update(change: (data: T) => T): void;
}

/** Runs `load` now and whenever `key` changes (e.g. the workspace); a stale answer is dropped. */
export function useResource<T>(load: () => Promise<T>, key: string): ResourceHandle<T> {
  const [state, setState] = useState<Resource<T>>({ status: 'loading' });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    setState({ status: 'loading' });
    load().then(
      (data) => current && setState({ status: 'ready', data }),
      (error: unknown) => current && setState({ status: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `load` is a new closure each render; `key` names it
  }, [key, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const update = useCallback((change: (data: T) => T) => setState((s) => (s.status === 'ready' ? { status: 'ready', data: change(s.data) } : s)), []);
  return { state, reload, update };
}

/**
 * A form that sends one request: `busy` while it runs, `error` when it failed, `onDone` with the answer. The
 * create forms (API keys, shares, links) share it.
 */
export function useSubmit<T>(send: () => Promise<T>, onDone: (answer: T) => void): { busy: boolean; error: Error | null; submit(event: FormEvent): void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    send().then(
      (answer) => {
        setBusy(false);
        onDone(answer);
      },
      (err: Error) => {
        setError(err);
        setBusy(false);
      },
    );
  };
  return { busy, error, submit };
}
