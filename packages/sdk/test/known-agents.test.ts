/** Pinned identity keys (known_agents.json) and the identity file: trust on first use, refusals, trust, sharing. */

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConnectError, generateIdentity, identityFromPem, keyFingerprint } from '@private-connect/protocol';
import { KnownAgents, loadOrCreateIdentity } from '../src/index.js';

const HUB = 'https://hub.example.com';
const key = () => generateIdentity().publicKey.toString('base64');

function assertKeyChanged(fn: () => unknown, detail: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, 'E2E_KEY_CHANGED');
    assert.match(err.message, /IDENTITY KEY CHANGED/);
    assert.match(err.message, detail);
    return true;
  });
}

describe('KnownAgents', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'known-agents-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('pins on first use, then accepts the same key and refuses another one for that agent', async () => {
    const file = join(dir, 'a.json');
    const known = new KnownAgents(file);
    const db = { agentId: 'agent-1', label: 'db-server', identityKey: key() };
    assert.equal(known.check(HUB, 'prod-db', db), 'new');
    assert.equal(known.check(HUB, 'prod-db', db), 'pinned');
    const impostor = { ...db, identityKey: key() };
    assertKeyChanged(() => known.check(HUB, 'prod-db', impostor), new RegExp(`pinned with key ${escape(keyFingerprint(db.identityKey))} and now presents ${escape(keyFingerprint(impostor.identityKey))}`));
    assertKeyChanged(() => known.check(HUB, 'other-name', impostor), /connect trust db-server/);
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as { version: number; agents: Array<{ names: string[]; key: string }> };
    assert.equal(onDisk.version, 1);
    assert.deepEqual(onDisk.agents.map((a) => [a.names, a.key]), [[['prod-db'], db.identityKey]]);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  test('a name pinned to one key is refused when another agent id serves it with another key', () => {
    const known = new KnownAgents(join(dir, 'b.json'));
    known.check(HUB, 'prod-db', { agentId: 'agent-1', label: 'db-server', identityKey: key() });
    assertKeyChanged(() => known.check(HUB, 'prod-db', { agentId: 'agent-made-up', label: 'db-server', identityKey: key() }), /"prod-db" was served by agent "db-server"/);
  });

  test('pins are per hub: the same agent id on another hub is pinned apart', () => {
    const known = new KnownAgents(join(dir, 'c.json'));
    known.check(HUB, 'svc', { agentId: 'agent-1', label: 'x', identityKey: key() });
    assert.equal(known.check('https://other.example.com', 'svc', { agentId: 'agent-1', label: 'x', identityKey: key() }), 'new');
  });

  test('one agent reached by several names keeps one pin with all the names', () => {
    const known = new KnownAgents(join(dir, 'd.json'));
    const agent = { agentId: 'agent-1', label: 'box', identityKey: key() };
    known.check(HUB, 'api', agent);
    assert.equal(known.check(HUB, 'acme/api', agent), 'pinned');
    assert.deepEqual(known.list().map((a) => a.names), [['api', 'acme/api']]);
  });

  test('trust forgets an agent by label, id or name, and the next key is pinned', () => {
    const known = new KnownAgents(join(dir, 'e.json'));
    const agent = { agentId: 'agent-7', label: 'cache', identityKey: key() };
    for (const who of ['cache', 'agent-7', 'redis']) {
      known.check(HUB, 'redis', agent);
      assert.equal(known.trust('nobody').length, 0);
      assert.equal(known.trust(who, 'https://other.example.com').length, 0, 'another hub\'s pins are not touched');
      assert.deepEqual(known.trust(who, HUB).map((a) => a.agentId), ['agent-7']);
      assert.equal(known.list().length, 0);
    }
    assert.equal(known.check(HUB, 'redis', { ...agent, identityKey: key() }), 'new');
  });

  test('several processes share the file: a pin made or forgotten by one is seen by the other', async () => {
    const file = join(dir, 'f.json');
    const one = new KnownAgents(file);
    const two = new KnownAgents(file);
    const agent = { agentId: 'agent-1', label: 'db', identityKey: key() };
    one.check(HUB, 'db', agent);
    assertKeyChanged(() => two.check(HUB, 'db', { ...agent, identityKey: key() }), /pinned with key/);
    // Make the next write land on another mtime even on coarse file systems.
    await new Promise((resolve) => setTimeout(resolve, 20));
    two.trust('db');
    assert.equal(one.check(HUB, 'db', { ...agent, identityKey: key() }), 'new');
  });

  test('a damaged file is a clear error naming it, not a silent reset of every pin', async () => {
    const file = join(dir, 'g.json');
    await writeFile(file, '{"agents": ');
    assert.throws(() => new KnownAgents(file).check(HUB, 'x', { agentId: 'a', label: 'a', identityKey: key() }), /g\.json is not valid JSON/);
    await writeFile(file, '{"version": 1}');
    assert.throws(() => new KnownAgents(file).list(), /has no "agents" list/);
  });

  test('without a file, pins live in memory for the life of the object', () => {
    const known = new KnownAgents();
    const agent = { agentId: 'a', label: 'a', identityKey: key() };
    assert.equal(known.check(HUB, 'x', agent), 'new');
    assertKeyChanged(() => known.check(HUB, 'x', { ...agent, identityKey: key() }), /pinned/);
  });
});

describe('loadOrCreateIdentity', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'identity-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('makes the key once (mode 0600) and loads the same key afterwards', async () => {
    const file = join(dir, 'sub', 'identity.pem');
    const first = loadOrCreateIdentity(file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const again = loadOrCreateIdentity(file);
    assert.deepEqual(again.publicKey, first.publicKey);
    assert.deepEqual(identityFromPem(await readFile(file, 'utf8')).publicKey, first.publicKey);
  });

  test('a file that is not an Ed25519 key is refused with what to do, and left alone', async () => {
    const file = join(dir, 'broken.pem');
    await writeFile(file, 'not a key');
    assert.throws(() => loadOrCreateIdentity(file), /does not hold an Ed25519 identity key.*move it away/);
    assert.equal(await readFile(file, 'utf8'), 'not a key');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
