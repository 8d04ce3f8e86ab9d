/**
 * Structured JSON logging (pino) with redaction done in the logger, not at call sites: API keys (`pc_...`),
 * 64-hex agent tokens, bearer tokens and cookies never reach the output, whatever path logged them.
 */

import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/pc_[A-Za-z0-9]{8,}/g, 'pc_[REDACTED]'],
  [/\b[a-fA-F0-9]{64}\b/g, '[REDACTED_TOKEN]'],
  [/(bearer\s+)[^\s",\\]+/gi, '$1[REDACTED]'],
  [/((?:set-)?cookie"?\s*[:=]\s*"?)[^"\\]+/gi, '$1[REDACTED]'],
];

/** Removes every secret pattern from a string. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
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
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'hub' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'token', 'apiKey'], censor: '[REDACTED]' },
      hooks: { streamWrite: redactSecrets },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string }) => ({
          method: req.method,
          url: req.url?.split('?')[0],
          ip: maskIp(req.ip),
        }),
      },
    },
    (destination ?? process.stdout) as pino.DestinationStream,
  );
}
