/**
 * The URLs a person is shown: the hub's (agents connect to it) and the dashboard's (the web port: browsers, and every
 * link the hub mails or prints), on one host name, so that a link's session cookie lands on the origin the
 * dashboard tab uses. HUB_PUBLIC_URL, when set, is both.
 */

import type { HubConfig } from './config.js';

export interface PublicUrls {
  /** Where agents connect: HUB_PUBLIC_URL, else the hub port on the host name below. */
  hub: string;
  /** Where the dashboard is opened and where sign-in, setup, invitation and device links point. */
  dashboard: string;
}

/** Addresses a person reaches as `localhost` on the hub's machine: any-address binds and loopback. */
const LOCAL_BINDS = new Set(['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost']);

/** The host part of a URL for a bind address: `localhost` for the local ones, the address otherwise. */
export function shownHost(bind: string): string {
  if (LOCAL_BINDS.has(bind)) return 'localhost';
  return bind.includes(':') ? `[${bind}]` : bind;
}

/** The hub's and the dashboard's URL for a hub listening on `port` (and the web port `webPort`, if any). */
export function publicUrls(config: Pick<HubConfig, 'publicUrl' | 'tls' | 'host' | 'webHost'>, port: number, webPort?: number): PublicUrls {
  const publicUrl = config.publicUrl?.replace(/\/+$/, '');
  if (publicUrl) return { hub: publicUrl, dashboard: publicUrl };
  const scheme = config.tls ? 'https' : 'http';
  const hub = `${scheme}://${shownHost(config.host)}:${port}`;
  return { hub, dashboard: webPort === undefined ? hub : `${scheme}://${shownHost(config.webHost)}:${webPort}` };
}
