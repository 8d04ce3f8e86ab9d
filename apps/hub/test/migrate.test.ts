/** Migrations: applied once each, in name order, recorded, atomic per file, safe with several hubs at once. */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openPostgres } from '../src/db/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

describe(`migrations (${dbKind})`, () => {
  let t: TestDatabase;
  let dir: string;

  before(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'pc-migrations-'));
  });
  after(async () => {
    await t?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const recorded = () =>
    t.db.withSystem(async (tx) => (await tx.query<{ name: string }>('select name from schema_migrations order by name')).map((row) => row.name));

  test('opening the database applied 001_core.sql and recorded it', async () => {
    assert.ok((await recorded()).includes('001_core.sql'));
  });

  test('a second migrate() applies nothing', async () => {
    const before = await recorded();
    assert.deepEqual(await migrate(t.db), []);
    assert.deepEqual(await recorded(), before);
  });

  test('applies new files in name order and only once', async () => {
    const tag = randomBytes(4).toString('hex');
    await writeFile(join(dir, `902_${tag}_b.sql`), `insert into m_${tag} values ('902');`);
    await writeFile(join(dir, `901_${tag}_a.sql`), `create table m_${tag} (v text); insert into m_${tag} values ('901');`);
    await writeFile(join(dir, 'README.md'), 'not a migration');
    assert.deepEqual(await migrate(t.db, dir), [`901_${tag}_a.sql`, `902_${tag}_b.sql`]);
    assert.deepEqual(await migrate(t.db, dir), []);
    const rows = await t.db.withSystem((tx) => tx.query<{ v: string }>(`select v from m_${tag} order by v`));
    assert.deepEqual(rows, [{ v: '901' }, { v: '902' }]);
    await rm(join(dir, `901_${tag}_a.sql`));
    await rm(join(dir, `902_${tag}_b.sql`));
  });

  test('a failing file is rolled back, not recorded, and stops later files', async () => {
    const tag = randomBytes(4).toString('hex');
    await writeFile(join(dir, `911_${tag}.sql`), `create table bad_${tag} (v int); select 1 / 0;`);
    await writeFile(join(dir, `912_${tag}.sql`), `create table later_${tag} (v int);`);
    await assert.rejects(migrate(t.db, dir), (error) => (error as { code?: string }).code === '22012');
    const [row] = await t.db.withSystem((tx) =>
      tx.query<{ bad: string | null; later: string | null }>(`select to_regclass('bad_${tag}')::text as bad, to_regclass('later_${tag}')::text as later`),
    );
    assert.deepEqual(row, { bad: null, later: null });
    assert.ok(!(await recorded()).some((name) => name.includes(tag)));
    await rm(join(dir, `911_${tag}.sql`));
    await rm(join(dir, `912_${tag}.sql`));
  });

  // Several connections to one database only exist on PostgreSQL; the PostgreSQL suite in .ci/run runs this.
  const postgresOnly = dbKind === 'postgres' ? test : () => undefined;
  postgresOnly('several hubs migrating one database at once apply each file exactly once', async () => {
    const tag = randomBytes(4).toString('hex');
    await writeFile(join(dir, `921_${tag}.sql`), `create table race_${tag} (v int); select pg_sleep(0.2);`);
    await writeFile(join(dir, `922_${tag}.sql`), `insert into race_${tag} values (1);`);
    const hubs = await Promise.all([1, 2, 3].map(() => openPostgres(t.url!, { max: 1 })));
    try {
      const results = await Promise.all(hubs.map((hub) => migrate(hub, dir)));
      assert.deepEqual(results.flat().sort(), [`921_${tag}.sql`, `922_${tag}.sql`]);
      const [row] = await t.db.withSystem((tx) => tx.query<{ n: number }>(`select count(*)::int as n from race_${tag}`));
      assert.equal(row!.n, 1);
    } finally {
      await Promise.all(hubs.map((hub) => hub.close()));
      await rm(join(dir, `921_${tag}.sql`));
      await rm(join(dir, `922_${tag}.sql`));
    }
  });
});
