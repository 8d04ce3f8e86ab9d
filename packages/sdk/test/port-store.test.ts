/** Stable local ports: choosePort's order (explicit, remembered, preferred, next free) and ports.json on disk. */

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConnectError } from '@private-connect/protocol';
import { choosePort, portIsFree, readPorts, savePort } from '../src/index.js';

const host = '127.0.0.1';

/** Holds a port on 127.0.0.1 until released. */
async function holdPort(port = 0): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => resolve());
  });
  return { port: (server.address() as net.AddressInfo).port, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const held = await holdPort();
  await held.release();
  return held.port;
}

describe('choosePort', () => {
  test('an explicit free port is used as is', async () => {
    const port = await freePort();
    assert.deepEqual(await choosePort({ explicit: port, remembered: 1, preferred: 2, host }), { port });
  });

  test('explicit 0 means any port (the OS picks at listen time)', async () => {
    assert.deepEqual(await choosePort({ explicit: 0, preferred: 5432, host }), { port: 0 });
  });

  test('an explicit port that is taken is PORT_IN_USE, never another port', async () => {
    const held = await holdPort();
    try {
      await assert.rejects(choosePort({ explicit: held.port, preferred: held.port, host }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, 'PORT_IN_USE');
        assert.match(err.message, new RegExp(`port ${held.port} on 127\\.0\\.0\\.1 is already in use; pick another with --port`));
        return true;
      });
    } finally {
      await held.release();
    }
  });

  test('the remembered port wins over the preferred one', async () => {
    const remembered = await freePort();
    const preferred = await holdPort();
    try {
      assert.deepEqual(await choosePort({ remembered, preferred: preferred.port, host }), { port: remembered });
    } finally {
      await preferred.release();
    }
  });

  test('without a remembered port the preferred (service) port is used', async () => {
    const preferred = await freePort();
    assert.deepEqual(await choosePort({ preferred, host }), { port: preferred });
  });

  test('a taken port moves to the next free one above it and reports the one wanted', async () => {
    const held = await holdPort();
    const next = await holdPort(held.port + 1).catch(() => undefined); // make the search skip at least two when we can
    try {
      const choice = await choosePort({ preferred: held.port, host });
      assert.equal(choice.wanted, held.port);
      assert.ok(choice.port > held.port + (next ? 1 : 0) && choice.port < held.port + 200, JSON.stringify(choice));
      assert.equal(await portIsFree(choice.port, host), true);
      // Every port between the wanted one and the chosen one was taken.
      for (let p = held.port; p < choice.port; p++) assert.equal(await portIsFree(p, host), false, `port ${p}`);
    } finally {
      await next?.release();
      await held.release();
    }
  });

  test('a taken remembered port also moves up and reports it', async () => {
    const held = await holdPort();
    try {
      const choice = await choosePort({ remembered: held.port, preferred: 1, host });
      assert.equal(choice.wanted, held.port);
      assert.ok(choice.port > held.port);
    } finally {
      await held.release();
    }
  });
});

describe('ports.json', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pc-ports-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('savePort persists each service’s port, keeps the others, and readPorts reads them back', async () => {
    const file = join(dir, 'nested', 'ports.json');
    assert.deepEqual(await readPorts(file), {}, 'a missing file is an empty map');
    await savePort(file, 'prod-db', 5433);
    await savePort(file, 'cache', 6380);
    await savePort(file, 'prod-db', 5434);
    assert.deepEqual(await readPorts(file), { 'prod-db': 5434, cache: 6380 });
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { 'prod-db': 5434, cache: 6380 });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(join(dir, 'nested')), ['ports.json'], 'no temp file is left behind');
  });

  test('a corrupt file or invalid entries are ignored, not fatal', async () => {
    const file = join(dir, 'corrupt.json');
    await writeFile(file, '{"prod-db": 5432, "');
    assert.deepEqual(await readPorts(file), {});
    await writeFile(file, JSON.stringify({ ok: 8080, zero: 0, big: 70000, text: '5432', fraction: 1.5, negative: -1, list: [1] }));
    assert.deepEqual(await readPorts(file), { ok: 8080 });
    await writeFile(file, 'null');
    assert.deepEqual(await readPorts(file), {});
    // Saving over a corrupt file starts a clean map.
    await writeFile(file, 'garbage');
    await savePort(file, 'svc', 9000);
    assert.deepEqual(await readPorts(file), { svc: 9000 });
  });
});
