/**
 * Two hubs relaying over a NATS server of the test's own, which is killed during a cross-hub transfer and started
 * again. NATS delivers at most once, so the streams between the hubs must end (the client gets a reset), never
 * hang and never go on with a hole in them: the transfer is plaintext here (agents without identity keys), so
 * nothing but the hubs' own checks (hub-link.ts: epochs and sequence numbers) stands between a lost frame and a
 * corrupt file. Once NATS is back, the hubs find each other again and new cross-hub streams arrive intact.
 */

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Agent, type AgentEvent } from '@private-connect/sdk';
import {
  connect,
  echoServer,
  enrolViaApi,
  eventually,
  expectedDigest,
  freePort,
  hashExchange,
  hashServer,
  removeDirs,
  roundTrip,
  scratchDatabase,
  startHubProcess,
  type HubProcess,
  type TcpServer,
} from '../src/index.js';

const NATS_SERVER = process.env.NATS_SERVER_BIN || '/usr/sbin/nats-server';
const MiB = 1024 * 1024;

/** A nats-server on `port`; resolves once it takes connections. */
async function startNats(port: number): Promise<ChildProcess> {
  const proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await eventually(
    () =>
      new Promise<void>((resolve, reject) => {
        const socket = connect(port).then((s) => (s.destroy(), resolve()), reject);
        void socket;
      }),
    10_000,
    50,
  );
  return proc;
}

describe('two hubs when their NATS server dies and comes back', () => {
  let database: { url: string; drop(): Promise<void> };
  let natsPort = 0;
  let nats: ChildProcess | undefined;
  const hubs: HubProcess[] = [];
  const agents: Agent[] = [];
  let echo: TcpServer;
  let hashSrv: TcpServer;
  let bulkPort = 0;
  let echoPort = 0;

  before(async () => {
    database = await scratchDatabase('pc_e2e_natsloss');
    natsPort = await freePort();
    nats = await startNats(natsPort);
    const env = { NATS_URL: `nats://127.0.0.1:${natsPort}`, WEB_PORT: 'off' };
    hubs.push(await startHubProcess({ databaseUrl: database.url, env: { ...env, HUB_TCP_PORT_RANGE: '24400-24449' } }));
    hubs.push(await startHubProcess({ databaseUrl: database.url, apiKey: hubs[0]!.apiKey, env: { ...env, HUB_TCP_PORT_RANGE: '24450-24499' } }));
    [echo, hashSrv] = await Promise.all([echoServer(), hashServer()]);
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(hubs.map((h) => h.stop()));
    nats?.kill('SIGKILL');
    await echo?.close();
    await hashSrv?.close();
    await removeDirs(...hubs.map((h) => h.dataDir));
    await database?.drop();
  });

  async function startAgent(hub: HubProcess, label: string): Promise<Agent> {
    const { token } = await enrolViaApi(hub.url, hub.apiKey, label);
    const seen: AgentEvent[] = [];
    // No identity key: plaintext streams, so that only the hubs can notice a lost frame.
    const agent = new Agent({ hubUrl: hub.url, token, label, backoff: { initialMs: 100, maxMs: 1000 }, onEvent: (e) => seen.push(e) });
    agents.push(agent);
    return agent;
  }

  test('a plaintext transfer across the hubs ends with a reset when NATS dies; once it is back, new streams arrive intact', async (t) => {
    const server = await startAgent(hubs[0]!, 'server');
    const laptop = await startAgent(hubs[1]!, 'laptop');
    await server.expose('bulk', `127.0.0.1:${hashSrv.port}`, { checkIntervalMs: 0 });
    await server.expose('echo', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    await eventually(async () => {
      const res = await fetch(`${hubs[1]!.url}/v1/services`, { headers: { authorization: `Bearer ${hubs[1]!.apiKey}` } });
      const { services } = (await res.json()) as { services: Array<{ name: string; online: boolean; e2e?: string }> };
      assert.deepEqual(services.filter((s) => s.online).map((s) => s.name).sort(), ['bulk', 'echo']);
    }, 10_000, 100);
    bulkPort = (await laptop.reach('bulk', { port: 0 })).port;
    echoPort = (await laptop.reach('echo', { port: 0 })).port;
    assert.equal((await roundTrip(echoPort, 'across hubs\n')).toString(), 'across hubs\n');

    const total = 1024 * MiB;
    const transfer = hashExchange(await connect(bulkPort), total, 21).then(
      (r) => (r.serverDigestOfUpload === r.uploadDigest && r.downloadBytes === total && r.downloadDigest === expectedDigest(total, 7) ? 'completed intact' : 'CORRUPT'),
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    await new Promise((r) => setTimeout(r, 400));
    const killedAt = performance.now();
    nats!.kill('SIGKILL');
    const ended = await Promise.race([transfer, new Promise<string>((r) => setTimeout(() => r('still open after 20 s'), 20_000))]);
    t.diagnostic(`the transfer ended with ${ended} ${Math.round(performance.now() - killedAt)} ms after NATS was killed`);
    assert.notEqual(ended, 'CORRUPT', 'a stream that lost frames must not deliver what is left of it');
    assert.notEqual(ended, 'still open after 20 s', 'a stream across hubs must end when NATS dies');
    assert.notEqual(ended, 'completed intact', 'NATS died during the transfer');
    for (const hub of hubs) await hub.proc.waitFor((l) => l.msg === 'lost NATS: the streams to other hubs ended', 5_000, 'the hub saying it lost NATS');

    // NATS back on the same port: the hubs reconnect, learn each other's routes again, and cross-hub streams work.
    const restartedAt = performance.now();
    nats = await startNats(natsPort);
    await eventually(async () => assert.equal((await roundTrip(echoPort, 'NATS is back\n', 1000)).toString(), 'NATS is back\n'), 30_000, 100);
    t.diagnostic(`cross-hub streams worked again ${Math.round(performance.now() - restartedAt)} ms after NATS was started again`);
    const result = await hashExchange(await connect(bulkPort), 64 * MiB, 5);
    assert.equal(result.serverDigestOfUpload, result.uploadDigest);
    assert.equal(result.downloadDigest, expectedDigest(64 * MiB, 7));
  });
});
