/**
 * The cluster's NATS side on its own: hubs of one database find each other by its deployment id and no other
 * setting, hubs of another database never see them, a dead hub's routes go, and NATS credentials in NATS_URL are
 * used (a wrong password is refused with a clear error). A private nats-server with a password runs for the last.
 */

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConnectError } from '@private-connect/protocol';
import { startCluster, type Cluster } from '../src/cluster/cluster.js';
import { natsServer } from '../src/cluster/bus.js';
import { createLifecycle } from '../src/lifecycle.js';
import { createEventBus } from '../src/events.js';
import { ServiceTraffic } from '../src/relay/service-traffic.js';
import { createLogger } from '../src/logger.js';
import { createRelayStats } from '../src/relay/relay-stats.js';
import { ServiceRouter } from '../src/relay/router.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';
const NATS_SERVER = process.env.NATS_SERVER_BIN || '/usr/sbin/nats-server';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function member(database: TestDatabase, natsUrl = NATS_URL, router = new ServiceRouter()): Promise<Cluster> {
  return startCluster(
    { db: database.db, router, stats: createRelayStats(), log: createLogger('silent'), connections: new Set(), lifecycle: createLifecycle(), events: createEventBus(new ServiceTraffic()), cutAgent: () => undefined, cutRevoked: () => undefined, followHubPort: () => undefined },
    { natsUrl, heartbeatMs: 50, deadAfterMs: 300 },
  );
}

describe('cluster membership over NATS', () => {
  let first: TestDatabase;
  let second: TestDatabase;
  const members: Cluster[] = [];

  before(async () => {
    [first, second] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });

  after(async () => {
    for (const m of members) await m.close();
    await first?.dispose();
    await second?.dispose();
  });

  test('hubs on one database meet; a hub of another database is in another namespace and meets none of them', async () => {
    const [a, b] = await Promise.all([member(first), member(first)]);
    const other = await member(second);
    members.push(a, b, other);
    assert.equal(a.namespace, b.namespace);
    assert.notEqual(a.namespace, other.namespace);
    await until(() => a.peers().includes(b.hubId) && b.peers().includes(a.hubId), 5_000, 'the two hubs to hear each other');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(other.peers(), []);
    assert.ok(!a.peers().includes(other.hubId));
  });

  test('a hub that stops beating is dropped by the others within deadAfterMs', async () => {
    const c = await member(first);
    const [a] = members as [Cluster];
    await until(() => a.peers().includes(c.hubId), 5_000, 'hub c to join');
    await c.close();
    await until(() => !a.peers().includes(c.hubId), 2_000, 'hub c to be declared gone');
  });

  test("a hub joining closes, once it has heard the live hubs, the open tunnels of hubs that are gone, and only those", async () => {
    const [a] = members as [Cluster];
    const rows = await first.db.withSystem(async (tx) => {
      const one = async (sql: string, params: unknown[]) => String((await tx.query<{ id: unknown }>(sql, params))[0]!.id);
      const ws = await one(`insert into workspaces (name) values ('tunnels') returning id`, []);
      const agent = await one(`insert into agents (workspace_id, label) values ($1, 'a') returning id`, [ws]);
      const service = await one(`insert into services (workspace_id, agent_id, name, target_host, target_port) values ($1, $2, 'db', 'localhost', 5432) returning id`, [ws, agent]);
      const tunnel = (hub: string | null) =>
        one(`insert into tunnels (workspace_id, service_id, agent_id, local_port, connection_id, hub_id) values ($1, $2, $3, 0, gen_random_uuid(), $4) returning id`, [ws, service, agent, hub]);
      return { gone: await tunnel(randomUUID()), legacy: await tunnel(null), live: await tunnel(a.hubId) };
    });
    const joining = await member(first);
    members.push(joining);
    const open = async () =>
      (await first.db.withSystem((tx) => tx.query<{ id: string }>('select id from tunnels where closed_at is null and id = any($1::uuid[])', [Object.values(rows)]))).map((r) => r.id);
    const deadline = Date.now() + 5_000;
    while ((await open()).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await open(), [rows.live], 'the tunnel of the live hub stays open; the others are closed');
  });

  test('natsServer reads the user and password of NATS_URL; a URL without them is passed as it is', () => {
    assert.deepEqual(natsServer('nats://hub:s%40cret@nats.internal:4222'), { servers: 'nats://nats.internal:4222', user: 'hub', pass: 's@cret' });
    assert.deepEqual(natsServer('nats://127.0.0.1:4222'), { servers: 'nats://127.0.0.1:4222' });
    assert.deepEqual(natsServer('127.0.0.1:4222'), { servers: '127.0.0.1:4222' });
  });

  describe('a NATS server with a password', () => {
    let proc: ChildProcess;
    let port = 0;
    before(async () => {
      port = await freePort();
      proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '--user', 'hub', '--pass', 'right-password'], { stdio: 'ignore' });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const up = await new Promise<boolean>((resolve) => {
          const s = createServer();
          s.once('error', () => resolve(true));
          s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
        });
        if (up) break;
        if (Date.now() > deadline) throw new Error('nats-server did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    after(() => {
      proc?.kill();
    });

    test('the right password joins; a wrong one, or none, is refused with an error naming NATS', async () => {
      const joined = await member(first, `nats://hub:right-password@127.0.0.1:${port}`);
      members.push(joined);
      assert.match(joined.namespace, /^pc\.[0-9a-f-]{36}$/);
      for (const url of [`nats://hub:wrong@127.0.0.1:${port}`, `nats://127.0.0.1:${port}`]) {
        await assert.rejects(member(first, url), (err: unknown) => err instanceof ConnectError && /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/.test(err.message));
      }
    });
  });
});
