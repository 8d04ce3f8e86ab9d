/**
 * Cookies across public links. Path mode puts every link on the hub's one origin, where a browser would send a cookie
 * with `Path=/` from one link's app to every other link and to the hub. So in path mode each Set-Cookie from an app
 * is moved into its link's own space: `Path=/l/<token>/`, no Domain, and its name prefixed with the link's cookie
 * tag (`linkCookiePrefix`); on the way in, only cookies carrying that prefix are passed on, under their own names.
 * That allowlist is what keeps out every cookie the browser sends under the link's path that the link's app did not
 * set through the link: the hub's session, other apps' old `Path=/` cookies, and anything a script on another link's
 * subdomain set for a parent domain (it cannot know the tag, which is derived from the link's secret token).
 *
 * Subdomain mode is the app's own origin: cookies pass as they are, except that an app may not set the hub's session
 * cookie, and a Domain attribute is removed (the cookie stays the app's own host's: `Domain=<base domain>` or a
 * parent would reach every other link, and the hub if it sits under that domain).
 */

import { createHash } from 'node:crypto';
import { SECURE_SESSION_COOKIE, SESSION_COOKIE } from '../store/sessions.js';

/** The hub's own cookie names, lower case (`__Host-` is the https form): never set by an app, never sent to one. */
const HUB_COOKIES = new Set([SESSION_COOKIE, SECURE_SESSION_COOKIE].map((n) => n.toLowerCase()));

/** True for a name of the hub's own session cookie. */
function isHubCookie(name: string): boolean {
  return HUB_COOKIES.has(name.trim().toLowerCase());
}

/** The cookie-name prefix of one path-mode link: `pcl` + 12 hex of a hash of its token + `_` (reveals nothing of it). */
export function linkCookiePrefix(token: string): string {
  return `pcl${createHash('sha256').update(`link cookie ${token}`).digest('hex').slice(0, 12)}_`;
}

/** Splits `name=value; attr; attr=x` into its pair's name and the rest; undefined for a pair without a name. */
function splitSetCookie(value: string): { name: string; pair: string; attributes: string[] } | undefined {
  const [pair = '', ...attributes] = value.split(';');
  const eq = pair.indexOf('=');
  // A nameless cookie (`=x` or `x`) is read differently by different browsers: it is not passed on.
  if (eq <= 0 || pair.slice(0, eq).trim() === '') return undefined;
  return { name: pair.slice(0, eq).trim(), pair: pair.trim(), attributes };
}

/** The attributes without Path and Domain. */
function withoutScope(attributes: string[]): string[] {
  return attributes.map((a) => a.trim()).filter((a) => a !== '' && !/^(path|domain)\s*(=|$)/i.test(a));
}

/** Path mode: a Set-Cookie value moved into the link's space (prefixed name, `Path=<linkPath>`, no Domain). */
export function pathModeSetCookie(value: string, prefix: string, linkPath: string): string | undefined {
  const cookie = splitSetCookie(value);
  if (!cookie) return undefined;
  return [`${prefix}${cookie.pair}`, ...withoutScope(cookie.attributes), `Path=${linkPath}`].join('; ');
}

/** Subdomain mode: a Set-Cookie value without Domain; undefined when it names the hub's session cookie. */
export function subdomainSetCookie(value: string): string | undefined {
  const cookie = splitSetCookie(value);
  if (!cookie || isHubCookie(cookie.name)) return undefined;
  const attributes = cookie.attributes.map((a) => a.trim()).filter((a) => a !== '' && !/^domain\s*(=|$)/i.test(a));
  return [cookie.pair, ...attributes].join('; ');
}

/**
 * A Cookie header value as the link's app may see it: in path mode (`prefix` given) only the cookies with the
 * link's prefix, without it; in subdomain mode all but the hub's session cookie. Undefined when none is left.
 */
export function cookiesForApp(value: string, prefix: string | undefined): string | undefined {
  const kept: string[] = [];
  for (const part of value.split(';')) {
    const crumb = part.trim();
    const name = crumb.split('=')[0]!.trim();
    if (prefix === undefined) {
      if (crumb !== '' && !isHubCookie(name)) kept.push(crumb);
    } else if (name.startsWith(prefix) && name.length > prefix.length) kept.push(crumb.slice(prefix.length));
  }
  return kept.length > 0 ? kept.join('; ') : undefined;
}
