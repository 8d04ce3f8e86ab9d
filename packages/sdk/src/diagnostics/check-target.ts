/** What an exposing agent checks of its own target: DNS of its host, then TCP, TLS, HTTP and latency directly. */

import { connect as netConnect, type Socket } from 'node:net';
import { formatTarget, type HealthCheck, type ServiceProtocol, type Target } from '@private-connect/protocol';
import { checkTargetDns } from './dns-check.js';
import { checkTargetOver } from './target-checks.js';

export interface CheckTargetOptions {
  protocol?: ServiceProtocol;
  /** Connection opens timed for the latency check (default 3). */
  samples?: number;
  timeoutMs?: number;
}

/** The checks of `target` from this machine; a failed DNS check skips the rest. */
export async function checkTarget(target: Target, options: CheckTargetOptions = {}): Promise<HealthCheck[]> {
  const dns = await checkTargetDns(target.host);
  if (!dns.ok) return [dns];
  const timeoutMs = options.timeoutMs ?? 5000;
  const where = formatTarget(target);
  const rest = await checkTargetOver(() => dialDirect(target, timeoutMs), {
    host: target.host,
    port: target.port,
    protocol: options.protocol,
    samples: options.samples ?? 3,
    timeoutMs,
    explain: (err) => ({
      detail: `${where} does not accept connections (${(err as { code?: string }).code ?? (err as Error).message})`,
      hint: `start the service on the exposing machine, or fix the target (connect expose HOST:PORT)`,
    }),
  });
  return [dns, ...rest];
}

/** A TCP connection to the target, resolved once connected. */
function dialDirect(target: Target, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: target.host, port: target.port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
