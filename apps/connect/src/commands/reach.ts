/**
 * `connect reach <name> [--port N]`: listen locally; every connection goes to the service through the hub. The name
 * is a service of the workspace, or `<share>/<service>` for a service another workspace shared (connect join).
 * `connect reach <name> --check` instead checks the service end to end (DNS, TCP, TLS, HTTP, latency) and exits.
 */

import { ConnectError, parseReachName, type HealthCheck } from '@private-connect/protocol';
import { Agent, ApiClient, checkService, type ServiceCheckReport } from '@private-connect/sdk';
import { requireConfig, type Context } from '../context.js';
import { color, withProgress } from '../output.js';
import { agentOptions, runAgent } from '../run-agent.js';

export interface ReachOptions {
  port?: string;
  host?: string;
  /** Check the service and exit (0: every check passed, 1: one failed). */
  check?: boolean;
  /** false with --no-e2e: plaintext when the exposing agent also runs with --no-e2e. */
  e2e?: boolean;
}

export async function reach(ctx: Context, name: string, options: ReachOptions): Promise<number> {
  parseReachName(name);
  if (options.check) return reachCheck(ctx, name);
  let port: number | undefined;
  if (options.port !== undefined) {
    port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConnectError('BAD_REQUEST', `--port must be 0-65535, got "${options.port}"`);
  }
  return runAgent(ctx, { command: 'reach', name }, async (agent) => {
    const reached = await agent.reach(name, { port, host: options.host });
    return { port: reached.port };
  }, { allowPlaintext: options.e2e === false });
}

/** `--check`: one line per check, ✓ or ✗, with what to do when it failed; `--json` prints the report. */
async function reachCheck(ctx: Context, name: string): Promise<number> {
  const config = await requireConfig(ctx);
  // The same identity, pins and credentials as `connect reach`, with a short reconnect backoff: a check does not wait.
  const agent = new Agent({ ...agentOptions(ctx, config, () => undefined), backoff: { initialMs: 250, maxMs: 2000 } });
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
