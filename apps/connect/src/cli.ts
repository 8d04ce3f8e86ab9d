/** The `connect` command line: parses arguments with commander and runs one command. */

import { Command, CommanderError, Option } from 'commander';
import { ConnectError } from '@private-connect/protocol';
import { createContext, type Context, type GlobalOptions } from './context.js';
import { readEnv } from './env.js';
import { createOutput, type Output } from './output.js';
import { down } from './commands/down.js';
import { expose, type ExposeOptions } from './commands/expose.js';
import { list } from './commands/list.js';
import { reach } from './commands/reach.js';
import { status } from './commands/status.js';
import { up } from './commands/up.js';
import { audit, type AuditOptions } from './commands/audit.js';

export const VERSION = '0.1.0';
const COMMANDS = new Set(['audit', 'up', 'expose', 'reach', 'ls', 'list', 'status', 'down', 'help']);

/**
 * `connect localhost:5432` is short for `connect expose localhost:5432` with a name chosen from the port.
 * The first argument that is not an option decides: a known command stays, a host:port or bare port is exposed.
 */
export function rewriteShorthand(args: string[]): string[] {
  const first = args.findIndex((a) => !a.startsWith('-'));
  if (first < 0) return args;
  // `--config DIR` takes a value; skip it when looking for the first positional argument.
  const index = args[first - 1] === '--config' ? args.findIndex((a, i) => i > first && !a.startsWith('-')) : first;
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
    .showHelpAfterError('(run connect --help for the commands)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  const action =
    <A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      const globals = program.opts<GlobalOptions>();
      out = createOutput(globals.json === true, globals.debug === true);
      exitCode = await fn(createContext(out, readEnv(env), globals), ...args);
    };

  program
    .command('up')
    .description('connect this machine to a hub: trade an API key for an agent token (or check the connection)')
    .option('--hub <url>', 'hub URL, e.g. https://hub.example.com (default: $CONNECT_HUB_URL)')
    .option('--api-key <key>', 'API key from the hub (pc_...)')
    .option('--label <label>', 'name of this machine in the workspace (default: hostname)')
    .option('--rotate-token', 'replace this agent\'s token now; the old one keeps working for 24 hours')
    .action(action((ctx, options: { hub?: string; apiKey?: string; label?: string; rotateToken?: boolean }) => up(ctx, options)));

  program
    .command('audit')
    .description('show the workspace\'s audit log, newest first')
    .option('--limit <n>', 'how many events (1-500)', '50')
    .option('--type <type>', 'only events about this kind of object (agent, service, api_key, tunnel, ...)')
    .option('--action <action>', 'only this action, e.g. agent.ip_changed')
    .option('--hub <url>', 'hub URL (default: the enrolled hub)')
    .option('--api-key <key>', 'API key of the workspace (pc_...); reading the audit log needs one')
    .action(action((ctx, options: AuditOptions) => audit(ctx, options)));

  program
    .command('expose')
    .description('make a local TCP service reachable by name in your workspace; runs until Ctrl-C')
    .argument('<host:port>', 'the service, e.g. localhost:5432 or 5432')
    .option('-n, --name <name>', 'service name (default: from the port, e.g. 5432 → postgres)')
    .option('--replace', 'take the name over from another agent of the workspace')
    .option('--http', 'the service speaks HTTP (shares can then limit methods and paths)')
    .option('--hub-port', 'also give it a TCP port on the hub, for clients that run no agent')
    .addHelpText('after', '\nShorthand: connect localhost:5432  is  connect expose localhost:5432 --name postgres')
    .action(action((ctx, target: string, options: ExposeOptions) => expose(ctx, target, options)));

  program
    .command('reach')
    .description('listen on a local port that leads to a service of your workspace; runs until Ctrl-C')
    .argument('<name>', 'service name')
    .option('-p, --port <port>', 'local port (default: the port this service had last time, else its own port)')
    .addOption(new Option('--host <address>', 'local address to listen on').default('127.0.0.1'))
    .action(action((ctx, name: string, options: { port?: string; host?: string }) => reach(ctx, name, options)));

  program
    .command('ls')
    .alias('list')
    .description('list the services of your workspace')
    .action(action((ctx) => list(ctx)));

  program
    .command('status')
    .description('show this machine’s enrolment, the hub connection and what runs here')
    .action(action((ctx) => status(ctx)));

  program
    .command('down')
    .description('stop the expose and reach processes started from this config folder')
    .action(action((ctx) => down(ctx)));

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
