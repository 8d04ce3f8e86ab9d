/**
 * `/welcome?workspace=<id>`: where a sign-in through the hub's one-time setup link lands (the hub's /setup page).
 * Before the first render it makes that workspace the chosen one and shows the dashboard's home, so the newcomer sees
 * the agents and services of the workspace `npm start` made. SessionProvider ignores an id that is not one of the
 * user's workspaces.
 */

import { CHOICE_KEY } from './workspace.js';

export function takeWelcome(): void {
  if (window.location.pathname !== '/welcome') return;
  const id = new URLSearchParams(window.location.search).get('workspace');
  try {
    if (id) window.localStorage.setItem(CHOICE_KEY, id);
  } catch {
    // storage refused (private mode): the session's default workspace is shown
  }
  window.history.replaceState(null, '', '/');
}
