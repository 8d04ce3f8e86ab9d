/** The `connect` command line: parses arguments with commander and runs one command. */

import { Command, CommanderError, Option } from 'commander';
import { ConnectError } from '@private-connect/protocol';
import { createContext, type Context, type GlobalOptions } from './context.js';
import { readEnv } from './env.js';
import { loadHubCa } from './hub-ca.js';
import { createOutput, type Output } from './output.js';
import { down } from './commands/down.js';
import { trust } from './commands/trust.js';
import { completion } from './commands/completion.js';
import { daemonInstall, daemonLogs, daemonReload, daemonStatus, daemonUninstall, type DaemonOptions, type LogsOptions } from './commands/daemon.js';
import { doctor } from './commands/doctor.js';
import { runDaemon } from './daemon/run-daemon.js';
import { expose, type ExposeOptions } from './commands/expose.js';
import { list } from './commands/list.js';
import { reach, type ReachOptions } from './commands/reach.js';
import { status } from './commands/status.js';
import { up, type UpOptions } from './commands/up.js';
import { audit, type AuditOptions } from './commands/audit.js';
import { share, shareList, shareRevoke, type ShareOptions } from './commands/share.js';
import { join, type JoinOptions } from './commands/join.js';
import { createLinkCommand, listLinksCommand, revokeLinkCommand, type LinkOptions } from './commands/link.js';
import { listInvitations, revokeInvitationCommand } from './commands/invitations.js';
import type { HubApiOptions } from './hub-api.js';
import type { DirectFlags } from './direct-setting.js';

export const VERSION = '0.1.0';
const COMMANDS = new Set(['audit', 'invitations', 'link', 'share', 'join', 'up', 'expose', 'reach', 'ls', 'list', 'status', 'down', 'help', 'daemon', 'doctor', 'completion']);

/**
 * `connect localhost:5432` is short for `connect expose localhost:5432` with a name chosen from the port.
 * The first argument that is not an option decides: a known command stays, a host:port or bare port is exposed.
 */
export function rewriteShorthand(args: string[]): string[] {
  const first = args.findIndex((a) => !a.startsWith('-'));
  if (first < 0) return args;
  // `--config DIR` and `--ca FILE` take a value; skip it when looking for the first positional argument.
  const index = args[first - 1] === '--config' || args[first - 1] === '--ca' ? args.findIndex((a, i) => i > first && !a.startsWith('-')) : first;
  const word = index >= 0 ? args[index]! : undefined;
  if (word === undefined || COMMANDS.has(word)) return args;
  if (/^(\[[0-9a-fA-F:.]+\]|[^:\s]+)?:?\d{1,5}$/.test(word)) return [...args.slice(0, index), 'expose', ...args.slice(index)];
  return args;
}

/** Runs the CLI with `argv` (without node and the script) and resolves to the exit code. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let out: Output = createOutput(argv.includes('--json'), argv.includes('--debug'));
  let exitCode = 0;
  const program = new Command('connect')
    .description('Expose services from this machine and reach services of your workspace, through your hub.')
    .version(VERSION, '-v, --version')
    .option('--config <dir>', 'config folder (default: $CONNECT_HOME or ~/.connect)')
    .option('--json', 'print JSON lines instead of text')
    .option('--debug', 'print stack traces of errors')
    .option('--ca <file>', 'also trust this CA certificate (PEM) for the hub (default: $CONNECT_CA_FILE)')
    .showHelpAfterError('(run connect --help for the commands)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  const action =
    <A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      const globals = program.opts<GlobalOptions>();
      out = createOutput(globals.json === true, globals.debug === true);
      const cliEnv = readEnv(env);
      await loadHubCa(globals.ca ?? cliEnv.caFile);
      exitCode = await fn(createContext(out, cliEnv, globals), ...args);
    };

  program
    .command('up')
    .description('connect this machine to a hub: trade an API key for an agent token (or check the connection)')
    .option('--hub <url>', 'hub URL, e.g. https://hub.example.com (default: $CONNECT_HUB_URL); several hubs of one deployment: a,b,c (the agent moves to the next when one is lost)')
    .option('--api-key <key>', 'API key from the hub (pc_...)')
    .option('--label <label>', 'name of this machine in the workspace (default: hostname)')
    .option('--rotate-token', 'replace this agent\'s token now; the old one keeps working for 24 hours')
    .option('--device', 'enrol by device code even without a terminal: print the code, wait for a member to approve it in a browser')
    .option('--direct', 'direct paths between agents on again for this config folder (the default)')
    .option('--no-direct', 'remember in config.json: the agents of this config folder take no direct paths, everything goes through the hub')
    .option('--direct-port <port>', 'remember in config.json: the TCP port exposing agents here take direct connections on (e.g. one opened in a firewall)')
    .action(action((ctx, options: UpOptions) => up(ctx, options)));

  program
    .command('audit')
    .description('show the workspace\'s audit log, newest first')
    .option('--limit <n>', 'how many events (1-500)', '50')
    .option('--type <type>', 'only events about this kind of object (agent, service, api_key, tunnel, ...)')
    .option('--action <action>', 'only this action, e.g. agent.ip_changed')
    .option('--hub <url>', 'hub URL (default: the enrolled hub)')
    .option('--api-key <key>', 'API key of the workspace (pc_...); reading the audit log needs one')
    .action(action((ctx, options: AuditOptions) => audit(ctx, options)));

  // --hub and --api-key belong to `link` and are read by its subcommands too (`connect link ls --api-key ...`).
  const link = program
    .command('link')
    .description('a public URL for an HTTP service, served by the hub; no login: the URL is the key')
    .argument('<service>', 'service name')
    .option('--expires <duration>', 'lifetime: 30m, 12h, 7d, 2w, at most 365d (default 7d)')
    .option('--methods <list>', 'allowed HTTP methods, e.g. GET,HEAD (default: any)')
    .option('--paths <list>', 'allowed path prefixes, e.g. /api/v1,/health (default: any)')
    .option('--rate <n>', 'requests per minute over the whole link (default: no limit)')
    .option('--hub <url>', 'hub URL (default: the enrolled hub)')
    .option('--api-key <key>', 'API key of the workspace (pc_...) instead of this machine\'s agent token')
    .action(action((ctx, service: string, options: LinkOptions) => createLinkCommand(ctx, service, options)));
  link
    .command('ls')
    .description('list the workspace\'s public links')
    .action(action((ctx) => listLinksCommand(ctx, link.opts<LinkOptions>())));
  link
    .command('revoke')
    .description('revoke a public link: it answers 410 from now on and its open requests end')
    .argument('<id>', 'the link id (connect link ls)')
    .action(action((ctx, id: string) => revokeLinkCommand(ctx, id, link.opts<LinkOptions>())));

  program
    .command('expose')
    .description('make a local TCP service reachable by name in your workspace; runs until Ctrl-C')
    .argument('<host:port>', 'the service, e.g. localhost:5432 or 5432')
    .option('-n, --name <name>', 'service name (default: from the port, e.g. 5432 → postgres)')
    .option('--replace', 'take the name over from another agent of the workspace')
    .option('--http', 'the service speaks HTTP (shares can then limit methods and paths)')
    .option('--hub-port', 'also give it a TCP port on the hub, for clients that run no agent')
    .option('--check-interval <seconds>', 'how often to check the target and report its health to the hub (default 30; 0: never)')
    .option('--no-e2e', 'also serve plaintext streams to agents that reach it with --no-e2e (end-to-end encryption is on by default)')
    .option('--direct', 'take direct connections from reaching agents even when CONNECT_DIRECT=off or connect up --no-direct says otherwise')
    .option('--no-direct', 'take no direct connections: every stream comes through the hub (default: on, unless CONNECT_DIRECT=off)')
    .option('--direct-port <port>', 'the TCP port reaching agents connect to directly, e.g. one opened in a firewall (docs/direct.md)')
    .addHelpText('after', '\nShorthand: connect localhost:5432  is  connect expose localhost:5432 --name postgres')
    .action(action((ctx, target: string, options: ExposeOptions) => expose(ctx, target, options)));

  program
    .command('reach')
    .description('listen on a local port that leads to a service of your workspace; runs until Ctrl-C')
    .argument('<name>', 'service name')
    .option('-p, --port <port>', 'local port (default: the port this service had last time, else its own port)')
    .addOption(new Option('--host <address>', 'local address to listen on').default('127.0.0.1'))
    .option('--check', 'check the service end to end (DNS, TCP, TLS, HTTP, latency) and exit: 0 when all checks pass')
    .option('--no-e2e', 'accept plaintext streams when the exposing agent also runs with --no-e2e (end-to-end encryption is on by default)')
    .option('--direct', 'connect to the exposing agent directly when it can be reached, even when CONNECT_DIRECT=off or connect up --no-direct says otherwise')
    .option('--no-direct', 'send every stream through the hub, never directly to the exposing agent (default: direct when possible, unless CONNECT_DIRECT=off)')
    .action(action((ctx, name: string, options: ReachOptions) => reach(ctx, name, options)));

  program
    .command('trust')
    .description('list the identity keys of exposing agents pinned here, or forget one agent\'s pin after its key changed for a reason you know')
    .argument('[agent]', 'agent label, agent id or service name')
    .action(action((ctx, who?: string) => trust(ctx, who)));

  program
    .command('ls')
    .alias('list')
    .description('list the services of your workspace')
    .action(action((ctx) => list(ctx)));

  const hubOptions = (command: Command) =>
    command.option('--hub <url>', 'hub URL (default: the enrolled hub)').option('--api-key <key>', 'API key of the workspace (pc_...) instead of this machine\'s agent token');
  const shareCommand = hubOptions(
    program
      .command('share')
      .description('share services with ONE other workspace: prints a code it joins with (connect join); see also share ls, share revoke')
      .argument('[services...]', 'services of this workspace to share')
      .option('--name <name>', 'the share\'s name: the other workspace reaches NAME/SERVICE')
      .option('--expires <duration>', 'how long the share lasts: 30m, 12h, 7d, 2w', '7d')
      .option('--methods <list>', 'HTTP services only: allowed methods, e.g. GET,POST')
      .option('--paths <list>', 'HTTP services only: allowed path prefixes, e.g. /api/v1')
      .option('--rate <n>', 'requests (HTTP) or new connections (TCP) per minute over the whole share'),
  ).action(action((ctx, services: string[], options: ShareOptions) => share(ctx, services, options)));
  hubOptions(shareCommand.command('ls').alias('list').description('the shares this workspace made and joined')).action(
    // `share ls --hub X`: commander gives options the parent knows to the parent; both are read.
    action((ctx, options: ShareOptions) => shareList(ctx, { ...shareCommand.opts<ShareOptions>(), ...options })),
  );
  hubOptions(shareCommand.command('revoke').description('end a share now: its open connections are closed').argument('<id>', 'share id (or its name)')).action(
    action((ctx, id: string, options: ShareOptions) => shareRevoke(ctx, id, { ...shareCommand.opts<ShareOptions>(), ...options })),
  );

  const invitations = hubOptions(
    program
      .command('invitations')
      .description('the workspace\'s pending invitations (needs an API key or an admin); see also invitations revoke'),
  ).action(action((ctx, options: HubApiOptions) => listInvitations(ctx, options)));
  hubOptions(invitations.command('ls').alias('list').description('the pending invitations (the same as connect invitations)')).action(
    action((ctx, options: HubApiOptions) => listInvitations(ctx, { ...invitations.opts<HubApiOptions>(), ...options })),
  );
  hubOptions(
    invitations
      .command('revoke')
      .description('withdraw a pending invitation: its link is refused from now on')
      .argument('<invitation>', 'the invitation id (connect invitations), or an email address: all its pending invitations'),
  ).action(action((ctx, ref: string, options: HubApiOptions) => revokeInvitationCommand(ctx, ref, { ...invitations.opts<HubApiOptions>(), ...options })));

  hubOptions(
    program
      .command('join')
      .description('join another workspace\'s share with its code; reach its services as ALIAS/SERVICE')
      .argument('<code>', 'the share code (pcs_...)')
      .option('--as <alias>', 'the name to reach the share by (default: the share\'s name)'),
  ).action(action((ctx, code: string, options: JoinOptions) => join(ctx, code, options)));

  program
    .command('status')
    .description('show this machine’s enrolment, the hub connection and what runs here')
    .action(action((ctx) => status(ctx)));

  program
    .command('down')
    .description('stop the expose and reach processes of this config folder (all, or one service\'s) and forget them, so the daemon does not bring them back')
    .argument('[name]', 'only this service')
    .action(action((ctx, name?: string) => down(ctx, name)));

  program
    .command('doctor')
    .description('check the config, the hub (reachable, latency), the token\'s expiry, the clock and the remembered ports; exit 1 on a problem')
    .action(action((ctx) => doctor(ctx)));

  program
    .command('completion')
    .description('print a shell completion script: source <(connect completion bash)')
    .argument('<shell>', 'bash, zsh or fish')
    .action(action((ctx, shell: string) => completion(ctx, shell, program)));

  const daemon = program
    .command('daemon')
    .description('keep the services of this machine up across restarts and reboots (systemd on Linux, launchd on macOS)');
  const scopeOptions = (command: Command) =>
    command
      .option('--user', 'for the current user (the default): ~/.config/systemd/user or ~/Library/LaunchAgents')
      .option('--system', 'for the whole machine: /etc/systemd/system or /Library/LaunchDaemons (needs root)')
      .option('--root <dir>', 'write under this folder instead of /, and call neither systemctl nor launchctl')
      .addOption(new Option('--platform <os>', 'linux or macos (default: this machine\'s)').choices(['linux', 'macos']));
  scopeOptions(daemon.command('install').description('write the systemd unit or launchd plist and start it'))
    .option('--no-start', 'only write the file; print the commands that start it')
    .action(action((ctx, options: DaemonOptions) => daemonInstall(ctx, { ...options, ca: program.opts<GlobalOptions>().ca ?? ctx.env.caFile })));
  scopeOptions(daemon.command('uninstall').description('stop the daemon and remove its unit or plist (state.json stays)')).action(
    action((ctx, options: DaemonOptions) => daemonUninstall(ctx, options)),
  );
  scopeOptions(daemon.command('status').description('installed or not, running or not, and the services it runs')).action(
    action((ctx, options: DaemonOptions) => daemonStatus(ctx, options)),
  );
  daemon
    .command('logs')
    .description('print the daemon\'s log (daemon.log in the config folder)')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many of the last lines', '50')
    .action(action((ctx, options: LogsOptions) => daemonLogs(ctx, options)));
  daemon
    .command('reload')
    .description('make the running daemon re-read state.json now')
    .action(action((ctx) => daemonReload(ctx)));
  daemon
    .command('run')
    .description('run the daemon in the foreground (what systemd and launchd start)')
    .option('--direct', 'take direct paths even when CONNECT_DIRECT=off or connect up --no-direct says otherwise')
    .option('--no-direct', 'no direct port, and reaches send every stream through the hub (default: config.json, see connect up --no-direct)')
    .option('--direct-port <port>', 'the TCP port the daemon takes direct connections on (default: config.json\'s, see connect up --direct-port)')
    .action(action((ctx, options: DirectFlags) => runDaemon(ctx, options)));

  try {
    await program.parseAsync(rewriteShorthand(argv), { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    out.error(err instanceof ConnectError || err instanceof Error ? err : new Error(String(err)));
    return 1;
  }
}
