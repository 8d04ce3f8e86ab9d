/**
 * Who is signed in and which workspace the dashboard acts in. The choice is a non-secret workspace id kept in
 * localStorage so a reload stays where it was; nothing secret is stored in the browser (the session is an
 * HttpOnly cookie the page never sees).
 */

import type { MeAnswer, WorkspaceInfo } from '@private-connect/api';
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { request, setApiWorkspace } from './api.js';

/** Who is signed in (GET /v1/me) and a workspace of theirs: the hub's answer types, from the protocol package. */
export type Me = MeAnswer;
export type Workspace = WorkspaceInfo;

export interface Session {
  me: Me;
  workspaces: Workspace[];
  current: Workspace;
  choose(id: string): void;
}

/** localStorage key of the chosen workspace id (welcome.ts sets it after a setup sign-in). */
export const CHOICE_KEY = 'pc.workspace';
const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside <SessionProvider>');
  return session;
}

type Boot = { status: 'loading' } | { status: 'error'; error: Error } | { status: 'ready'; me: Me; workspaces: Workspace[] };

function readChoice(): string | null {
  try {
    return window.localStorage.getItem(CHOICE_KEY);
  } catch {
    return null;
  }
}

/** Loads /v1/me and /v1/workspaces, then renders `children` with the session (or a loading / error screen). */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [boot, setBoot] = useState<Boot>({ status: 'loading' });
  const [chosen, setChosen] = useState<string | null>(readChoice);
  useEffect(() => {
    setApiWorkspace(null);
    Promise.all([request('GET /v1/me', {}), request('GET /v1/workspaces', {})]).then(
      ([me, { workspaces }]) => setBoot({ status: 'ready', me, workspaces }),
      (error: Error) => setBoot({ status: 'error', error }),
    );
  }, []);
  if (boot.status === 'loading') return <p className="boot" role="status">Loading…</p>;
  if (boot.status === 'error') {
    return (
      <div className="boot" role="alert">
        <p>Could not load the dashboard: {boot.error.message}</p>
        <button type="button" onClick={() => window.location.reload()}>Try again</button>
      </div>
    );
  }
  const fallback: Workspace = { id: boot.me.workspaceId, name: 'Workspace', role: boot.me.kind === 'user' ? boot.me.role : null };
  const workspaces = boot.workspaces.length > 0 ? boot.workspaces : [fallback];
  const current = workspaces.find((w) => w.id === chosen) ?? workspaces.find((w) => w.id === boot.me.workspaceId) ?? workspaces[0]!;
  setApiWorkspace(current.id);
  const choose = (id: string) => {
    try {
      window.localStorage.setItem(CHOICE_KEY, id);
    } catch {
      // storage refused (private mode): the choice lasts until reload
    }
    setChosen(id);
  };
  return <SessionContext.Provider value={{ me: boot.me, workspaces, current, choose }}>{children}</SessionContext.Provider>;
}
