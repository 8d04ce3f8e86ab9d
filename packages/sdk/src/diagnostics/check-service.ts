/**
 * `connect reach <name> --check` as a function: checks a service end to end from the reaching side. DNS (the hub's
 * host here, the target's host as the exposing agent last reported it), then TCP, TLS, HTTP and latency through
 * fresh tunnel streams, exactly the path a real client takes.
 */

import { isIP } from 'node:net';
import { ConnectError, ERROR_CODES, formatTarget, parseTarget, type HealthCheck, type ServiceInfo } from '@private-connect/protocol';
import type { HubConnection } from '../agent/hub-connection.js';
import { duplexPair } from '@private-connect/tunnel';
import type { ApiClient } from '../api-client.js';
import { resolveHost } from './dns-check.js';
import { checkTargetOver } from './target-checks.js';

export interface CheckServiceOptions {
  /** The hub URL the agent connects to (its host name is the first DNS check). */
  hubUrl: string;
  /** Reads what the exposing agent last reported (its DNS check of the target); without it that part is skipped. */
  api?: Pick<ApiClient, 'serviceDiagnostics'>;
  /** Connection opens timed for the latency check (default 5). */
  samples?: number;
  /** Time each probe may take (default 5000 ms). */
  timeoutMs?: number;
  /** Time to wait for the connection to the hub (default 10000 ms). */
  connectTimeoutMs?: number;
}

/** The result of checking one service: `ok` when every check that applies passed. */
export interface ServiceCheckReport {
  service: string;
  ok: boolean;
  checks: HealthCheck[];
}

/** Checks `name` through `agent`'s hub connection (an Agent, or anything with its `connection`). */
export async function checkService(agent: { connection: HubConnection }, name: string, options: CheckServiceOptions): Promise<ServiceCheckReport> {
  const report = (checks: HealthCheck[]): ServiceCheckReport => ({ service: name, ok: checks.every((c) => c.ok), checks });
  const hubHost = new URL(options.hubUrl).hostname;
  const hub = await resolveHost(hubHost);
  const hubDns: HealthCheck = hub.ok
    ? { name: 'dns', ok: true, detail: `hub ${hub.detail}`, ms: hub.ms }
    : { name: 'dns', ok: false, detail: `hub ${hub.detail}`, hint: "check the hub URL (connect status) and this machine's DNS", ms: hub.ms };
  let service: ServiceInfo;
  try {
    await agent.connection.ready(options.connectTimeoutMs ?? 10_000);
    service = (await agent.connection.request('resolve', { name })).service;
  } catch (err) {
    return report([hubDns, { name: 'tcp', ok: false, ...explainOpen(err) }]);
  }
  const target = parseTarget(service.target);
  const dns = await withTargetDns(hubDns, target.host, service, options);
  const where = `${name} → ${formatTarget(target)} on ${service.agentLabel}`;
  const rest = await checkTargetOver(() => dialThroughTunnel(agent.connection, name), {
    host: target.host,
    port: target.port,
    protocol: service.protocol,
    samples: options.samples,
    timeoutMs: options.timeoutMs,
    where,
    explain: (err) => explainOpen(err, service),
  });
  return report([dns, ...rest]);
}

/** A fresh stream to the service, as a Duplex; resolves once the exposing agent connected to the target. */
async function dialThroughTunnel(connection: HubConnection, name: string) {
  const stream = await connection.openStream(name, undefined, { confirmed: true });
  const [inside, outside] = duplexPair();
  stream.attach(inside);
  return outside;
}

/** Adds the target's DNS, as the exposing agent last reported it, to the hub's. */
async function withTargetDns(hubDns: HealthCheck, host: string, service: ServiceInfo, options: CheckServiceOptions): Promise<HealthCheck> {
  if (isIP(host.replace(/^\[(.*)\]$/, '$1')) !== 0) return { ...hubDns, detail: `${hubDns.detail}; target ${host} (an IP address)` };
  let reported: HealthCheck | undefined;
  let checkedAt: string | undefined;
  try {
    const latest = options.api ? (await options.api.serviceDiagnostics(service.id, 1)).latest : null;
    reported = latest?.checks.find((c) => c.name === 'dns');
    checkedAt = latest?.checkedAt;
  } catch {
    // A service shared by another workspace, or an older hub: its reports are not readable from here.
  }
  if (!reported) return { ...hubDns, detail: `${hubDns.detail}; target ${host} (not reported by the exposing agent yet)` };
  const when = checkedAt ? ` (${ago(checkedAt)})` : '';
  if (reported.ok) return { ...hubDns, detail: `${hubDns.detail}; target ${reported.detail} on ${service.agentLabel}${when}` };
  return {
    name: 'dns',
    ok: false,
    detail: `${hubDns.detail}; target ${reported.detail}${when}`,
    hint: reported.hint ?? `fix the target's host name or the DNS of ${service.agentLabel}`,
    ...(hubDns.ms !== undefined ? { ms: hubDns.ms } : {}),
  };
}

/** What a failed open means, and what to do about it. */
export function explainOpen(err: unknown, service?: ServiceInfo): { detail: string; hint: string } {
  const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL', err instanceof Error ? err.message : String(err));
  const agent = service ? `"${service.agentLabel}"` : 'the exposing machine';
  const hints: Partial<Record<ConnectError['code'], string>> = {
    HUB_UNREACHABLE: 'check that the hub runs and that this machine reaches it (connect status)',
    SERVICE_NOT_FOUND: 'check the name: connect ls lists the services of your workspace',
    SERVICE_OFFLINE: `start it again on ${agent}: connect expose ${service?.target ?? 'HOST:PORT'} --name ${service?.name ?? 'NAME'}`,
    TARGET_UNREACHABLE: `nothing accepts connections on ${service?.target ?? 'the target'} on ${agent}: start the service there, or expose the right port`,
    OPEN_TIMEOUT: `the exposing agent did not answer in time: check ${agent} and its network`,
    UNAUTHORIZED: 'this machine\'s agent token is not valid; run connect up again',
    TOKEN_EXPIRED: 'run connect up again to re-enrol this machine',
  };
  return { detail: error.message, hint: hints[error.code] ?? ERROR_CODES[error.code].summary };
}

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return seconds < 120 ? `${seconds} s ago` : seconds < 7200 ? `${Math.round(seconds / 60)} min ago` : `${Math.round(seconds / 3600)} h ago`;
}
