/** The dashboard shell: header with the workspace switcher, navigation, and the page for the current path. */

import { useEffect, useRef, type ReactNode } from 'react';
import { request } from './api.js';
import { EventsProvider, useLiveState } from './events.js';
import { Link, usePath } from './router.js';
import { useResource } from './use-resource.js';
import { SessionProvider, useSession } from './workspace.js';
import { AgentsPage } from './pages/agents.js';
import { ApiKeysPage } from './pages/api-keys.js';
import { AuditPage } from './pages/audit.js';
import { GettingStarted } from './pages/getting-started.js';
import { LinksPage } from './pages/links.js';
import { MembersPage } from './pages/members.js';
import { OverviewPage } from './pages/overview.js';
import { ServicesPage } from './pages/services.js';
import { SharesPage } from './pages/shares.js';

const PAGES: Array<{ path: string; title: string; render: () => ReactNode }> = [
  { path: '/', title: 'Overview', render: () => <Home /> },
  { path: '/agents', title: 'Agents', render: () => <AgentsPage /> },
  { path: '/services', title: 'Services', render: () => <ServicesPage /> },
  { path: '/keys', title: 'API keys', render: () => <ApiKeysPage /> },
  { path: '/shares', title: 'Shares', render: () => <SharesPage /> },
  { path: '/links', title: 'Public links', render: () => <LinksPage /> },
  { path: '/audit', title: 'Audit log', render: () => <AuditPage /> },
  { path: '/members', title: 'Members', render: () => <MembersPage /> },
  { path: '/start', title: 'Getting started', render: () => <GettingStarted /> },
];

/** `/`: Getting started while the workspace has no agent and no service, the overview otherwise. */
function Home() {
  const { current } = useSession();
  const counts = useResource(
    () => Promise.all([request('GET /v1/agents', {}), request('GET /v1/services', {})]).then(([a, s]) => a.agents.length + s.services.length),
    current.id,
  );
  if (counts.state.status === 'loading') return <p className="state" role="status">Loading…</p>;
  if (counts.state.status === 'ready' && counts.state.data === 0) return <GettingStarted fromOverview />;
  return <OverviewPage />;
}

function WorkspaceSwitcher() {
  const { workspaces, current, choose } = useSession();
  return (
    <label className="switcher">
      <span className="switcher-label">Workspace</span>
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
  return (
    <span className={`live ${state}`} data-testid="live-state" data-state={state} title={`Live updates: ${text}`}>
      <span className="dot" aria-hidden="true" />
      <span className="live-text">{text}</span>
    </span>
  );
}

/** Who is signed in and Sign out, behind the initial of their email (one small button on a phone too). */
function Account() {
  const { me } = useSession();
  const menu = useRef<HTMLDetailsElement>(null);
  const who = me.kind === 'user' ? me.email : 'API key';
  // A menu closes on a click elsewhere and on Escape (which gives focus back to its button).
  useEffect(() => {
    const close = (event: Event) => {
      const details = menu.current;
      if (!details?.open) return;
      if (event instanceof KeyboardEvent) {
        if (event.key !== 'Escape') return;
        details.open = false;
        details.querySelector('summary')?.focus();
      } else if (!details.contains(event.target as Node)) details.open = false;
    };
    document.addEventListener('pointerdown', close);
    document.addEventListener('keydown', close);
    return () => {
      document.removeEventListener('pointerdown', close);
      document.removeEventListener('keydown', close);
    };
  }, []);
  const signOut = () => {
    void request('POST /v1/auth/logout', {})
      .catch(() => undefined)
      .finally(() => window.location.assign('/login'));
  };
  return (
    <details className="account" ref={menu}>
      <summary aria-label={`Account: ${who}`}>
        <span className="avatar" aria-hidden="true">{who.slice(0, 1).toUpperCase()}</span>
      </summary>
      <div className="menu">
        <p className="who">{who}</p>
        <button type="button" onClick={signOut}>Sign out</button>
      </div>
    </details>
  );
}

/** Two joined nodes: the mark beside the name (alone on a phone). */
function Mark() {
  return (
    <svg className="mark" viewBox="0 0 24 24" aria-hidden="true">
      <rect width="24" height="24" rx="6" />
      <circle cx="7.5" cy="12" r="3" />
      <circle cx="16.5" cy="12" r="3" />
      <path d="M10.5 12h3" />
    </svg>
  );
}

function Shell() {
  const path = usePath();
  const { current } = useSession();
  const page = PAGES.find((p) => p.path === path);
  const main = useRef<HTMLElement>(null);
  const nav = useRef<HTMLElement>(null);
  const loaded = useRef(false);
  useEffect(() => {
    document.title = `${page?.title ?? 'Dashboard'} · Private Connect`;
    // After an in-app navigation, focus goes to the new page's content (as a page load would put it at the top),
    // so a screen reader reads the new page; on the first load the browser's own starting point stays.
    if (loaded.current) main.current?.focus();
    loaded.current = true;
    // On a phone the tabs scroll sideways: keep the current one in sight.
    const tab = nav.current?.querySelector<HTMLElement>('[aria-current="page"]');
    const strip = tab?.closest('ul');
    if (tab && strip) strip.scrollLeft = Math.max(0, tab.offsetLeft - (strip.clientWidth - tab.offsetWidth) / 2);
  }, [page]);
  return (
    <EventsProvider workspaceId={current.id}>
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <Link to="/" className="brand">
          <Mark />
          <span className="brand-name">Private Connect</span>
        </Link>
        <WorkspaceSwitcher />
        <Live />
        <Account />
      </header>
      <nav aria-label="Dashboard" className="tabs" ref={nav}>
        <ul>
          {PAGES.map((p) => (
            <li key={p.path}>
              <Link to={p.path} aria-current={p.path === path ? 'page' : undefined}>{p.title}</Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main} tabIndex={-1} key={current.id}>
        {page ? page.render() : <p>There is no page at {path}. <Link to="/">Go to the dashboard</Link></p>}
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
