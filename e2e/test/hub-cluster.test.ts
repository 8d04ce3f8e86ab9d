/**
 * Three hub processes on one PostgreSQL database, relaying to each other over NATS (NATS_URL, 127.0.0.1:4222 by
 * default): agents spread over the hubs reach each other's services with end-to-end encryption on. A 256 MiB
 * exchange crosses hubs with SHA-256 checked at both ends; presence and revocation reach every hub; a hub killed
 * under traffic ends the streams through it, its agents move on, and new streams work within seconds.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import { FrameType, encodeFrame, encodeJsonFrame } from '@private-connect/protocol';
import { Agent, type AgentEvent } from '@private-connect/sdk';
import {
  connect,
  echoServer,
  eventually,
  expectedDigest,
  hashExchange,
  hashServer,
  countingWriter,
  enrolAgent,
  enrolViaApi,
  removeDirs,
  query,
  roundTrip,
  scratchDatabase,
  slowReader,
  startHubProcess,
  tempDir,
  type AgentHome,
  type HubProcess,
  type Proc,
  type TcpServer,
} from '../src/index.js';

const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';
const MiB = 1024 * 1024;

async function api<T>(hub: HubProcess, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${hub.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${hub.apiKey}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

describe('three hubs on one PostgreSQL, relaying over NATS', () => {
  let database: { url: string; drop(): Promise<void> };
  const hubs: HubProcess[] = [];
  const agents: Agent[] = [];
  const events = new Map<string, AgentEvent[]>();
  const agentIds = new Map<string, string>();
  let home = '';
  let echo: TcpServer;
  let hashSrv: TcpServer;
  let cliHome: AgentHome | undefined;
  const procs: Proc[] = [];

  const startHub = (index: number, apiKey?: string, port?: number) =>
    startHubProcess({
      databaseUrl: database.url,
      ...(apiKey ? { apiKey } : {}),
      ...(port ? { port } : {}),
      // Each hub binds its hub TCP ports on an address of its own (127.0.0.1, .2, .3): every hub serves every port.
      env: { NATS_URL, WEB_PORT: 'off', HUB_TCP_PORT_RANGE: `${24000 + index * 100}-${24000 + index * 100 + 99}`, HUB_TCP_BIND: `127.0.0.${index + 1}` },
    });

  before(async () => {
    database = await scratchDatabase('pc_e2e_cluster');
    // The first hub creates the workspace with its bootstrap key; the others start on the same database.
    hubs.push(await startHub(0));
    hubs.push(...(await Promise.all([startHub(1, hubs[0]!.apiKey), startHub(2, hubs[0]!.apiKey)])));
    home = await tempDir('cluster-agents');
    [echo, hashSrv] = await Promise.all([echoServer(), hashServer()]);
  });

  after(async () => {
    for (const proc of procs) await proc.stop();
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(hubs.map((h) => h.stop()));
    await echo?.close();
    await hashSrv?.close();
    await removeDirs(home, cliHome?.home, ...hubs.map((h) => h.dataDir));
    await database?.drop();
  });

  /** An agent enrolled through `hub`, connecting to it first and to the other hubs after it; E2E on. */
  async function startAgent(label: string, first: number): Promise<Agent> {
    const enrolled = await enrolViaApi(hubs[first]!.url, hubs[first]!.apiKey, label);
    agentIds.set(label, enrolled.agentId);
    const seen: AgentEvent[] = [];
    events.set(label, seen);
    const order = [first, ...[0, 1, 2].filter((i) => i !== first)].map((i) => hubs[i]!.url);
    const agent = new Agent({
      hubUrl: order[0]!,
      hubUrls: order.slice(1),
      hubOrder: 'listed',
      token: enrolled.token,
      label,
      identityFile: `${home}/${label}.identity`,
      knownAgentsFile: `${home}/${label}.known_agents.json`,
      backoff: { initialMs: 100, maxMs: 1000 },
      onEvent: (e) => seen.push(e),
    });
    agents.push(agent);
    await eventually(async () => assert.ok(seen.some((e) => e.type === 'connected')), 10_000, 50);
    return agent;
  }
  const hubOf = (label: string) => events.get(label)!.filter((e) => e.type === 'connected').map((e) => (e as { hubUrl: string }).hubUrl).at(-1);

  let server: Agent;
  let laptop: Agent;
  let bulkPort = 0;
  let echoPort = 0;

  test('an agent on hub 2 reaches a service exposed on hub 1: 256 MiB each way, SHA-256 checked at both ends, encrypted', async (t) => {
    server = await startAgent('db-server', 0);
    laptop = await startAgent('laptop', 1);
    assert.equal(hubOf('db-server'), hubs[0]!.url);
    assert.equal(hubOf('laptop'), hubs[1]!.url);
    await server.expose('bulk', `127.0.0.1:${hashSrv.port}`, { checkIntervalMs: 0 });
    await server.expose('echo', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    // The route announced by hub 1 reaches hub 2 over NATS.
    await eventually(async () => {
      const listed = await api<{ services: Array<{ name: string; online: boolean; e2e?: string }> }>(hubs[1]!, '/v1/services');
      assert.deepEqual(listed.body.services.filter((s) => s.online).map((s) => s.name).sort(), ['bulk', 'echo']);
      assert.equal(listed.body.services.find((s) => s.name === 'bulk')!.e2e, 'required');
    }, 10_000, 100);
    bulkPort = (await laptop.reach('bulk', { port: 0 })).port;
    echoPort = (await laptop.reach('echo', { port: 0 })).port;
    assert.equal((await roundTrip(echoPort, 'across hubs\n')).toString(), 'across hubs\n');

    const total = 256 * MiB;
    const started = performance.now();
    const result = await hashExchange(await connect(bulkPort), total, 11);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(result.serverDigestOfUpload, result.uploadDigest, 'the server received exactly what was sent');
    assert.equal(result.downloadBytes, total);
    assert.equal(result.downloadDigest, expectedDigest(total, 7), 'the client received exactly what the server sent');
    t.diagnostic(`256 MiB each way across hubs in ${seconds.toFixed(1)} s (${((2 * total) / MiB / seconds).toFixed(0)} MiB/s both directions together)`);

    // Both hubs relayed it, and it was end-to-end encrypted: the hubs only counted encrypted streams.
    const [m1, m2] = await Promise.all([hubs[0]!.metrics(), hubs[1]!.metrics()]);
    for (const m of [m1, m2]) {
      assert.ok((m.get('connect_relay_bytes_total') ?? 0) >= 2 * total, 'each hub on the way relayed both directions');
      assert.ok((m.get('connect_stream_opens_encrypted_total') ?? 0) >= 2);
    }
  });

  test("traffic counted by hub 1 (the exposing agent's) shows on hubs 2 and 3 too: the bytes of the exchange", async () => {
    for (const hub of [hubs[1]!, hubs[2]!]) {
      await eventually(async () => {
        const listed = await api<{ services: Array<{ name: string; bytesIn: number; bytesOut: number }> }>(hub, '/v1/services');
        const bulk = listed.body.services.find((s) => s.name === 'bulk')!;
        assert.ok(bulk.bytesIn >= 256 * MiB && bulk.bytesOut >= 256 * MiB, JSON.stringify(bulk));
      }, 10_000, 200);
    }
  });

  test('presence reaches every hub: hub 3 lists both agents online and both services, and refuses an unknown name', async () => {
    const agentsOn3 = await api<{ agents: Array<{ label: string; online: boolean }> }>(hubs[2]!, '/v1/agents');
    assert.deepEqual(agentsOn3.body.agents.filter((a) => a.online).map((a) => a.label).sort(), ['db-server', 'laptop']);
    const third = await startAgent('third', 2);
    assert.equal(hubOf('third'), hubs[2]!.url);
    const port = (await third.reach('echo', { port: 0 })).port;
    assert.equal((await roundTrip(port, 'from hub 3\n')).toString(), 'from hub 3\n');
    await assert.rejects(third.reach('no-such-service', { port: 0 }), (err: Error & { code?: string }) => err.code === 'SERVICE_NOT_FOUND');
  });

  test('an agent revoked through hub 3 is cut off on hub 1, where it is connected', async () => {
    const victim = await startAgent('to-revoke', 0);
    await victim.expose('doomed', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    const seen = events.get('to-revoke')!;
    const revoked = await api(hubs[2]!, `/v1/agents/${agentIds.get('to-revoke')}`, { method: 'DELETE' });
    assert.equal(revoked.status, 204);
    await eventually(async () => assert.ok(seen.some((e) => e.type === 'fatal' && (e as { code?: string }).code === 'UNAUTHORIZED'), JSON.stringify(seen.slice(-3))), 10_000, 100);
    await eventually(async () => {
      const listed = await api<{ services: Array<{ name: string; online: boolean }> }>(hubs[1]!, '/v1/services');
      assert.equal(listed.body.services.find((s) => s.name === 'doomed')?.online ?? false, false);
    }, 10_000, 100);
  });

  test('flow control holds across hubs: a server on hub 1 that reads nothing stops a client on hub 2, and neither hub fills up', async (t) => {
    const TOTAL = 64 * MiB;
    const reader = await slowReader();
    try {
      await server.expose('slow', `127.0.0.1:${reader.port}`, { checkIntervalMs: 0 });
      await eventually(async () => {
        const listed = await api<{ services: Array<{ name: string; online: boolean }> }>(hubs[1]!, '/v1/services');
        assert.ok(listed.body.services.some((s) => s.name === 'slow' && s.online));
      }, 10_000, 100);
      const port = (await laptop.reach('slow', { port: 0 })).port;
      const rssBefore = await Promise.all([hubs[0]!.metrics(), hubs[1]!.metrics()]).then((ms) => ms.map((m) => m.get('process_resident_memory_bytes')!));
      const client = await connect(port);
      client.on('error', () => undefined);
      const writer = countingWriter(client, TOTAL, 9);
      writer.done.catch(() => undefined); // awaited below
      const serverSide = await reader.connection;
      // Sample until the sender has not moved for 2 s: it is held back.
      let last = -1;
      let still = 0;
      const rssMax = [...rssBefore];
      for (const deadline = Date.now() + 60_000; still < 8 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 250));
        const ms = await Promise.all([hubs[0]!.metrics(), hubs[1]!.metrics()]);
        ms.forEach((m, i) => (rssMax[i] = Math.max(rssMax[i]!, m.get('process_resident_memory_bytes')!)));
        still = writer.flushed === last ? still + 1 : 0;
        last = writer.flushed;
      }
      assert.equal(serverSide.bytesRead, 0);
      assert.ok(still >= 8, `the sender was never held back: ${writer.flushed} of ${TOTAL} bytes left it`);
      assert.ok(writer.flushed < TOTAL / 2, `${writer.flushed} of ${TOTAL} bytes left the client while the server read nothing`);
      rssMax.forEach((max, i) => assert.ok(max - rssBefore[i]! < TOTAL / 4, `hub ${i + 1}'s RSS grew by ${max - rssBefore[i]!} bytes`));
      t.diagnostic(`held back after ${writer.flushed} bytes; hub RSS growth ${rssMax.map((m, i) => m - rssBefore[i]!).join(' and ')} bytes`);
      serverSide.resume();
      await writer.done;
      const received = await reader.received;
      assert.equal(received.bytes, TOTAL);
      assert.equal(received.digest, expectedDigest(TOTAL, 9));
      client.destroy();
    } finally {
      await reader.close();
    }
  });

  test('garbage on the cluster subjects is dropped: the hubs keep relaying and their routes stand', async () => {
    const [{ id }] = (await query<{ id: string }>('select id from deployment', database.url)) as [{ id: string }];
    const ns = `pc.${id}`;
    const nc = await natsConnect({ servers: NATS_URL });
    try {
      // The hubs' ids, from their heartbeats.
      const ids = new Set<string>();
      const sub = nc.subscribe(`${ns}.hb`, {
        callback: (_e, msg) => {
          ids.add((JSON.parse(new TextDecoder().decode(msg.data)) as { hub: string }).hub);
        },
      });
      await eventually(async () => assert.equal(ids.size, 3), 5_000, 100);
      sub.unsubscribe();
      const fake = 'not-a-hub';
      const bad: Array<[string, Uint8Array]> = [];
      for (const hub of ids) {
        // Frames of a made-up hub's link (epoch 7, messages 1 to 6), then one out of sequence, and a bad subject.
        let seq = 0;
        const frames = () => `${ns}.f.${hub}.${fake}.7.${++seq}`;
        bad.push(
          [frames(), Buffer.from([1, 2, 3])], // shorter than a frame header
          [frames(), Buffer.from('\xff'.repeat(64), 'latin1')], // a header with a length that lies
          [frames(), encodeFrame(FrameType.OPEN, 1, Buffer.from('{not json'))],
          [frames(), encodeJsonFrame(FrameType.OPEN, 3, { workspaceId: 'x' })], // no notice
          [frames(), encodeFrame(FrameType.DATA, 99, Buffer.from('for a stream that does not exist'))],
          [frames(), encodeFrame(FrameType.WINDOW, 5, Buffer.alloc(2))],
          [`${ns}.f.${hub}.${fake}.7.${seq + 5}`, encodeFrame(FrameType.DATA, 99, Buffer.from('after a gap'))],
          [`${ns}.f.${hub}.${fake}.seven.one`, encodeFrame(FrameType.DATA, 99, Buffer.from('bad subject'))],
        );
      }
      for (const body of ['', 'null', '[]', '{"t":"claim","hub":"x","ws":"y"}', '{"t":"gone"}', '{"t":"revoke","hub":"x"}', '\u0000\u0001']) {
        bad.push([`${ns}.presence`, Buffer.from(body)], [`${ns}.sync`, Buffer.from(body)], [`${ns}.hb`, Buffer.from(body)]);
      }
      for (const [subject, data] of bad) nc.publish(subject, data);
      await nc.flush();
    } finally {
      await nc.close();
    }
    // Each hub saw the garbage and said so, and goes on.
    for (const hub of hubs) {
      await hub.proc.waitFor((l) => l.msg === 'a malformed frame from another hub was dropped', 5_000, 'the malformed frame warning');
      await hub.proc.waitFor((l) => l.msg === 'a presence message of the wrong shape was dropped', 5_000, 'the presence warning');
      await hub.proc.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('frames from another hub were lost'), 5_000, 'the lost-frames warning');
    }
    assert.equal((await roundTrip(echoPort, 'still relaying\n')).toString(), 'still relaying\n');
    const listed = await api<{ services: Array<{ name: string; online: boolean }> }>(hubs[2]!, '/v1/services');
    assert.deepEqual(listed.body.services.filter((s) => s.online).map((s) => s.name).sort(), ['bulk', 'echo', 'slow']);
    for (const hub of hubs) assert.equal((await fetch(`${hub.url}/healthz`)).status, 200);
  });

  test("a dashboard on hub 3 hears, live, a service exposed through hub 1 and going offline (GET /v1/events)", async () => {
    const controller = new AbortController();
    const res = await fetch(`${hubs[2]!.url}/v1/events`, { headers: { authorization: `Bearer ${hubs[2]!.apiKey}` }, signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const seen = (pattern: RegExp) =>
      (async () => {
        while (!pattern.test(text)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the event stream ended before ${pattern}: ${text}`);
          text += new TextDecoder().decode(value);
        }
      })();
    try {
      await seen(/event: hello/);
      await server.expose('live', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
      await Promise.race([seen(/event: service\ndata: \{"name":"live","online":true/), new Promise((_, reject) => setTimeout(() => reject(new Error(`no event for "live": ${text}`)), 10_000))]);
      await server.unexpose('live');
      await Promise.race([seen(/event: service\ndata: \{"name":"live","online":false/), new Promise((_, reject) => setTimeout(() => reject(new Error(`no offline event: ${text}`)), 10_000))]);
    } finally {
      controller.abort();
    }
  });

  test('a public link served by hub 2 to a service on hub 1, revoked through hub 3: the open response is cut at once, new requests get 410', async (t) => {
    // An HTTP service that answers / with a body that never ends (a chunk every 100 ms).
    const web: Server = createHttpServer((req, res) => {
      if (req.url === '/ping') return void res.end('pong');
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 100);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    try {
      await server.expose('web', `127.0.0.1:${(web.address() as { port: number }).port}`, { checkIntervalMs: 0, protocol: 'http' });
      await eventually(async () => {
        const listed = await api<{ services: Array<{ name: string; online: boolean }> }>(hubs[1]!, '/v1/services');
        assert.ok(listed.body.services.some((s) => s.name === 'web' && s.online));
      }, 10_000, 100);
      const created = await api<{ link: { id: string }; token: string }>(hubs[1]!, '/v1/links', { method: 'POST', body: JSON.stringify({ service: 'web' }) });
      assert.equal(created.status, 201);
      const linkUrl = `${hubs[1]!.url}/l/${created.body.token}`;
      assert.equal(await (await fetch(`${linkUrl}/ping`)).text(), 'pong');

      // A response in progress through hub 2: it has started, and never ends by itself.
      const ended = new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${linkUrl}/`, (res) => {
          res.on('data', () => undefined);
          res.on('error', () => undefined);
          res.on('close', () => resolve(performance.now()));
        });
        req.on('error', () => resolve(performance.now()));
        req.end();
        setTimeout(() => reject(new Error('the response through hub 2 was not cut within 10 s of the revocation')), 10_000).unref();
      });
      await new Promise((r) => setTimeout(r, 500));

      const revokedAt = performance.now();
      const revoked = await api(hubs[2]!, `/v1/links/${created.body.link.id}`, { method: 'DELETE' });
      assert.equal(revoked.status, 204);
      const tookMs = (await ended) - revokedAt;
      t.diagnostic(`the response through hub 2 ended ${Math.round(tookMs)} ms after the revocation through hub 3`);
      // Before this hub learnt it over NATS, it would have gone on until its sweep or for ever: a second is plenty.
      assert.ok(tookMs < 1_000, `${Math.round(tookMs)} ms`);
      // Hub 2 refuses the link at once, not after its cache's 5 s.
      const after = await fetch(`${linkUrl}/ping`);
      assert.equal(after.status, 410);
    } finally {
      web.closeAllConnections();
      await new Promise((r) => web.close(r));
    }
  });

  test('a hub TCP port allocated through hub 1 is served by hubs 2 and 3 at once, and released on all of them', async () => {
    const info = await server.expose('port-echo', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0, hubPort: true });
    const port = info.hubPort!;
    assert.ok(port >= 24000 && port <= 24099, `a port of hub 1's range: ${port}`);
    for (const host of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
      await eventually(async () => assert.equal((await roundTrip(port, `via ${host}\n`, 2000, host)).toString(), `via ${host}\n`), 10_000, 100);
    }
    await server.unexpose('port-echo');
    for (const host of ['127.0.0.2', '127.0.0.3']) {
      await eventually(
        async () => assert.equal(await connect(port, host).then((s) => (s.destroy(), 'open'), (err: NodeJS.ErrnoException) => err.code), 'ECONNREFUSED'),
        10_000,
        100,
      );
    }
  });

  let cliEchoPort = 0;
  test('connect up --hub a,c: the CLI keeps the list in config.json and exposes through hub 1; hub 2 reaches it', async () => {
    cliHome = await enrolAgent({ url: `${hubs[0]!.url},${hubs[2]!.url}`, apiKey: hubs[0]!.apiKey }, { label: 'cli-server' });
    const config = JSON.parse(readFileSync(`${cliHome.home}/config.json`, 'utf8')) as { hubUrl: string; hubUrls?: string[] };
    assert.equal(config.hubUrl, hubs[0]!.url);
    assert.deepEqual(config.hubUrls, [hubs[2]!.url]);
    procs.push(await cliHome.expose(`127.0.0.1:${echo.port}`, 'cli-echo', ['--check-interval', '0']));
    await eventually(async () => {
      const listed = await api<{ services: Array<{ name: string; online: boolean }> }>(hubs[1]!, '/v1/services');
      assert.ok(listed.body.services.some((s) => s.name === 'cli-echo' && s.online));
    }, 10_000, 100);
    cliEchoPort = (await laptop.reach('cli-echo', { port: 0 })).port;
    assert.equal((await roundTrip(cliEchoPort, 'to the CLI agent\n')).toString(), 'to the CLI agent\n');
  });

  test('hub 1 killed under traffic: the stream through it ends, the exposing agent moves on, new streams work within seconds', async (t) => {
    // A reach session opened on hub 1 (a tunnels row), which hub 1 cannot close when it dies.
    await server.reach('echo', { port: 0 });
    const hub1 = String((await hubs[0]!.proc.waitFor((l) => typeof l.namespace === 'string', 5_000, 'hub 1 joining NATS')).hub);
    const openOn1 = async () => (await query<{ n: string }>(`select count(*) as n from tunnels where hub_id = '${hub1}' and closed_at is null`, database.url))[0]!.n;
    assert.equal(await openOn1(), '1');
    // A transfer in flight from the laptop (hub 2) to the server (hub 1) when hub 1 dies.
    const socket = await connect(bulkPort);
    const inFlight = hashExchange(socket, 1024 * MiB, 3).then(
      () => 'completed',
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = performance.now();
    await hubs[0]!.proc.kill();
    // New streams, tried from the moment of the kill: they work once the exposing agent is on another hub.
    const recovered = eventually(async () => assert.equal((await roundTrip(echoPort, 'after the crash\n', 1000)).toString(), 'after the crash\n'), 20_000, 50).then(
      () => performance.now() - killedAt,
    );
    // The stream in flight ends when hub 2 finds hub 1 silent (DEAD_AFTER_MS), or sooner.
    const ended = await Promise.race([inFlight, new Promise<string>((r) => setTimeout(() => r('still open after 15 s'), 15_000))]);
    const endedAfter = performance.now() - killedAt;
    assert.notEqual(ended, 'still open after 15 s', 'a stream through a dead hub must end, not hang');
    assert.notEqual(ended, 'completed');
    const recoveredAfter = await recovered;
    t.diagnostic(`the transfer through the killed hub ended with ${ended} after ${Math.round(endedAfter)} ms`);
    t.diagnostic(`new streams worked ${Math.round(recoveredAfter)} ms after hub 1 was killed`);
    assert.notEqual(hubOf('db-server'), hubs[0]!.url);
    // The CLI agent moved to hub 3, the next of its list, and is reached from hub 2 again.
    await eventually(async () => assert.equal((await roundTrip(cliEchoPort, 'CLI agent moved\n', 1000)).toString(), 'CLI agent moved\n'), 20_000, 50);
    // The hubs that found hub 1 dead closed its tunnel.
    await eventually(async () => assert.equal(await openOn1(), '0'), 10_000, 200);
    // Nothing stored was lost: the remaining hubs still know every agent, and a fresh checked transfer works.
    const listed = await api<{ agents: Array<{ label: string }> }>(hubs[1]!, '/v1/agents');
    assert.deepEqual(listed.body.agents.map((a) => a.label).sort(), ['cli-server', 'db-server', 'laptop', 'third'], 'every agent but the revoked one');
    const result = await hashExchange(await connect(bulkPort), 16 * MiB, 5);
    assert.equal(result.serverDigestOfUpload, result.uploadDigest);
    assert.equal(result.downloadDigest, expectedDigest(16 * MiB, 7));
  });
});
