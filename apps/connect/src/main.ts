import { runCli } from './cli.js';

// Exit explicitly: a command is over once runCli resolves, even if a socket is still being torn down.
process.exit(await runCli(process.argv.slice(2)));
