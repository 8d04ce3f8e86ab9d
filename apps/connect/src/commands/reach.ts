/**
 * `connect reach <name> [--port N]`: listen locally; every connection goes to the service through the hub. The name
 * is a service of the workspace, or `<share>/<service>` for a service another workspace shared (connect join).
 * `connect reach <name> --check` instead checks the service end to end (DNS, TCP, TLS, HTTP, latency) and exits.
 */

import { ConnectError, parseReachName, type HealthCheck } from '@private-connect/protocol';
import { distance } from 'fastest-levenshtein';
import { Agent, ApiClient, checkService, listRuns, type RunRecord, type ServiceCheckReport } from '@private-connect/sdk';
import { requireConfig, type Context } from '../context.js';
import { color, withProgress } from '../output.js';
import { agentOptions, runAgent } from '../run-agent.js';
import { parseDirectFlags, resolveDirect, type DirectChoice } from '../direct-setting.js';

export interface ReachOptions {
  port?: string;
  host?: string;
  /** Check the service and exit (0: every check passed, 1: one failed). */
  check?: boolean;
  /** false with --no-e2e: plaintext when the exposing agent also runs with --no-e2e. */
  e2e?: boolean;
  /** false with --no-direct: every stream through the hub; true with --direct: try direct even when CONNECT_DIRECT=off. */
  direct?: boolean;
}

export async function reach(ctx: Context, name: string, options: ReachOptions): Promise<number> {
  parseReachName(name);
  const direct = parseDirectFlags({ direct: options.direct });
  if (options.check) return reachCheck(ctx, name, direct);
  let port: number | undefined;
  if (options.port !== undefined) {
    port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConnectError('BAD_REQUEST', `--port must be 0-65535, got "${options.port}"`);
  }
  const running = (await listRuns(ctx.home)).find((r) => r.command === 'reach' && r.name === name);
  return runAgent(ctx, { command: 'reach', name }, async (agent) => {
    try {
      if (running) {
        // What the hub says of the name comes first (not found, share revoked or expired), then the local refusal.
        await agent.connection.request('resolve', { name });
        throw alreadyReached(name, running);
      }
      const reached = await agent.reach(name, { port, host: options.host });
      return { port: reached.port };
    } catch (err) {
      throw err instanceof ConnectError && err.code === 'SERVICE_NOT_FOUND' ? await notFoundWithHint(ctx, name, err) : err;
    }
  }, { allowPlaintext: options.e2e === false, direct });
}

/**
 * A second `connect reach NAME` from the same config folder would open a second local port for the same service and
 * leave the person to find out which one the first process holds: refuse it, like `ngrok` refuses a second session of
 * one endpoint, and say where the service already listens.
 */
function alreadyReached(name: string, running: RunRecord): ConnectError {
  const where = `${running.host ?? '127.0.0.1'}:${running.port}`;
  const who = running.daemon ? `the daemon, process ${running.pid}` : `connect reach in process ${running.pid}`;
  return new ConnectError(
    'ALREADY_REACHED',
    `${name} is already reachable on ${where} (${who}); connect to that address, or stop it first with: connect down ${name}`,
  );
}

/** The name one could have meant: the closest by edit distance, at most 3 edits and a third of the name's length away. */
export function suggestName(wanted: string, names: string[]): string | undefined {
  const most = Math.min(3, Math.ceil(wanted.length / 3));
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const d = distance(wanted, name);
    if (d > 0 && d <= most && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

/** "Service not found: prod-dbb; did you mean prod-db? connect ls lists ...": from the services and joined shares' names. */
async function notFoundWithHint(ctx: Context, name: string, err: ConnectError): Promise<ConnectError> {
  const config = await requireConfig(ctx);
  const api = new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure });
  const names = await Promise.all([api.services(), api.shares()])
    .then(([services, shares]) => [
      ...services.map((s) => s.name),
      ...shares.joined.filter((s) => s.state === 'joined').flatMap((s) => s.services.map((service) => `${s.alias}/${service}`)),
    ])
    .catch(() => [] as string[]);
  const close = suggestName(name, names);
  return new ConnectError(err.code, `${err.message}; ${close ? `did you mean ${close}? ` : ''}connect ls lists the services you can reach`);
}

/** `--check`: one line per check, ✓ or ✗, with what to do when it failed; `--json` prints the report. */
async function reachCheck(ctx: Context, name: string, direct: DirectChoice): Promise<number> {
  const config = await requireConfig(ctx);
  // The same identity, pins and credentials as `connect reach`, with a short reconnect backoff: a check does not wait.
  const agent = new Agent({ ...agentOptions(ctx, config, () => undefined, resolveDirect(direct, ctx.env, config, 'reach')), backoff: { initialMs: 250, maxMs: 2000 } });
  const api = new ApiClient({ hubUrl: config.hubUrl, credential: config.token, allowInsecure: ctx.env.allowInsecure });
  try {
    const report = await withProgress(ctx.out, `checking ${name}`, () => checkService(agent, name, { hubUrl: config.hubUrl, api }));
    ctx.out.result(report, formatCheckReport(report));
    return report.ok ? 0 : 1;
  } finally {
    await agent.close();
  }
}

const LABELS: Record<string, string> = { dns: 'DNS', tcp: 'TCP', tls: 'TLS', http: 'HTTP', latency: 'Latency' };

/** The report for people: `✓ TCP  detail`, a `→ hint` line under a check that has one, and a summary. */
export function formatCheckReport(report: ServiceCheckReport): string {
  const width = Math.max(...report.checks.map((c) => label(c).length));
  const lines = report.checks.flatMap((check) => {
    const mark = check.ok ? color.green('✓') : color.red('✗');
    const line = `${mark} ${color.bold(label(check).padEnd(width))}  ${check.detail}`;
    const hint = check.hint ? [`  ${' '.repeat(width)}  ${check.ok ? color.dim(`→ ${check.hint}`) : color.yellow(`→ ${check.hint}`)}`] : [];
    return [line, ...hint];
  });
  const failed = report.checks.filter((c) => !c.ok).length;
  const summary = failed === 0 ? color.green(`${report.service}: all ${report.checks.length} checks passed`) : color.red(`${report.service}: ${failed} of ${report.checks.length} checks failed`);
  return [...lines, summary].join('\n');
}

function label(check: HealthCheck): string {
  return LABELS[check.name] ?? check.name.toUpperCase();
}
