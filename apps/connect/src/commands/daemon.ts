/**
 * `connect daemon install|uninstall|status|logs|reload|run`: keep this machine's services up across restarts and
 * reboots with systemd (Linux) or launchd (macOS). `run` is what the service manager starts (see daemon/run-daemon.ts).
 */

import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConnectError } from '@private-connect/protocol';
import { listRuns, readState, type RunRecord } from '@private-connect/sdk';
import { requireConfig, type Context } from '../context.js';
import { daemonLogPath, runningDaemon } from '../daemon/daemon-files.js';
import { launchdPlist, LAUNCHD_LABEL, serviceFilePath, systemdUnit, SYSTEMD_UNIT, type ServicePlatform, type ServiceScope } from '../daemon/service-files.js';
import { color, table } from '../output.js';
import { formatTraffic } from './status.js';

export interface DaemonOptions {
  user?: boolean;
  system?: boolean;
  /** Write under this folder instead of / and call neither systemctl nor launchctl (tests, packaging). */
  root?: string;
  /** false with --no-start: write the file only. */
  start?: boolean;
  /** linux or macos (default: this machine's). */
  platform?: string;
  /** A CA file the daemon must trust for the hub (--ca / CONNECT_CA_FILE), passed on as CONNECT_CA_FILE. */
  ca?: string;
}

function platformOf(options: DaemonOptions): ServicePlatform {
  const wanted = options.platform ?? (process.platform === 'darwin' ? 'macos' : process.platform);
  if (wanted === 'linux' || wanted === 'macos') return wanted;
  throw new ConnectError('BAD_REQUEST', `the daemon can be installed on Linux (systemd) and macOS (launchd), not on ${wanted}; run \`connect daemon run\` from your own service manager instead`);
}

function scopeOf(options: DaemonOptions): ServiceScope {
  if (options.user && options.system) throw new ConnectError('BAD_REQUEST', 'pick one of --user and --system');
  return options.system ? 'system' : 'user';
}

/** The absolute path of the running CLI's entry file (through npm's bin symlink to the real file). */
export function cliEntry(): string {
  const script = process.argv[1];
  if (!script) throw new ConnectError('INTERNAL', 'cannot tell where the connect CLI is installed');
  return realpathSync(script);
}

interface ToolResult {
  command: string;
  code: number | 'missing';
  output: string;
}

function runTool(command: string, args: string[]): Promise<ToolResult> {
  return new Promise((done) => {
    execFile(command, args, { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : typeof err.code === 'number' ? err.code : 1) : 0;
      done({ command: [command, ...args].join(' '), code, output: (stdout + stderr).trim() });
    });
  });
}

/** The commands that load (or unload) the service file, for running them or telling the person to. */
function managerCommands(platform: ServicePlatform, scope: ServiceScope, file: string, load: boolean): Array<[string, string[]]> {
  if (platform === 'linux') {
    const user = scope === 'user' ? ['--user'] : [];
    return load
      ? [['systemctl', [...user, 'daemon-reload']], ['systemctl', [...user, 'enable', '--now', SYSTEMD_UNIT]]]
      : [['systemctl', [...user, 'disable', '--now', SYSTEMD_UNIT]], ['systemctl', [...user, 'daemon-reload']]];
  }
  return load ? [['launchctl', ['load', '-w', file]]] : [['launchctl', ['unload', '-w', file]]];
}

/** Runs the commands in order, stopping at the first failure; 'missing' when the tool is not installed. */
async function runManager(commands: Array<[string, string[]]>): Promise<ToolResult[]> {
  const results: ToolResult[] = [];
  for (const [command, args] of commands) {
    const result = await runTool(command, args);
    results.push(result);
    if (result.code !== 0) break;
  }
  return results;
}

const shown = (commands: Array<[string, string[]]>) => commands.map(([c, a]) => [c, ...a].join(' '));

export async function daemonInstall(ctx: Context, options: DaemonOptions): Promise<number> {
  const platform = platformOf(options);
  const scope = scopeOf(options);
  const config = await requireConfig(ctx);
  const home = resolve(ctx.home);
  const env: Record<string, string> = { CONNECT_HOME: home, CONNECT_HUB_URL: config.hubUrl };
  if (ctx.env.allowInsecure) env.CONNECT_ALLOW_INSECURE = 'true';
  // CONNECT_DIRECT at install time holds for the daemon too (config.json's setting, connect up --no-direct, needs nothing).
  if (ctx.env.direct !== undefined) env.CONNECT_DIRECT = ctx.env.direct ? 'on' : 'off';
  if (options.ca) env.CONNECT_CA_FILE = resolve(options.ca);
  const spec = { node: process.execPath, entry: cliEntry(), env, home, ...(scope === 'system' && userInfo().uid !== 0 ? { user: userInfo().username } : {}) };
  const file = serviceFilePath(platform, scope, options.root ?? '/');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, platform === 'linux' ? systemdUnit(spec, scope) : launchdPlist(spec), { mode: 0o644 });

  const commands = managerCommands(platform, scope, file, true);
  const manual = options.root !== undefined || options.start === false;
  const results = manual ? [] : await runManager(commands);
  const started = results.length === commands.length && results.every((r) => r.code === 0);
  const failed = results.find((r) => r.code !== 0);
  const lines = [`${color.green('✓')} wrote ${file}`, color.dim(`  runs: ${spec.node} ${spec.entry} daemon run   (CONNECT_HOME=${home})`)];
  if (started) lines.push(`${color.green('✓')} started: ${shown(commands).join(' && ')}`);
  else if (failed?.code === 'missing') lines.push(`${color.yellow('!')} ${failed.command.split(' ')[0]} is not on this machine; start \`${spec.node} ${spec.entry} daemon run\` from your service manager`);
  else if (failed) lines.push(`${color.red('✗')} ${failed.command} failed (${failed.code}): ${failed.output.split('\n')[0]}; fix that, then run: ${shown(commands).join(' && ')}`);
  else lines.push(`  start it with: ${shown(commands).join(' && ')}`);
  if (platform === 'linux' && scope === 'user') lines.push(color.dim(`  to start at boot without logging in: loginctl enable-linger ${userInfo().username}`));
  lines.push(color.dim('  see it with: connect daemon status   ·   logs: connect daemon logs -f'));
  ctx.out.result({ installed: true, platform, scope, file, entry: spec.entry, env, started, commands: shown(commands), ...(failed ? { error: failed } : {}) }, lines.join('\n'));
  return failed && failed.code !== 'missing' ? 1 : 0;
}

export async function daemonUninstall(ctx: Context, options: DaemonOptions): Promise<number> {
  const platform = platformOf(options);
  const scopes: ServiceScope[] = options.system ? ['system'] : options.user ? ['user'] : ['user', 'system'];
  const removed: string[] = [];
  for (const scope of scopes) {
    const file = serviceFilePath(platform, scope, options.root ?? '/');
    if (!existsSync(file)) continue;
    // Stop it first; a failure (not loaded, no systemctl) does not keep the file.
    if (options.root === undefined) await runManager(managerCommands(platform, scope, file, false).slice(0, 1));
    await rm(file, { force: true });
    if (options.root === undefined && platform === 'linux') await runTool('systemctl', [...(scope === 'user' ? ['--user'] : []), 'daemon-reload']);
    removed.push(file);
  }
  ctx.out.result(
    { removed },
    removed.length === 0 ? 'no daemon is installed (nothing to remove)' : removed.map((f) => `${color.green('✓')} stopped and removed ${f}`).join('\n') + color.dim(`\n  remembered services stay in ${ctx.home}/state.json`),
  );
  return 0;
}

export async function daemonStatus(ctx: Context, options: DaemonOptions): Promise<number> {
  const platform = platformOf(options);
  const installed = (['user', 'system'] as const)
    .map((scope) => ({ scope, file: serviceFilePath(platform, scope, options.root ?? '/') }))
    .filter((s) => existsSync(s.file));
  const daemon = await runningDaemon(ctx.home);
  let manager: string | undefined;
  if (options.root === undefined && platform === 'linux' && installed[0]) {
    const result = await runTool('systemctl', [...(installed[0].scope === 'user' ? ['--user'] : []), 'is-active', SYSTEMD_UNIT]);
    if (result.code !== 'missing') manager = result.output || 'unknown';
  }
  const running = manager !== undefined ? manager === 'active' || daemon !== undefined : daemon !== undefined;
  const services = daemon ? (await listRuns(ctx.home)).filter((r) => r.daemon && r.pid === daemon.pid) : [];
  const remembered = (await readState(ctx.home)).services;
  const lines = [
    `installed  ${installed.length ? installed.map((s) => `${color.green('yes')} (${s.scope}: ${s.file})`).join(', ') : `${color.dim('no')}   install with: connect daemon install`}`,
    `running    ${running ? color.green(`yes${daemon ? ` (pid ${daemon.pid}, since ${daemon.startedAt.slice(0, 19).replace('T', ' ')} UTC)` : ''}`) : color.dim('no')}${manager !== undefined ? color.dim(`   systemctl: ${manager}`) : ''}`,
    `log        ${daemonLogPath(ctx.home)}`,
    '',
    services.length
      ? table(['SERVICE', 'KIND', 'DETAIL', 'STATE', 'TRAFFIC'], services.map((r) => [r.name, r.command, detailOf(r), r.state ?? '', formatTraffic(r.traffic)]))
      : remembered.length
        ? `remembered (restored when the daemon runs): ${remembered.map((e) => `${e.kind} ${e.name}`).join(', ')}`
        : 'no remembered services yet: connect expose ... or connect reach ... adds them',
  ];
  ctx.out.result({ installed: installed.length > 0, files: installed, running, pid: daemon?.pid, systemctl: manager, log: daemonLogPath(ctx.home), services, remembered }, lines.join('\n'));
  return 0;
}

const detailOf = (r: RunRecord) => (r.command === 'reach' ? `${r.host ?? '127.0.0.1'}:${r.port}` : (r.target ?? ''));

/** Asks the running daemon to re-read state.json (SIGHUP); false when no daemon runs. */
export async function signalDaemonReload(home: string): Promise<boolean> {
  const daemon = await runningDaemon(home);
  if (!daemon) return false;
  process.kill(daemon.pid, 'SIGHUP');
  return true;
}

export async function daemonReload(ctx: Context): Promise<number> {
  if (!(await signalDaemonReload(ctx.home))) throw new ConnectError('BAD_REQUEST', `no daemon runs for ${ctx.home}; start it with: connect daemon install`);
  ctx.out.result({ reloaded: true }, `${color.green('✓')} the daemon re-reads ${ctx.home}/state.json`);
  return 0;
}

export interface LogsOptions {
  follow?: boolean;
  lines?: string;
}

/** The most lines `connect daemon logs -n` prints. */
export const MAX_LOG_LINES = 100_000;

export async function daemonLogs(ctx: Context, options: LogsOptions): Promise<number> {
  const count = Number(options.lines ?? '50');
  if (!Number.isInteger(count) || count < 0 || count > MAX_LOG_LINES) throw new ConnectError('BAD_REQUEST', `-n must be a whole number from 0 to ${MAX_LOG_LINES}, got "${options.lines}"`);
  const file = daemonLogPath(ctx.home);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    if (!options.follow) throw new ConnectError('NOT_FOUND', `no daemon log yet (${file}); start the daemon with: connect daemon install`);
    text = '';
  }
  const all = text.split('\n').filter(Boolean);
  for (const line of count === 0 ? [] : all.slice(-count)) printLogLine(ctx, line);
  if (!options.follow) return 0;
  await follow(ctx, file, Buffer.byteLength(text));
  return 0;
}

/** Prints what is appended to `file` from `offset` on until Ctrl-C; starts over when the log was rotated. */
async function follow(ctx: Context, file: string, offset: number): Promise<void> {
  let position = offset;
  let rest = '';
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (true) {
      const size = await stat(file).then((s) => s.size, () => 0);
      if (size < position) position = 0;
      if (size > position) {
        const handle = await open(file, 'r');
        const buffer = Buffer.alloc(size - position);
        await handle.read(buffer, 0, buffer.length, position);
        await handle.close();
        position = size;
        const lines = (rest + buffer.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines.filter(Boolean)) printLogLine(ctx, line);
      }
      if (await Promise.race([stopped.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 500))])) return;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** A daemon.log line as is with --json, else `time  type  name  message`. */
function printLogLine(ctx: Context, line: string): void {
  if (ctx.out.json) return void process.stdout.write(line + '\n');
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    const name = typeof value.name === 'string' ? value.name : ((value.service as { name?: string } | undefined)?.name ?? '');
    const text = [String(value.time ?? '').slice(0, 19).replace('T', ' '), String(value.type ?? ''), name, typeof value.message === 'string' ? value.message : '']
      .filter(Boolean)
      .join('  ');
    process.stdout.write((value.type === 'restore_failed' || value.type === 'fatal' ? color.red(text) : text) + '\n');
  } catch {
    process.stdout.write(line + '\n');
  }
}
