#!/usr/bin/env node
/** `connect-hub`: reads the environment and starts the hub. Everything else lives in startHub(). */

import { loadConfig, ConfigError } from './config.js';
import { startHub } from './hub.js';
import { printWelcome } from './welcome.js';

async function main(): Promise<void> {
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
