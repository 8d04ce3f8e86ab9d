/** `connect-hub`, loaded by main.ts: reads the environment and starts the hub. Everything else lives in startHub(). */

import { startupDone } from './startup-gc.js';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError, type HubConfig } from './config.js';
import { openDatabase } from './db/index.js';
import { startHub } from './hub.js';
import { createApiKey } from './store/bootstrap.js';
import { listAllWorkspaces } from './store/members.js';
import { printWelcome } from './welcome.js';
import { runOwnerCommand } from './operator-commands.js';

/** Time past the grace period after which a shutdown that hangs ends the process anyway. */
const FORCE_EXIT_AFTER_GRACE_MS = 10_000;

const USAGE = `usage: connect-hub                      start the hub (configured by HUB_* and DATABASE_URL)
       connect-hub create-api-key [--workspace <id>] [--name <name>]
                                       print a new API key
       connect-hub make-owner <email> [--workspace <id|name>]
                                       make that address owner of a workspace (default: the first one)
       connect-hub setup-link [--workspace <id|name>]
                                       print a new one-time setup link (default: the first workspace)
With the embedded database (no DATABASE_URL) stop the hub before running a command: it has one user at a time.`;

const COMMANDS = new Set(['create-api-key', 'make-owner', 'setup-link']);

/** Operator command: a new API key for a workspace, for when the bootstrap key is lost. */
async function createApiKeyCommand(config: HubConfig, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { workspace: { type: 'string' }, name: { type: 'string', default: 'created by connect-hub' } } });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const workspaces = await listAllWorkspaces(db);
    const workspace = values.workspace ? workspaces.find((w) => w.id === values.workspace) : workspaces.length === 1 ? workspaces[0] : undefined;
    if (!workspace) {
      const known = workspaces.map((w) => `  ${w.id}  ${w.name}`).join('\n') || '  (none: start the hub once to create the first workspace)';
      throw new Error(`${values.workspace ? `no workspace ${values.workspace}` : 'several workspaces; pass --workspace <id>'}; workspaces:\n${known}`);
    }
    const apiKey = await createApiKey(db, workspace.id, values.name);
    process.stdout.write(`${apiKey}\n`);
    process.stderr.write(`new API key for workspace "${workspace.name}"; it is shown once. Use it with: connect up --hub <url> --api-key ${apiKey}\n`);
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === '--help' || command === '-h' || (command !== undefined && !COMMANDS.has(command))) {
    process.stderr.write(USAGE + '\n');
    process.exit(command === '--help' || command === '-h' ? 0 : 2);
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`connect-hub: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (command === 'create-api-key') return createApiKeyCommand(config, rest);
  if (command === 'make-owner' || command === 'setup-link') {
    process.exitCode = await runOwnerCommand(command, config, rest, process.stdout, process.stderr);
    return;
  }
  const hub = await startHub(config);
  printWelcome(hub, config);
  startupDone();
  let stopping = false;
  // Graceful: /readyz turns 503, agents are told to reconnect, open streams get SHUTDOWN_GRACE_MS to finish.
  // A second signal stops at once.
  const stop = (signal: string) => {
    if (stopping) {
      hub.log.warn({ signal }, 'second signal: stopping now');
      process.exit(1);
    }
    stopping = true;
    hub.log.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + FORCE_EXIT_AFTER_GRACE_MS);
    force.unref();
    hub
      .drain()
      .then(() => hub.close())
      .then(
        () => process.exit(0),
        (err) => {
          hub.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    try {
      hub.reloadTls();
    } catch (err) {
      // The old certificate stays in use.
      hub.log.error({ reason: err instanceof Error ? err.message : String(err) }, 'TLS certificate not reloaded');
    }
  });
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`connect-hub: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`connect-hub: could not start: ${message}\n`);
  process.exit(1);
});
