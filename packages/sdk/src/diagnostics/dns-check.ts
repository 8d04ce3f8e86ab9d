/** Name resolution checks: the hub's host name (reaching side) and a target's host (exposing side). */

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { HealthCheck } from '@private-connect/protocol';

export type Resolution = { ok: true; detail: string; ms: number } | { ok: false; detail: string; ms: number; code: string };

/** Resolves `host` on this machine; an IP address needs no resolution. */
export async function resolveHost(host: string, timeoutMs = 5000): Promise<Resolution> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0) return { ok: true, detail: `${bare} (an IP address)`, ms: 0 };
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await Promise.race([
      lookup(bare, { all: true }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), timeoutMs))),
    ]);
    const shown = addresses.slice(0, 2).map((a) => a.address).join(', ') + (addresses.length > 2 ? ', ...' : '');
    return { ok: true, detail: `${bare} → ${shown}`, ms: ms(started) };
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'EAI_FAIL';
    return { ok: false, detail: `${bare} does not resolve (${code})`, ms: ms(started), code };
  }
}

/** The exposing agent's DNS check of its own target host. */
export async function checkTargetDns(host: string): Promise<HealthCheck> {
  const result = await resolveHost(host);
  if (result.ok) return { name: 'dns', ok: true, detail: result.detail, ms: result.ms };
  return {
    name: 'dns',
    ok: false,
    detail: `${result.detail} on the exposing machine`,
    hint: "fix the target's host name (connect expose HOST:PORT) or the exposing machine's DNS",
    ms: result.ms,
  };
}

function ms(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
