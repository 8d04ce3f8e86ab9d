import { runCli } from './cli.js';

// An error no command caught (a library's late socket error, say) is still one line with no stack, unless --debug.
const debug = process.argv.includes('--debug');
const last = (err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error: ${debug ? message : (message.split('\n')[0] ?? '')} (INTERNAL); run again with --debug for details\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  process.exit(1);
};
process.on('uncaughtException', last);
process.on('unhandledRejection', last);

// Exit explicitly: a command is over once runCli resolves, even if a socket is still being torn down.
process.exit(await runCli(process.argv.slice(2)));
