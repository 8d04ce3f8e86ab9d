/**
 * `connect-hub` (node apps/hub/dist/src/main.js, the bin, the container): start-up settings for V8 first
 * (startup-gc.ts), then the command. The rest is imported dynamically so that those settings are in force while its
 * modules load.
 */

import './startup-gc.js';

await import('./hub-command.js');
