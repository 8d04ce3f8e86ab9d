/**
 * The checks of one target over any way to open a connection to it (through a tunnel, or directly from the
 * exposing agent): TCP (it accepts), TLS and HTTP (when it speaks them), latency (median of a few opens).
 */

import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { formatTarget, type HealthCheck, type ServiceProtocol } from '@private-connect/protocol';
import { probeHttp, type HttpProbeResult } from './http-probe.js';
import { probeTls } from './tls-probe.js';
import { tlsCheck } from './tls-check.js';

/** Opens a fresh connection to the target; resolves once the target accepted it. */
export type Dial = () => Promise<Duplex>;

export interface TargetCheckOptions {
  /** The target's host and port as its exposing agent sees them: the Host header and the TLS server name. */
  host: string;
  port: number;
  /** What the service was exposed as; for 'http', an answer that is not HTTP fails the HTTP check. */
  protocol?: ServiceProtocol;
  /** Connection opens timed for the latency check (default 5). */
  samples?: number;
  /** Time each probe may take (default 5000 ms). */
  timeoutMs?: number;
  /** Explains a failed open: what happened and what to do. */
  explain(err: unknown): { detail: string; hint: string };
  /** How the TCP line names the target (default host:port). */
  where?: string;
  /** Sent as User-Agent by the HTTP check. */
  userAgent?: string;
  now?: () => Date;
}

/** How long to wait, after the first open, for a server that speaks first (SSH, SMTP, MySQL, ...). */
const BANNER_WAIT_MS = 300;
/** How long the TLS probe waits for an answer to its hello. */
const TLS_PROBE_MS = 2000;

/** Runs the checks in order; when the target cannot be opened, only the failed TCP check is returned. */
export async function checkTargetOver(dial: Dial, options: TargetCheckOptions): Promise<HealthCheck[]> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const target = options.where ?? formatTarget({ host: options.host, port: options.port });
  const first = await timed(dial);
  if (!first.ok) {
    const { detail, hint } = options.explain(first.error);
    return [{ name: 'tcp', ok: false, detail, hint, ms: first.ms }];
  }
  const banner = await readBanner(first.value, BANNER_WAIT_MS);
  first.value.destroy();
  const speaksFirst = banner !== undefined && !banner.startsWith('HTTP/');
  const tcp: HealthCheck = {
    name: 'tcp',
    ok: true,
    detail: `${target} accepts connections${speaksFirst ? `; it greets with "${printable(banner)}"` : ''}`,
    ms: round(first.ms),
  };
  const checks: HealthCheck[] = [tcp];
  if (!speaksFirst) {
    const started = performance.now();
    // A TLS server answers a hello within a round trip: a short wait is enough, and bounds a silent target's cost.
    const probe = await dial().then((raw) => probeTls(raw, { host: options.host, timeoutMs: Math.min(timeoutMs, TLS_PROBE_MS) }), () => undefined);
    const check = probe && tlsCheck(probe, (options.now ?? (() => new Date()))(), round(performance.now() - started));
    if (check) checks.push(check);
    // HTTP servers answer garbage (our hello) with 400 or close: a target silent to it is not HTTP, unless declared so.
    const silent = probe?.kind === 'not-tls' && probe.silent === true;
    if (!silent || options.protocol === 'http') {
      const http = await httpCheck(dial, probe?.kind === 'tls', options, timeoutMs);
      if (http) checks.push(http);
    }
  }
  checks.push(await latencyCheck(dial, first.ms, options));
  return checks;
}

async function httpCheck(dial: Dial, overTls: boolean, options: TargetCheckOptions, timeoutMs: number): Promise<HealthCheck | undefined> {
  const host = formatTarget({ host: options.host, port: options.port });
  const open = async () => {
    const raw = await dial();
    if (!overTls) return raw;
    return tlsConnect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(isIP(options.host) === 0 ? { servername: options.host } : {}) });
  };
  const ask = async (method: 'HEAD' | 'GET'): Promise<HttpProbeResult> => {
    try {
      return await probeHttp(await open(), { method, host, timeoutMs, userAgent: options.userAgent ?? 'connect-check' });
    } catch {
      return { kind: 'not-http', reason: 'the connection failed' };
    }
  };
  const started = performance.now();
  let method: 'HEAD' | 'GET' = 'HEAD';
  let answer = await ask(method);
  // Some servers do not implement HEAD; their answer to GET is what counts.
  if (answer.kind === 'http' && (answer.status === 405 || answer.status === 501)) answer = await ask((method = 'GET'));
  const ms = round(performance.now() - started);
  const scheme = overTls ? 'HTTPS' : 'HTTP';
  if (answer.kind === 'not-http') {
    if (options.protocol !== 'http') return undefined;
    return { name: 'http', ok: false, detail: `exposed as HTTP, but the target ${answer.reason}`, hint: 'check that the target is the HTTP service you meant, or expose it without --http', ms };
  }
  const line = `${scheme} ${method} / → ${answer.status}${answer.reason ? ` ${answer.reason}` : ''}`;
  if (answer.status >= 500) {
    return { name: 'http', ok: false, detail: line, hint: 'the service answers with a server error; look at its logs on the exposing machine', ms };
  }
  return { name: 'http', ok: true, detail: line, ms };
}

async function latencyCheck(dial: Dial, firstMs: number, options: TargetCheckOptions): Promise<HealthCheck> {
  const samples = [firstMs];
  let failure: unknown;
  let failures = 0;
  for (let i = 1; i < (options.samples ?? 5); i++) {
    const open = await timed(dial);
    if (open.ok) {
      samples.push(open.ms);
      open.value.destroy();
    } else {
      failures++;
      failure = open.error;
    }
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const median = round(sorted[Math.floor((sorted.length - 1) / 2)]!);
  const detail = `${median} ms median of ${samples.length} opens (min ${round(sorted[0]!)}, max ${round(sorted.at(-1)!)})`;
  if (failures > 0) {
    const { detail: why, hint } = options.explain(failure);
    return { name: 'latency', ok: false, detail: `${failures} of ${samples.length + failures} opens failed (${why}); ${detail}`, hint, ms: median };
  }
  return { name: 'latency', ok: true, detail, ms: median };
}

type Timed = { ok: true; value: Duplex; ms: number } | { ok: false; error: unknown; ms: number };

async function timed(dial: Dial): Promise<Timed> {
  const started = performance.now();
  try {
    const value = await dial();
    return { ok: true, value, ms: performance.now() - started };
  } catch (error) {
    return { ok: false, error, ms: round(performance.now() - started) };
  }
}

/** The first bytes the server sends on its own within `waitMs`, as text; undefined when it waits for the client. */
function readBanner(socket: Duplex, waitMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (value: string | undefined) => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(value);
    };
    const onData = (chunk: Buffer) => done(chunk.subarray(0, 200).toString('latin1'));
    const timer = setTimeout(() => done(undefined), waitMs);
    socket.on('data', onData);
    socket.on('error', () => done(undefined));
  });
}

function printable(banner: string): string {
  const line = banner.split(/\r?\n/)[0]!.replace(/[^\x20-\x7e]/g, '?');
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
