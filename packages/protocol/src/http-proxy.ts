/**
 * HTTP/1.1 proxy rules shared by the two places that read requests on their way to an app: the hub's public-link
 * proxy and the exposing agent's share filter. Hop-by-hop headers describe one connection and are never passed on
 * (RFC 9110 7.6.1), nor are the headers a message's Connection header names. An Upgrade is offered to the app only
 * for protocols after which the proxy's limits still mean something: never h2c, after whose 101 the connection
 * carries any number of HTTP/2 requests that neither proxy reads.
 */

/** Headers that describe one connection, not the message (RFC 9110 7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The header names (lower case) a Connection header lists: hop-by-hop for that message. */
export function connectionTokens(value: string | string[] | undefined): Set<string> {
  return new Set([value ?? ''].flat().flatMap((v) => v.split(',')).map((t) => t.trim().toLowerCase()).filter(Boolean));
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
