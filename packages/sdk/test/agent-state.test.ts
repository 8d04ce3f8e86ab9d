/** state.json: what `connect expose` / `connect reach` remember for the daemon, and what `connect down` forgets. */

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { forgetServices, MAX_STATE_ENTRIES, readState, rememberService, statePath } from '../src/index.js';

describe('agent state (state.json)', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-state-'));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  test('a missing file is an empty state', async () => {
    assert.deepEqual(await readState(join(home, 'nowhere')), { services: [] });
  });

  test('remembers an expose and a reach of the same name separately, owner-only, and replaces by kind and name', async () => {
    const dir = join(home, 'a');
    assert.equal(await rememberService(dir, { kind: 'expose', name: 'db', target: '127.0.0.1:5432' }), true);
    assert.equal(await rememberService(dir, { kind: 'reach', name: 'db', host: '127.0.0.1', port: 15432 }), true);
    assert.equal(await rememberService(dir, { kind: 'reach', name: 'db', host: '127.0.0.1', port: 15432 }), false, 'unchanged: no write');
    await rememberService(dir, { kind: 'reach', name: 'db', host: '127.0.0.1', port: 15433 });
    const { services } = await readState(dir);
    assert.deepEqual(services, [
      { kind: 'expose', name: 'db', target: '127.0.0.1:5432' },
      { kind: 'reach', name: 'db', host: '127.0.0.1', port: 15433 },
    ]);
    assert.equal((await stat(statePath(dir))).mode & 0o777, 0o600);
  });

  test('forgets one name (both kinds), then everything', async () => {
    const dir = join(home, 'b');
    await rememberService(dir, { kind: 'expose', name: 'db', target: '127.0.0.1:5432' });
    await rememberService(dir, { kind: 'reach', name: 'db', host: '127.0.0.1', port: 15432 });
    await rememberService(dir, { kind: 'expose', name: 'web', target: '127.0.0.1:80', protocol: 'http' });
    assert.deepEqual((await forgetServices(dir, 'db')).map((e) => e.kind), ['expose', 'reach']);
    assert.deepEqual((await readState(dir)).services.map((e) => e.name), ['web']);
    assert.deepEqual(await forgetServices(dir, 'db'), []);
    assert.equal((await forgetServices(dir)).length, 1);
    assert.deepEqual((await readState(dir)).services, []);
  });

  test('skips entries that do not parse and reads a corrupt file as empty', async () => {
    const dir = join(home, 'c');
    await rememberService(dir, { kind: 'expose', name: 'ok', target: '127.0.0.1:1' });
    const file = statePath(dir);
    const value = JSON.parse(await readFile(file, 'utf8')) as { services: unknown[] };
    value.services.push({ kind: 'reach', name: 'bad', host: '127.0.0.1', port: 70000 }, { kind: 'other', name: 'x' }, 'nonsense');
    await writeFile(file, JSON.stringify(value));
    assert.deepEqual((await readState(dir)).services.map((e) => e.name), ['ok']);
    await writeFile(file, '{ not json');
    assert.deepEqual(await readState(dir), { services: [] });
  });

  test(`refuses to write more than MAX_STATE_ENTRIES (${MAX_STATE_ENTRIES}) services`, async () => {
    const dir = join(home, 'd');
    const services = Array.from({ length: MAX_STATE_ENTRIES }, (_, i) => ({ kind: 'expose', name: `s${i}`, target: '127.0.0.1:1' }));
    await rememberService(dir, { kind: 'expose', name: 'first', target: '127.0.0.1:1' });
    await writeFile(statePath(dir), JSON.stringify({ services }));
    await assert.rejects(rememberService(dir, { kind: 'expose', name: 'one-more', target: '127.0.0.1:1' }), /at most 1000/);
  });
});
