/** The dashboard shell: header with the workspace switcher, navigation, and the page for the current path. */

import { useEffect, useRef, type ReactNode } from 'react';
import type { ServiceInfo } from '@private-connect/protocol';
import { api } from './api.js';
import { EventsProvider, useLiveState } from './events.js';
import { Link, usePath } from './router.js';
import { useResource } from './use-resource.js';
import { SessionProvider, useSession } from './workspace.js';
import { AgentsPage, type Agent } from './pages/agents.js';
import { ApiKeysPage } from './pages/api-keys.js';
import { AuditPage } from './pages/audit.js';
import { GettingStarted } from './pages/getting-started.js';
import { LinksPage } from './pages/links.js';
import { MembersPage } from './pages/members.js';
import { ServicesPage } from './pages/services.js';
import { SharesPage } from './pages/shares.js';

const PAGES: Array<{ path: string; title: string; render: () => ReactNode }> = [
  { path: '/agents', title: 'Agents', render: () => <AgentsPage /> },
  { path: '/services', title: 'Services', render: () => <ServicesPage /> },
  { path: '/keys', title: 'API keys', render: () => <ApiKeysPage /> },
  { path: '/shares', title: 'Shares', render: () => <SharesPage /> },
  { path: '/links', title: 'Public links', render: () => <LinksPage /> },
  { path: '/audit', title: 'Audit log', render: () => <AuditPage /> },
  { path: '/members', title: 'Members', render: () => <MembersPage /> },
  { path: '/start', title: 'Getting started', render: () => <GettingStarted /> },
];

/** `/`: Getting started while the workspace has no agent and no service, the agents otherwise. */
function Home() {
  const { current } = useSession();
  const counts = useResource(
    () => Promise.all([api<{ agents: Agent[] }>('GET', '/v1/agents'), api<{ services: ServiceInfo[] }>('GET', '/v1/services')]).then(([a, s]) => a.agents.length + s.services.length),
    current.id,
  );
  if (counts.state.status === 'loading') return <p className="state" role="status">Loading…</p>;
  if (counts.state.status === 'ready' && counts.state.data === 0) return <GettingStarted />;
  return <AgentsPage />;
}

function WorkspaceSwitcher() {
  const { workspaces, current, choose } = useSession();
  return (
    <label className="switcher">
      <span>Workspace</span>
      <select value={current.id} onChange={(e) => choose(e.target.value)} data-testid="workspace-switcher">
        {workspaces.map((w) => (
          <option key={w.id} value={w.id}>
            {w.name}
            {w.role ? ` (${w.role})` : ''}
          </option>
        ))}
      </select>
    </label>
  );
}

function Live() {
  const state = useLiveState();
  const text = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'live updates off';
  return <span className={`live ${state}`} data-testid="live-state" data-state={state}>{text}</span>;
}

function Shell() {
  const path = usePath();
  const { me, current } = useSession();
  const page = PAGES.find((p) => p.path === path);
  const main = useRef<HTMLElement>(null);
  useEffect(() => {
    document.title = `${page?.title ?? 'Dashboard'} · Private Connect`;
    main.current?.focus();
  }, [page]);
  const signOut = () => {
    void api('POST', '/v1/auth/logout')
      .catch(() => undefined)
      .finally(() => window.location.assign('/login'));
  };
  return (
    <EventsProvider workspaceId={current.id}>
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <Link to="/" className="brand">Private Connect</Link>
        <WorkspaceSwitcher />
        <Live />
        <span className="who">{me.kind === 'user' ? me.email : null}</span>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <nav aria-label="Dashboard">
        <ul>
          {PAGES.map((p) => (
            <li key={p.path}>
              <Link to={p.path} aria-current={p.path === path ? 'page' : undefined}>{p.title}</Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main} tabIndex={-1} key={current.id}>
        {path === '/' ? <Home /> : page ? page.render() : <p>There is no page at {path}. <Link to="/">Go to the dashboard</Link></p>}
      </main>
    </EventsProvider>
  );
}

export function App() {
  return (
    <SessionProvider>
      <Shell />
    </SessionProvider>
  );
}
