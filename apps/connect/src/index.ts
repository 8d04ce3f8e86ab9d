export { runCli, rewriteShorthand, VERSION } from './cli.js';
