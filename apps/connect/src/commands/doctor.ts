/**
 * `connect doctor`: checks what this machine needs to work (the config file, the hub and its latency, the agent
 * token's expiry, the clock against the hub's, the remembered local ports) and prints each as ✓, ! or ✗ with the
 * fix. Exit 1 when any check fails.
 */

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ConnectError } from '@private-connect/protocol';
import { ApiClient, apiBaseUrl, configPath, hubCa, hubConnectError, listRuns, portIsFree, portsPath, readPorts, readState, type AgentConfig } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color, progress } from '../output.js';

/** A token that stops working within this is a warning. */
export const TOKEN_WARN_MS = 7 * 24 * 60 * 60 * 1000;
/** Clock skew against the hub's Date header: a warning past the first, a failure past the second. */
export const SKEW_WARN_MS = 5_000;
export const SKEW_FAIL_MS = 60_000;
/** How long the hub gets to answer /healthz. */
export const HUB_PROBE_TIMEOUT_MS = 5_000;

export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  /** What to do about a warning or a failure. */
  fix?: string;
}

const MARK = { ok: () => color.green('✓'), warn: () => color.yellow('!'), fail: () => color.red('✗'), skip: () => color.dim('-') };

/** GET /healthz: the round trip time and the hub's clock (Date header, second precision). */
function probeHub(hubUrl: string, allowInsecure: boolean): Promise<{ status: number; latencyMs: number; date?: number; sentAt: number }> {
  const url = new URL(apiBaseUrl(hubUrl, allowInsecure) + '/healthz');
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const ca = url.protocol === 'https:' ? hubCa() : undefined;
  return new Promise((resolve, reject) => {
    const sentAt = Date.now();
    const req = send(url, { method: 'GET', timeout: HUB_PROBE_TIMEOUT_MS, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      res.on('end', () => {
        const date = res.headers.date ? Date.parse(res.headers.date) : NaN;
        resolve({ status: res.statusCode ?? 0, latencyMs: Date.now() - sentAt, sentAt, ...(Number.isNaN(date) ? {} : { date }) });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${HUB_PROBE_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: Error & { code?: string }) => reject(hubConnectError(hubUrl, err.code, err.message)));
    req.end();
  });
}

async function configCheck(ctx: Context): Promise<{ check: Check; config?: AgentConfig }> {
  const file = configPath(ctx.home);
  const fix = 'connect up --hub <url> --api-key <pc_...>';
  if (!existsSync(file)) return { check: { name: 'config', status: 'fail', detail: `no ${file}: this machine is not enrolled`, fix } };
  let value: Partial<AgentConfig>;
  try {
    value = JSON.parse(await readFile(file, 'utf8')) as Partial<AgentConfig>;
  } catch (err) {
    return { check: { name: 'config', status: 'fail', detail: `${file} is not valid JSON (${(err as Error).message})`, fix: `remove it and enrol again: ${fix}` } };
  }
  const missing = (['hubUrl', 'agentId', 'token', 'tokenExpiresAt'] as const).filter((k) => typeof value[k] !== 'string' || value[k] === '');
  if (missing.length) return { check: { name: 'config', status: 'fail', detail: `${file} lacks ${missing.join(', ')}`, fix: `enrol again: ${fix}` } };
  return { check: { name: 'config', status: 'ok', detail: `${file} (agent ${value.label ?? value.agentId})` }, config: value as AgentConfig };
}

async function hubChecks(ctx: Context, hubUrl: string, config: AgentConfig | undefined): Promise<Check[]> {
  const checks: Check[] = [];
  let probe: Awaited<ReturnType<typeof probeHub>>;
  try {
    probe = await probeHub(hubUrl, ctx.env.allowInsecure);
  } catch (err) {
    const message = err instanceof ConnectError ? err.message : String(err);
    const fix =
      err instanceof ConnectError && err.code === 'INSECURE_HUB'
        ? 'use the hub\'s https:// URL'
        : err instanceof ConnectError && err.code === 'HUB_CERTIFICATE'
          ? 'trust the hub\'s CA with --ca <file> or NODE_EXTRA_CA_CERTS'
          : `check that the hub runs and that ${hubUrl} is its address (curl ${hubUrl}/healthz); change it with connect up --hub <url>`;
    checks.push({ name: 'hub', status: 'fail', detail: message, fix });
    return checks;
  }
  if (probe.status !== 200) {
    checks.push({ name: 'hub', status: 'fail', detail: `${hubUrl}/healthz answered HTTP ${probe.status}`, fix: 'is this a Private Connect hub? check the URL, or the hub\'s logs' });
    return checks;
  }
  checks.push({ name: 'hub', status: 'ok', detail: `${hubUrl} answers in ${probe.latencyMs} ms` });

  if (probe.date === undefined) {
    checks.push({ name: 'clock', status: 'skip', detail: 'the hub sent no Date header' });
  } else {
    // The Date header is cut to the second: compare with the middle of the round trip, allow for the truncation.
    const skew = probe.date + 500 - (probe.sentAt + probe.latencyMs / 2);
    const abs = Math.abs(skew);
    const detail = `${abs < 1000 ? 'within a second of' : `${(abs / 1000).toFixed(0)} s ${skew > 0 ? 'behind' : 'ahead of'}`} the hub's clock`;
    const fix = 'turn on time sync (timedatectl set-ntp true, or your OS\'s clock settings); token expiry and TLS certificates depend on the clock';
    checks.push(abs > SKEW_FAIL_MS ? { name: 'clock', status: 'fail', detail, fix } : abs > SKEW_WARN_MS ? { name: 'clock', status: 'warn', detail, fix } : { name: 'clock', status: 'ok', detail });
  }

  if (!config) {
    checks.push({ name: 'token', status: 'skip', detail: 'no agent token (not enrolled)' });
    return checks;
  }
  try {
    const me = await new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure, timeoutMs: HUB_PROBE_TIMEOUT_MS }).me();
    if (me.kind !== 'agent') {
      checks.push({ name: 'token', status: 'ok', detail: `accepted by the hub (${me.kind})` });
    } else {
      const left = me.expiresInMs ?? Date.parse(me.expiresAt) - Date.now();
      const when = `${me.expiresAt.slice(0, 16).replace('T', ' ')} UTC`;
      checks.push(
        left < TOKEN_WARN_MS
          ? { name: 'token', status: 'warn', detail: `expires in ${Math.max(0, Math.floor(left / 86_400_000))} day(s) (${when})`, fix: 'connect up --rotate-token' }
          : { name: 'token', status: 'ok', detail: `valid until ${when}` },
      );
    }
  } catch (err) {
    const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL', String(err));
    const refused = ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN'].includes(error.code);
    checks.push({ name: 'token', status: 'fail', detail: `${error.message} (${error.code})`, fix: refused ? 'enrol this machine again: connect up --hub <url> --api-key <pc_...>' : 'try again; see the hub check above' });
  }
  return checks;
}

/** The remembered reach ports (ports.json and state.json): free, or held by this machine's own reach. */
async function portChecks(ctx: Context): Promise<Check[]> {
  const wanted = new Map<string, { host: string; port: number }>();
  for (const [name, port] of Object.entries(await readPorts(portsPath(ctx.home)))) wanted.set(name, { host: '127.0.0.1', port });
  for (const entry of (await readState(ctx.home)).services) if (entry.kind === 'reach') wanted.set(entry.name, { host: entry.host, port: entry.port });
  if (wanted.size === 0) return [{ name: 'ports', status: 'skip', detail: 'no remembered reach ports yet' }];
  const runs = (await listRuns(ctx.home)).filter((r) => r.command === 'reach');
  const checks: Check[] = [];
  for (const [name, { host, port }] of [...wanted].sort(([a], [b]) => a.localeCompare(b))) {
    const ours = runs.find((r) => r.port === port);
    if (ours) checks.push({ name: `port ${port}`, status: 'ok', detail: `${name}: in use by connect reach ${ours.name} (pid ${ours.pid}${ours.daemon ? ', daemon' : ''})` });
    else if (await portIsFree(port, host)) checks.push({ name: `port ${port}`, status: 'ok', detail: `${name}: free on ${host}` });
    else checks.push({ name: `port ${port}`, status: 'fail', detail: `${name}: ${host}:${port} is taken by another program`, fix: `stop it (ss -ltnp 'sport = :${port}' or lsof -i :${port} shows which), or pick another port: connect reach ${name} --port <port>` });
  }
  return checks;
}

export async function doctor(ctx: Context): Promise<number> {
  const spin = progress(ctx.out, 'checking');
  const checks: Check[] = [];
  try {
    const { check, config } = await configCheck(ctx);
    checks.push(check);
    const hubUrl = config?.hubUrl ?? ctx.env.hubUrl;
    if (hubUrl) {
      spin.update(`asking ${hubUrl}`);
      checks.push(...(await hubChecks(ctx, hubUrl, config)));
    } else {
      checks.push({ name: 'hub', status: 'skip', detail: 'no hub URL (not enrolled, CONNECT_HUB_URL unset)' });
    }
    spin.update('checking local ports');
    checks.push(...(await portChecks(ctx)));
  } finally {
    spin.stop();
  }
  const ok = checks.every((c) => c.status !== 'fail');
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => `${MARK[c.status]()} ${c.name.padEnd(width)}  ${c.detail}${c.fix ? color.dim(`\n  ${' '.repeat(width)}  fix: ${c.fix}`) : ''}`);
  lines.push('', ok ? color.green('everything looks right') : color.red(`${checks.filter((c) => c.status === 'fail').length} problem(s) found`));
  ctx.out.result({ ok, checks }, lines.join('\n'));
  return ok ? 0 : 1;
}
