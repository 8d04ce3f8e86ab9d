/**
 * HTTP/1.1 proxy rules shared by the two places that read requests on their way to an app: the hub's public-link
 * proxy and the exposing agent's share filter. Hop-by-hop headers describe one connection and are never passed on
 * (RFC 9110 7.6.1), nor are the headers a message's Connection header names. An Upgrade is offered to the app only
 * for protocols after which the proxy's limits still mean something: never h2c, after whose 101 the connection
 * carries any number of HTTP/2 requests that neither proxy reads.
 */

/** Headers that describe one connection, not the message (RFC 9110 7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

const NO_TOKENS: ReadonlySet<string> = new Set();

/**
 * Headers a Connection header can never make hop-by-hop: dropping Content-Length from a request whose body is still
 * sent would turn that body into a request of its own, one no limit checked (request smuggling); Host says where
 * the request goes.
 */
const FRAMING: ReadonlySet<string> = new Set(['content-length', 'host']);

/**
 * The header names (lower case) a Connection header lists: hop-by-hop for that message, except the framing and
 * routing headers of FRAMING.
 */
export function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined || value.length === 0) return NO_TOKENS;
  return new Set([value].flat().flatMap((v) => v.split(',')).map((t) => t.trim().toLowerCase()).filter((t) => t !== '' && !FRAMING.has(t)));
}

/** Upgrade protocols never offered to an app: h2c carries whole HTTP/2 requests past the limits. */
const NEVER_SWITCH: ReadonlySet<string> = new Set(['h2c']);

/** The protocols of a request's Upgrade header that may be offered to the app (empty: send it as a plain request). */
export function upgradesToOffer(value: string | string[] | undefined): string[] {
  return [value ?? '']
    .flat()
    .flatMap((v) => v.split(','))
    .map((t) => t.trim())
    .filter((t) => t !== '' && !NEVER_SWITCH.has(t.split('/')[0]!.toLowerCase()));
}
