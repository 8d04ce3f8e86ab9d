/**
 * Structured JSON logging (pino) with redaction done in the logger, not at call sites: API keys (`pc_...`), share
 * codes (`pcs_...`), 64-hex agent tokens, base64url session and link tokens, bearer tokens and cookies never reach
 * the output, and IP addresses are masked (`192.168.x.x`), whatever path logged them; but for the hub's own listen
 * addresses (`host:port`, see keepOwnAddress): they are not a client's, and a person needs them whole.
 */

import { isIPv6 } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Cookies first: a whole Cookie / Set-Cookie header value, then a session cookie anywhere in text.
  [/((?:set-)?cookie"?\s*[:=]\s*"?)[^"\\\n]+/gi, '$1[REDACTED]'],
  [/(pc_session=)[^;\s"\\]+/gi, '$1[REDACTED]'],
  [/(bearer\s+)[^\s",\\]+/gi, '$1[REDACTED]'],
  // Secrets in query strings (magic-link, device and share URLs).
  [/([?&](?:token|code|key|session|secret)=)[^&\s"\\]+/gi, '$1[REDACTED]'],
  [/pc_[A-Za-z0-9]{8,}/g, 'pc_[REDACTED]'],
  // Share codes (`pcs_` + 32 base62).
  [/pcs_[A-Za-z0-9]{8,}/g, 'pcs_[REDACTED]'],
  // Agent tokens and any other hex secret (64 hex), including longer runs.
  [/(?<![A-Za-z0-9])[a-fA-F0-9]{32,}(?![A-Za-z0-9])/g, '[REDACTED_TOKEN]'],
  // base64url secrets (session and link tokens: 43 characters for 256 bits); must contain a digit.
  [/(?<![A-Za-z0-9_-])(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])/g, '[REDACTED_TOKEN]'],
  // Public-link tokens (52 lower-case base32 characters), also the rare one without a digit.
  [/(?<![A-Za-z0-9_-])[a-z2-7]{52}(?![A-Za-z0-9_-])/g, '[REDACTED_TOKEN]'],
];

const IPV4 = /(?<![0-9.])(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}(?![0-9])/g;
/** Candidates only: each is checked with isIPv6, so times like 11:24:46 stay as they are. */
const IPV6 = /(?<![0-9A-Za-z:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Za-z:])/g;

/**
 * Removes every secret pattern from a string and masks every IP address in it, except the `host:port` addresses in
 * `keep` (the hub's own listen addresses), which stay whole where the port follows them.
 */
export function redactSecrets(text: string, keep: ReadonlySet<string> = NONE): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  const kept = [...keep].filter((address) => out.includes(address));
  // NUL never appears raw in a JSON line: a placeholder no pattern below can match.
  kept.forEach((address, i) => (out = out.replaceAll(address, `\u0000${i}\u0000`)));
  out = out.replace(IPV4, '$1.$2.x.x');
  out = out.replace(IPV6, (candidate) => (isIPv6(candidate) ? maskIp(candidate)! : candidate));
  kept.forEach((address, i) => (out = out.replaceAll(`\u0000${i}\u0000`, address)));
  return out;
}

const NONE: ReadonlySet<string> = new Set();

/** The listen addresses each logger made by createLogger keeps whole; entries live as long as their logger. */
const ownAddresses = new WeakMap<Logger, Set<string>>();

/**
 * Shows `address` (`host:port`, `[v6]:port`, as in a URL) whole in what `log` writes from now on: the hub's own
 * listen address is not a client's. Does nothing for a logger createLogger did not make.
 */
export function keepOwnAddress(log: Logger, address: string): void {
  ownAddresses.get(log)?.add(address);
}

/** Masks an IP address for logs: `192.168.1.20` → `192.168.x.x`; IPv6 keeps its first two groups. */
export function maskIp(ip: string | undefined): string | undefined {
  if (!ip) return ip;
  const v4 = /(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.x.x`;
  const groups = ip.split(':').filter(Boolean);
  return groups.length >= 2 ? `${groups[0]}:${groups[1]}:x:x` : 'x';
}

/** Creates the hub's root logger. `destination` defaults to stdout. */
/**
 * A destination for createLogger that keeps what the hub logged, one object per JSON line (a line that is not JSON
 * is kept as `{msg: line}`), for tests and embedders that read their hub's log. `limit` keeps only the newest lines.
 */
export function collectJsonLines(limit = Infinity): { sink: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  let partial = '';
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      partial += chunk.toString();
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          lines.push({ msg: line });
        }
        if (lines.length > limit) lines.splice(0, lines.length - limit);
      }
      callback();
    },
  });
  return { sink, lines };
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const keep = new Set<string>();
  const logger = pino(
    {
      level,
      base: { service: 'hub' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Known secret fields are censored by name; everything else, in every path (messages, nested objects, error
      // messages and stacks, serializers, child bindings), is scrubbed by pattern on the way out (streamWrite).
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["set-cookie"]',
          'res.headers["set-cookie"]',
          'headers.authorization',
          'headers.cookie',
          'token',
          '*.token',
          'apiKey',
          '*.apiKey',
          'secret',
          '*.secret',
        ],
        censor: '[REDACTED]',
      },
      hooks: { streamWrite: (text) => redactSecrets(text, keep) },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string; headers?: Record<string, unknown> }) => ({
          method: req.method,
          url: req.url?.split('?')[0],
          ip: maskIp(req.ip),
          headers: req.headers,
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      },
    },
    (destination ?? process.stdout) as pino.DestinationStream,
  );
  ownAddresses.set(logger, keep);
  return logger;
}
