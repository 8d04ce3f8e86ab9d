/**
 * The method and path of one call of a route: `:name` parameters filled in (URL-encoded), then the query. No
 * runtime imports, so the dashboard bundles this file alone (`@private-connect/api/route-path`), without TypeBox.
 */

import type { ApiRoute } from './routes.js';
import type { RouteInput } from './route-types.js';

/** `routeRequest('DELETE /v1/links/:id', { params: { id } })` → `{ method: 'DELETE', path: '/v1/links/<id>' }`. */
export function routeRequest<R extends ApiRoute>(route: R, input: RouteInput<R>): { method: string; path: string } {
  const space = route.indexOf(' ');
  const params = (input.params ?? {}) as Record<string, string>;
  const path = route.slice(space + 1).replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new TypeError(`${route}: the path parameter ${name} is missing`);
    return encodeURIComponent(value);
  });
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries((input.query ?? {}) as Record<string, unknown>)) {
    if (value !== undefined) query.set(key, String(value));
  }
  const qs = query.toString();
  return { method: route.slice(0, space), path: qs ? `${path}?${qs}` : path };
}
