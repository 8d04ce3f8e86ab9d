/** `connect-hub`: reads the environment and starts the hub. Everything else lives in startHub(). */

import { parseArgs } from 'node:util';
import { loadConfig, ConfigError, type HubConfig } from './config.js';
import { openDatabase } from './db/index.js';
import { startHub } from './hub.js';
import { createApiKey } from './store/bootstrap.js';
import { printWelcome } from './welcome.js';

const USAGE = `usage: connect-hub                      start the hub (configured by HUB_* and DATABASE_URL)
       connect-hub create-api-key [--workspace <id>] [--name <name>]
                                       print a new API key (with the embedded database, stop the hub first)`;

/** Operator command: a new API key for a workspace, for when the bootstrap key is lost. */
async function createApiKeyCommand(config: HubConfig, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { workspace: { type: 'string' }, name: { type: 'string', default: 'created by connect-hub' } } });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const workspaces = await db.withSystem((tx) => tx.query<{ id: string; name: string }>('select id, name from workspaces order by created_at'));
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
  if (command === '--help' || command === '-h' || (command !== undefined && command !== 'create-api-key')) {
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
  const hub = await startHub(config);
  printWelcome(hub, config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    hub.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    hub.close().then(
      () => process.exit(0),
      (err) => {
        hub.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`connect-hub: could not start: ${message}\n`);
  process.exit(1);
});
