/** `npm run docs:api`: starts a hub on an in-memory database, reads its /openapi.json and writes docs/api.md. */

import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { renderApiReference, type OpenApiDocument } from './api/api-reference.js';
import { loadConfig } from './config.js';
import { openDatabase } from './db/index.js';
import { startHub } from './hub.js';
import { createLogger } from './logger.js';

const target = new URL('../../../../docs/api.md', import.meta.url);
const db = await openDatabase({});
const hub = await startHub(loadConfig({ HUB_PORT: '0', WEB_PORT: 'off', HUB_HOST: '127.0.0.1', LOG_LEVEL: 'warn' }), {
  db,
  logger: createLogger('warn', new Writable({ write: (_chunk, _enc, cb) => cb() })),
});
try {
  const response = await fetch(`${hub.url}/openapi.json`);
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
  writeFileSync(target, renderApiReference((await response.json()) as OpenApiDocument));
  process.stdout.write(`wrote ${target.pathname}\n`);
} finally {
  await hub.close();
  await db.close();
}
