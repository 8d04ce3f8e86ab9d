/** Hub operations on real sockets: /readyz, /metrics (content and access), TRUST_PROXY on and off, the drain. */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { FrameType, PROTOCOL_VERSION, decodeFrame, encodeJsonFrame, parseGoAway, parseHubMessage } from '@private-connect/protocol';
import { Agent } from '@private-connect/sdk';
import { loadConfig } from '../src/config.js';
import { startHub } from '../src/hub.js';
import { createLogger } from '../src/logger.js';
import { DAY, eventually, startTestHub, type TestHub } from './support/test-hub.js';
import { TEST_POSTGRES_URL, admin } from './support/test-database.js';
import { Writable } from 'node:stream';

interface Answer {
  status: number;
  text: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: unknown, host = '127.0.0.1'): Promise<Answer> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, method, path, headers: { ...headers, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** The value of one sample of /metrics text, e.g. sample(text, 'connect_relay_bytes_total', 'direction="to_service"'). */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  assert.ok(line, `no sample ${name}{${labels}} in\n${text.split('\n').filter((l) => l.startsWith('connect_')).join('\n')}`);
  return Number(line.split(' ').pop());
}

/** Opens the agent WebSocket with extra headers; resolves with the welcome, or the HTTP status of a refusal. */
function upgrade(port: number, token: string, headers: Record<string, string> = {}): Promise<{ status: number; ws?: WebSocket; frames: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const frames: Buffer[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/agent`, { headers: { authorization: `Bearer ${token}`, ...headers } });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, frames });
    });
    ws.on('error', reject);
    ws.on('open', () => ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'test', label: 'ops' } })));
    ws.on('message', (data: Buffer) => {
      frames.push(data);
      const frame = decodeFrame(data);
      if (frame.type === FrameType.CONTROL && parseHubMessage(frame.payload).t === 'welcome') resolve({ status: 101, ws, frames });
    });
  });
}

function echoServer(): Promise<Server> {
  const server = createServer((socket) => socket.pipe(socket));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const addr of list ?? []) if (addr.family === 'IPv4' && !addr.internal) return addr.address;
  }
  return undefined;
}

async function auditIps(t: TestHub, action: string): Promise<string[]> {
  const rows = await t.hub.db.withSystem((tx) => tx.query<{ ip: string }>('select ip from audit_log where action = $1 order by id', [action]));
  return rows.map((r) => r.ip);
}

describe('configuration of TLS, TRUST_PROXY, METRICS_TOKEN and SHUTDOWN_GRACE_MS', () => {
  const base = { HUB_PORT: '0' };
  test('reads TRUST_PROXY as off, true, a hop count or a list of addresses and CIDRs', () => {
    assert.equal(loadConfig(base).trustProxy, false);
    assert.equal(loadConfig({ ...base, TRUST_PROXY: 'false' }).trustProxy, false);
    assert.equal(loadConfig({ ...base, TRUST_PROXY: 'true' }).trustProxy, true);
    assert.equal(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy, 2);
    assert.deepEqual(loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/8, ::1,loopback' }).trustProxy, ['10.0.0.0/8', '::1', 'loopback']);
  });

  test('refuses a TRUST_PROXY entry that is no address, and a prefix too long for its family', () => {
    assert.throws(() => loadConfig({ ...base, TRUST_PROXY: 'proxy.example.com' }), /^ConfigError: TRUST_PROXY: "proxy\.example\.com" is not an address or CIDR/);
    assert.throws(() => loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/33' }), /TRUST_PROXY/);
  });

  test('wants TLS_CERT and TLS_KEY together, a METRICS_TOKEN of 16+ characters, and a duration for SHUTDOWN_GRACE_MS', () => {
    assert.throws(() => loadConfig({ ...base, TLS_KEY: '/k.pem' }), /^ConfigError: TLS_CERT: TLS_CERT and TLS_KEY go together/);
    assert.throws(() => loadConfig({ ...base, METRICS_TOKEN: 'short' }), /^ConfigError: METRICS_TOKEN:/);
    assert.throws(() => loadConfig({ ...base, SHUTDOWN_GRACE_MS: 'soon' }), /^ConfigError: SHUTDOWN_GRACE_MS:/);
    assert.equal(loadConfig(base).shutdownGraceMs, 10_000);
    assert.equal(loadConfig({ ...base, SHUTDOWN_GRACE_MS: '30s' }).shutdownGraceMs, 30_000);
  });

  test('NATS_URL: unset is a hub alone; set, it needs DATABASE_URL (the embedded database belongs to one hub) and a nats:// URL', () => {
    assert.equal(loadConfig(base).natsUrl, undefined);
    const pgUrl = { ...base, DATABASE_URL: 'postgres://u@db:5432/connect' };
    assert.equal(loadConfig({ ...pgUrl, NATS_URL: 'nats://127.0.0.1:4222' }).natsUrl, 'nats://127.0.0.1:4222');
    assert.throws(() => loadConfig({ ...base, NATS_URL: 'nats://127.0.0.1:4222' }), /^ConfigError: NATS_URL: hubs of a cluster share one PostgreSQL: set DATABASE_URL too/);
    assert.throws(() => loadConfig({ ...pgUrl, NATS_URL: 'http://127.0.0.1:4222' }), /^ConfigError: NATS_URL: must look like nats:\/\/host:4222/);
  });
});

describe('/readyz and /healthz', () => {
  test('/readyz answers 200 once the hub runs; while draining it answers 503 and /healthz still 200', async () => {
    const t = await startTestHub();
    try {
      const ready = await call(t.hub.port, 'GET', '/readyz');
      assert.equal(ready.status, 200, ready.text);
      assert.deepEqual(ready.json(), { ready: true, state: 'ready' });
      const draining = t.hub.drain(500);
      const notReady = await call(t.hub.port, 'GET', '/readyz');
      assert.equal(notReady.status, 503);
      assert.equal(notReady.json().state, 'draining');
      assert.match(notReady.json().reason, /shutting down/);
      assert.equal((await call(t.hub.port, 'GET', '/healthz')).status, 200, 'liveness is not readiness');
      await draining;
    } finally {
      await t.close();
    }
  });

  test('/readyz answers 503 naming the database while PostgreSQL is unreachable, and 200 once it is back', async (ctx) => {
    if (!(await reachable(5432))) return ctx.skip('no PostgreSQL on 127.0.0.1:5432');
    const name = `pc_ready_${randomBytes(6).toString('hex')}`;
    await admin(`create database ${name}`);
    // The hub reaches PostgreSQL through a TCP relay this test can cut and restore (the real server stays up).
    const relay = await tcpRelay(5432);
    const url = new URL(TEST_POSTGRES_URL);
    url.port = String(relay.port);
    url.pathname = `/${name}`;
    const config = loadConfig({ HUB_PORT: '0', WEB_PORT: 'off', HUB_HOST: '127.0.0.1', DATABASE_URL: url.href, HUB_TCP_PORT_RANGE: '24900-24901' });
    const hub = await startHub(config, { logger: createLogger('fatal', new Writable({ write: (_c, _e, cb) => cb() })) });
    try {
      assert.equal((await call(hub.port, 'GET', '/readyz')).status, 200);
      await relay.cut();
      const down = await call(hub.port, 'GET', '/readyz');
      assert.equal(down.status, 503, down.text);
      assert.equal(down.json().state, 'ready');
      assert.match(down.json().reason, /^the database does not answer: /);
      await relay.restore();
      await eventually(async () => (await call(hub.port, 'GET', '/readyz')).status === 200);
    } finally {
      await hub.close();
      await relay.cut();
      await admin(`drop database if exists ${name} with (force)`);
    }
  });
});

describe('/metrics after real traffic', () => {
  let t: TestHub;
  let echo: Server;
  const agents: Agent[] = [];

  before(async () => {
    t = await startTestHub(new Date('2030-01-01T00:00:00Z'), { HUB_RATE_LIMIT_UPGRADE_FAILURES: '1/1m', HUB_RATE_LIMIT_DEVICE_IP: '1/1m' });
    echo = await echoServer();
  });

  after(async () => {
    for (const agent of agents) await agent.close();
    echo?.close();
    await t?.close();
  });

  test('counts agents online, streams open, bytes each way and the stream open latency', async () => {
    const exposer = new Agent({ hubUrl: t.hub.url, token: (await t.enrol('server')).token, label: 'server' });
    const reacher = new Agent({ hubUrl: t.hub.url, token: (await t.enrol('laptop')).token, label: 'laptop' });
    agents.push(exposer, reacher);
    await exposer.expose('echo', `127.0.0.1:${portOf(echo)}`);
    const reach = await reacher.reach('echo', { port: 0 });
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect(reach.port, '127.0.0.1', () => resolve(s)).on('error', reject);
    });
    try {
      const payload = Buffer.alloc(10_000, 7);
      const back = new Promise<void>((resolve) => {
        let got = 0;
        socket.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= payload.length) resolve();
        });
      });
      socket.write(payload);
      await back;
      const text = (await call(t.hub.port, 'GET', '/metrics')).text;
      assert.equal(sample(text, 'connect_agents_connected'), 2);
      assert.equal(sample(text, 'connect_streams_open'), 1);
      assert.ok(sample(text, 'connect_relay_bytes_total', 'direction="to_service"') >= payload.length);
      assert.ok(sample(text, 'connect_relay_bytes_total', 'direction="from_service"') >= payload.length);
      assert.equal(sample(text, 'connect_stream_open_seconds_count'), 1);
      assert.equal(sample(text, 'connect_stream_open_seconds_bucket', 'le="+Inf"'), 1);
      assert.ok(sample(text, 'connect_stream_open_seconds_sum') > 0);
    } finally {
      socket.destroy();
    }
    await eventually(async () => sample((await call(t.hub.port, 'GET', '/metrics')).text, 'connect_streams_open') === 0);
  });

  test('counts refused credentials by reason: bad token, expired, revoked, rate limited', async () => {
    const failures = async (reason: string) => sample((await call(t.hub.port, 'GET', '/metrics')).text, 'connect_auth_failures_total', `reason="${reason}"`);
    const before = { bad: await failures('bad_token'), expired: await failures('expired'), revoked: await failures('revoked'), limited: await failures('rate_limited') };

    assert.equal((await call(t.hub.port, 'GET', '/v1/me', { authorization: `Bearer pc_${'x'.repeat(32)}` })).status, 401);
    assert.equal(await failures('bad_token'), before.bad + 1);

    const revoked = await t.enrol('to-revoke');
    assert.equal((await call(t.hub.port, 'DELETE', `/v1/agents/${revoked.agentId}`, { authorization: `Bearer ${t.apiKey}` })).status, 204);
    assert.equal((await call(t.hub.port, 'GET', '/v1/me', { authorization: `Bearer ${revoked.token}` })).status, 401);
    assert.equal(await failures('revoked'), before.revoked + 1);

    const expiring = await t.enrol('to-expire');
    t.clock.advance(31 * DAY);
    const expired = await call(t.hub.port, 'GET', '/v1/me', { authorization: `Bearer ${expiring.token}` });
    assert.equal(expired.json().error.code, 'TOKEN_EXPIRED');
    assert.equal(await failures('expired'), before.expired + 1);

    // HUB_RATE_LIMIT_UPGRADE_FAILURES=1/1m: the second refused upgrade from this address is rate limited.
    assert.equal((await upgrade(t.hub.port, 'f'.repeat(64))).status, 401);
    assert.equal((await upgrade(t.hub.port, 'f'.repeat(64))).status, 429);
    assert.equal(await failures('rate_limited'), before.limited + 1);
    // An HTTP rate limit (HUB_RATE_LIMIT_DEVICE_IP=1/1m) counts the same way.
    assert.equal((await call(t.hub.port, 'POST', '/v1/device/code', {}, { label: 'one' })).status, 200);
    assert.equal((await call(t.hub.port, 'POST', '/v1/device/code', {}, { label: 'two' })).status, 429);
    assert.equal(await failures('rate_limited'), before.limited + 2);
  });
});

describe('/metrics access', () => {
  test('without METRICS_TOKEN: loopback clients only, and not a request a local proxy forwarded', async () => {
    const t = await startTestHub(undefined, { HUB_HOST: '0.0.0.0' });
    try {
      assert.equal((await call(t.hub.port, 'GET', '/metrics')).status, 200);
      const forwarded = await call(t.hub.port, 'GET', '/metrics', { 'x-forwarded-for': '203.0.113.9' });
      assert.equal(forwarded.status, 403);
      assert.match(forwarded.json().error.message, /METRICS_TOKEN/);
      const external = externalAddress();
      if (external) assert.equal((await call(t.hub.port, 'GET', '/metrics', {}, undefined, external)).status, 403, `from ${external}`);
    } finally {
      await t.close();
    }
  });

  test('with METRICS_TOKEN: only a request bearing that token, from anywhere', async () => {
    const token = randomBytes(24).toString('base64url');
    const t = await startTestHub(undefined, { HUB_HOST: '0.0.0.0', METRICS_TOKEN: token });
    try {
      assert.equal((await call(t.hub.port, 'GET', '/metrics')).status, 401);
      assert.equal((await call(t.hub.port, 'GET', '/metrics', { authorization: 'Bearer not-the-token-at-all' })).status, 401);
      const ok = await call(t.hub.port, 'GET', '/metrics', { authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200);
      assert.match(ok.text, /^connect_agents_connected 0$/m);
      const external = externalAddress();
      if (external) assert.equal((await call(t.hub.port, 'GET', '/metrics', { authorization: `Bearer ${token}` }, undefined, external)).status, 200);
    } finally {
      await t.close();
    }
  });
});

describe('TRUST_PROXY', () => {
  test('off (default): X-Forwarded-For changes neither the recorded address nor the rate-limit key', async () => {
    const t = await startTestHub(undefined, { HUB_RATE_LIMIT_UPGRADE_FAILURES: '1/1m' });
    try {
      const enrolled = await call(t.hub.port, 'POST', '/v1/agents/enroll', { authorization: `Bearer ${t.apiKey}`, 'x-forwarded-for': '203.0.113.7' }, { label: 'spoofer' });
      assert.equal(enrolled.status, 201);
      assert.deepEqual(await auditIps(t, 'agent.enroll'), ['127.0.0.1']);
      for (const [i, forwarded] of ['198.51.100.9', '203.0.113.50'].entries()) {
        const socket = await upgrade(t.hub.port, enrolled.json().token, { 'x-forwarded-for': forwarded });
        assert.equal(socket.status, 101);
        socket.ws!.close();
        await eventually(async () => (await auditIps(t, 'agent.connect')).length === i + 1);
      }
      assert.deepEqual(await auditIps(t, 'agent.connect'), ['127.0.0.1', '127.0.0.1']);
      assert.deepEqual(await auditIps(t, 'agent.ip_changed'), []);
      // Refused upgrades are counted per socket address: a new X-Forwarded-For does not reset the count.
      assert.equal((await upgrade(t.hub.port, 'f'.repeat(64), { 'x-forwarded-for': '192.0.2.1' })).status, 401);
      assert.equal((await upgrade(t.hub.port, 'f'.repeat(64), { 'x-forwarded-for': '192.0.2.2' })).status, 429);
    } finally {
      await t.close();
    }
  });

  test('on: the address a trusted proxy forwards is recorded for HTTP and the agent WebSocket, and keys the limits', async () => {
    const t = await startTestHub(undefined, { TRUST_PROXY: 'loopback', HUB_RATE_LIMIT_UPGRADE_FAILURES: '1/1m' });
    try {
      const enrolled = await call(t.hub.port, 'POST', '/v1/agents/enroll', { authorization: `Bearer ${t.apiKey}`, 'x-forwarded-for': '203.0.113.7' }, { label: 'behind-proxy' });
      assert.equal(enrolled.status, 201);
      assert.deepEqual(await auditIps(t, 'agent.enroll'), ['203.0.113.7']);
      // The client is the first untrusted hop from the right: 198.51.100.9 (what it says about 192.0.2.77 is its claim).
      for (const forwarded of ['192.0.2.77, 198.51.100.9', '203.0.113.50']) {
        const socket = await upgrade(t.hub.port, enrolled.json().token, { 'x-forwarded-for': forwarded });
        assert.equal(socket.status, 101);
        socket.ws!.close();
        await eventually(async () => (await auditIps(t, 'agent.connect')).length > 0 && (await auditIps(t, 'agent.connect')).at(-1) === forwarded.split(', ').pop());
      }
      assert.deepEqual(await auditIps(t, 'agent.connect'), ['198.51.100.9', '203.0.113.50']);
      assert.deepEqual(await auditIps(t, 'agent.ip_changed'), ['203.0.113.50']);
      assert.equal((await upgrade(t.hub.port, 'f'.repeat(64), { 'x-forwarded-for': '192.0.2.1' })).status, 401);
      assert.equal((await upgrade(t.hub.port, 'f'.repeat(64), { 'x-forwarded-for': '192.0.2.1' })).status, 429);
      assert.equal((await upgrade(t.hub.port, 'f'.repeat(64), { 'x-forwarded-for': '192.0.2.2' })).status, 401, 'another client behind the proxy has its own count');
    } finally {
      await t.close();
    }
  });

  test('a peer outside the trusted list cannot set the address', async () => {
    const t = await startTestHub(undefined, { TRUST_PROXY: '10.0.0.0/8' });
    try {
      const enrolled = await call(t.hub.port, 'POST', '/v1/agents/enroll', { authorization: `Bearer ${t.apiKey}`, 'x-forwarded-for': '203.0.113.7' }, { label: 'direct' });
      assert.equal(enrolled.status, 201);
      assert.deepEqual(await auditIps(t, 'agent.enroll'), ['127.0.0.1']);
    } finally {
      await t.close();
    }
  });
});

describe('drain', () => {
  test('sends every agent a GOAWAY with reconnectMs, refuses new agents with 503, and closes idle connections', async () => {
    const t = await startTestHub();
    try {
      const { token } = await t.enrol('drained');
      const socket = await upgrade(t.hub.port, token);
      const closed = new Promise<number>((resolve) => socket.ws!.on('close', (code) => resolve(code)));
      const drained = t.hub.drain(2000);
      assert.equal((await upgrade(t.hub.port, token)).status, 503);
      assert.equal(await closed, 1001);
      const goaway = socket.frames.map((f) => decodeFrame(f)).find((f) => f.type === FrameType.GOAWAY);
      assert.ok(goaway, 'a GOAWAY frame arrived before the close');
      const message = parseGoAway(goaway.payload);
      assert.equal(message.code, 'SHUTTING_DOWN');
      assert.ok(message.reconnectMs > 0 && message.reconnectMs <= 60_000);
      assert.deepEqual(await drained, { streamsLeft: 0 });
    } finally {
      await t.close();
    }
  });

  test('counts a stream the hub opened itself (a public link kept alive) as one stream left, not half of one', async () => {
    const t = await startTestHub();
    const app = createHttpServer((_req, res) => res.end('ok'));
    const keepAlive = new HttpAgent({ keepAlive: true });
    let agent: Agent | undefined;
    try {
      const appPort = await new Promise<number>((resolve) => app.listen(0, '127.0.0.1', () => resolve((app.address() as AddressInfo).port)));
      agent = new Agent({ hubUrl: t.hub.url, token: (await t.enrol('web')).token, label: 'web' });
      await agent.expose('web', `127.0.0.1:${appPort}`, { protocol: 'http' });
      const created = await t.http('POST', '/v1/links', { token: t.apiKey, body: { service: 'web', expiresIn: '1h' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const status = await new Promise<number>((resolve, reject) => {
        httpRequest(created.body.url, { agent: keepAlive }, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject).end();
      });
      assert.equal(status, 200);
      // The client keeps its connection, and with it the stream to the app, past the grace period.
      assert.deepEqual(await t.hub.drain(300), { streamsLeft: 1 });
    } finally {
      keepAlive.destroy();
      await agent?.close();
      app.close();
      await t.close();
    }
  });
});

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** A TCP relay to 127.0.0.1:`target` on a fixed port: `cut()` closes it and every connection, `restore()` reopens it. */
async function tcpRelay(target: number): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = netConnect(target, '127.0.0.1');
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => socket.destroy());
        }
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  server = await listen(0);
  const port = portOf(server);
  return {
    port,
    async cut() {
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async restore() {
      server = await listen(port);
    },
  };
}
