/** The embedded database's memory settings and the data-folder template that spares the hub PGlite's initdb. */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePgliteTemplate, openPglite, TEMPLATE_STAMP, type Database } from '../src/db/index.js';

const systemId = async (db: Database) =>
  (await db.withSystem((tx) => tx.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')))[0]!.id;

describe('embedded database memory', () => {
  let dir: string;
  let template: string;
  let templateId: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pc-pglite-mem-'));
    template = join(dir, 'template');
    await makePgliteTemplate(template);
    const db = await openPglite(join(dir, 'probe'), { templateDir: template });
    try {
      templateId = await systemId(db);
    } finally {
      await db.close();
    }
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('runs with 8MB of shared buffers and 4 connection slots instead of 128MB and 100', async () => {
    const db = await openPglite();
    try {
      const rows = await db.withSystem((tx) =>
        tx.query<{ name: string; value: string }>(`select name, current_setting(name) as value from unnest(array['shared_buffers', 'max_connections']) as name`),
      );
      assert.deepEqual(rows, [
        { name: 'shared_buffers', value: '8MB' },
        { name: 'max_connections', value: '4' },
      ]);
    } finally {
      await db.close();
    }
  });

  test('a new data folder is a copy of the template, not a fresh initdb', async () => {
    const dataDir = join(dir, 'new');
    const db = await openPglite(dataDir, { templateDir: template });
    try {
      assert.equal(await systemId(db), templateId, 'same cluster identity as the template');
      await db.withSystem((tx) => tx.query('create table kept (v int)'));
    } finally {
      await db.close();
    }
    const again = await openPglite(dataDir, { templateDir: template });
    try {
      const rows = await again.withSystem((tx) => tx.query(`select to_regclass('kept')::text as t`));
      assert.deepEqual(rows, [{ t: 'kept' }], 'a folder that holds a database is opened, never copied over');
    } finally {
      await again.close();
    }
  });

  test('a copy cut short before PG_VERSION is made again on the next start', async () => {
    const dataDir = join(dir, 'cut');
    const first = await openPglite(dataDir, { templateDir: template });
    await first.close();
    await unlink(join(dataDir, 'PG_VERSION'));
    await writeFile(join(dataDir, 'global', 'pg_control'), 'half-written');
    const db = await openPglite(dataDir, { templateDir: template });
    try {
      assert.equal(await systemId(db), templateId);
    } finally {
      await db.close();
    }
  });

  test('a template made by another PGlite version is not used: the folder gets its own initdb', async () => {
    const stale = join(dir, 'stale-template');
    await makePgliteTemplate(stale);
    await writeFile(join(stale, TEMPLATE_STAMP), JSON.stringify({ pglite: '0.0.1' }));
    const dataDir = join(dir, 'own');
    const db = await openPglite(dataDir, { templateDir: stale });
    try {
      assert.notEqual(await systemId(db), templateId);
    } finally {
      await db.close();
    }
    assert.equal(existsSync(join(dataDir, TEMPLATE_STAMP)), false, 'the stamp stays with the template');
  });

  test('without a template (a build that did not make one) the folder gets its own initdb', async () => {
    const dataDir = join(dir, 'none');
    const db = await openPglite(dataDir, { templateDir: join(dir, 'missing') });
    try {
      assert.notEqual(await systemId(db), templateId);
      assert.ok((await readdir(dataDir)).includes('PG_VERSION'));
    } finally {
      await db.close();
    }
  });
});
