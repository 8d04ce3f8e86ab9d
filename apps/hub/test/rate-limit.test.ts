/**
 * Rate limits, over real sockets: the request past a limit gets 429 with Retry-After and RATE_LIMITED; another
 * address, email or credential is not affected; after the window the same caller is served again. Other client
 * addresses are real: requests leave from 127.0.0.2, 127.0.0.3, ... to the hub on 127.0.0.1.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { WebSocket } from 'ws';
import { loadConfig, parseRateLimit, ConfigError, type RateLimits } from '../src/config.js';
import { installErrorHandler } from '../src/api/error-handler.js';
import { installRateLimits } from '../src/api/rate-limits.js';
import { startHub, type Hub } from '../src/hub.js';
import { createLogger } from '../src/logger.js';
import { createApiKey } from '../src/store/bootstrap.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** An HTTP request from a chosen local address. */
function request(url: string, path: string, options: { from?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${path}`,
      {
        method: options.method ?? (payload ? 'POST' : 'GET'),
        localAddress: options.from ?? '127.0.0.1',
        headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function assertLimited(answer: Answer, what: string): void {
  assert.equal(answer.status, 429, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.error?.code, 'RATE_LIMITED', what);
  assert.match(answer.body.error?.message ?? '', /too many .*try again in \d+ s/, what);
  const retryAfter = Number(answer.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `${what}: Retry-After ${answer.headers['retry-after']}`);
}

const WINDOW = 1500;
const limits = (overrides: Partial<RateLimits>): RateLimits => ({ ...loadConfig({}).rateLimits, ...overrides });

describe('rate limit configuration', () => {
  test('reads N/duration from HUB_RATE_LIMIT_* and names the variable when it is wrong', () => {
    assert.deepEqual(loadConfig({ HUB_RATE_LIMIT_API: '3/2s' }).rateLimits.api, { max: 3, windowMs: 2000 });
    assert.deepEqual(loadConfig({}).rateLimits.loginPerEmail, { max: 5, windowMs: 60_000 });
    assert.deepEqual(loadConfig({}).rateLimits.api, { max: 600, windowMs: 60_000 });
    for (const bad of ['600', '0/1m', 'x/1m', '5/soon']) {
      assert.throws(() => loadConfig({ HUB_RATE_LIMIT_LOGIN_IP: bad }), (err: unknown) => err instanceof ConfigError && err.message.startsWith('HUB_RATE_LIMIT_LOGIN_IP:'), bad);
    }
    assert.deepEqual(parseRateLimit('5/500ms', 'X'), { max: 5, windowMs: 500 });
  });
});

describe('login and device-code limits', () => {
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    app = Fastify();
    installErrorHandler(app);
    await installRateLimits(
      app,
      limits({ loginPerEmail: { max: 3, windowMs: WINDOW }, loginPerIp: { max: 5, windowMs: WINDOW }, devicePerIp: { max: 2, windowMs: WINDOW } }),
    );
    // Stand-ins for the auth routes: the limits are chosen by path (or route config) when a route is registered.
    const accepted = async (_req: unknown, reply: { status(code: number): void }) => {
      reply.status(202);
      return { ok: true };
    };
    app.post('/v1/auth/login', accepted);
    app.post('/v1/device/code', accepted);
    app.post('/v1/custom-sign-in', { config: { limit: 'login' } }, accepted);
    app.get('/healthz', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  after(() => app?.close());

  test('the fourth login for one email within the window gets 429; another email and, after the window, the same one pass', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await request(url, '/v1/auth/login', { from: '127.0.0.2', body: { email: 'ann@example.com' } })).status, 202);
    assertLimited(await request(url, '/v1/auth/login', { from: '127.0.0.2', body: { email: 'ann@example.com' } }), 'same email');
    // Per email, whatever the address: case and spaces do not make a new email.
    assertLimited(await request(url, '/v1/auth/login', { from: '127.0.0.3', body: { email: ' ANN@example.com' } }), 'same email, other IP');
    assert.equal((await request(url, '/v1/auth/login', { from: '127.0.0.3', body: { email: 'bob@example.com' } })).status, 202, 'another email');
    await sleep(WINDOW + 200);
    assert.equal((await request(url, '/v1/auth/login', { from: '127.0.0.2', body: { email: 'ann@example.com' } })).status, 202, 'after the window');
  });

  test('one address trying many emails is stopped by the per-IP limit; another address is not', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await request(url, '/v1/auth/login', { from: '127.0.0.4', body: { email: `u${i}@example.com` } })).status, 202);
    assertLimited(await request(url, '/v1/auth/login', { from: '127.0.0.4', body: { email: 'fresh@example.com' } }), 'per IP');
    assert.equal((await request(url, '/v1/auth/login', { from: '127.0.0.5', body: { email: 'fresh@example.com' } })).status, 202);
  });

  test('device-code requests are limited per IP, and a route can opt in to the login limits by config', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await request(url, '/v1/device/code', { from: '127.0.0.6', body: {} })).status, 202);
    assertLimited(await request(url, '/v1/device/code', { from: '127.0.0.6', body: {} }), 'device');
    assert.equal((await request(url, '/v1/device/code', { from: '127.0.0.7', body: {} })).status, 202);

    for (let i = 0; i < 3; i++) assert.equal((await request(url, '/v1/custom-sign-in', { from: '127.0.0.8', body: { email: 'cy@example.com' } })).status, 202);
    assertLimited(await request(url, '/v1/custom-sign-in', { from: '127.0.0.8', body: { email: 'cy@example.com' } }), 'config: login');
  });

  test('health checks are never limited', async () => {
    for (let i = 0; i < 30; i++) assert.equal((await request(url, '/healthz', { from: '127.0.0.6' })).status, 200);
  });
});

describe(`API and agent upgrade limits on a hub (${dbKind})`, () => {
  let testDb: TestDatabase;
  let hub: Hub;
  let dataDir: string;
  let key1: string;
  let key2: string;

  before(async () => {
    testDb = await createTestDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'pc-rate-'));
    const config = loadConfig({
      HUB_PORT: '0',
      WEB_PORT: '0',
      HUB_HOST: '127.0.0.1',
      HUB_DATA_DIR: dataDir,
      HUB_RATE_LIMIT_API: `5/${WINDOW}ms`,
      HUB_RATE_LIMIT_UPGRADE_FAILURES: `3/${WINDOW}ms`,
    });
    hub = await startHub(config, { db: testDb.db, logger: createLogger('silent') });
    key1 = hub.bootstrap!.apiKey;
    key2 = await createApiKey(testDb.db, hub.bootstrap!.workspaceId, 'second');
  });
  after(async () => {
    await hub?.close();
    await testDb?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('the sixth API request with one key gets 429; another key is unaffected; after the window the key works', async () => {
    const auth = (key: string) => ({ authorization: `Bearer ${key}` });
    for (let i = 0; i < 5; i++) assert.equal((await request(hub.url, '/v1/services', { headers: auth(key1) })).status, 200);
    const refused = await request(hub.url, '/v1/services', { headers: auth(key1) });
    assertLimited(refused, 'per key');
    assert.ok(!JSON.stringify(refused.body).includes(key1));
    // Same address, another key: its own budget.
    assert.equal((await request(hub.url, '/v1/services', { headers: auth(key2) })).status, 200);
    await sleep(WINDOW + 200);
    assert.equal((await request(hub.url, '/v1/services', { headers: auth(key1) })).status, 200);
  });

  test('requests without credentials are limited per IP before authentication', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await request(hub.url, '/v1/agents', { from: '127.0.0.9' })).status, 401);
    assertLimited(await request(hub.url, '/v1/agents', { from: '127.0.0.9' }), 'no credentials');
    assert.equal((await request(hub.url, '/v1/agents', { from: '127.0.0.10' })).status, 401);
  });

  test('after three refused agent upgrades an address gets 429 even with a valid token; other addresses connect', async () => {
    const enrol = await request(hub.url, '/v1/agents/enroll', { headers: { authorization: `Bearer ${key2}` }, body: { label: 'rl' } });
    assert.equal(enrol.status, 201);
    const token = String(enrol.body.token);
    const wsUrl = hub.url.replace('http', 'ws') + '/v1/agent';
    const upgrade = (secret: string, from: string) =>
      new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
        const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${secret}` }, localAddress: from });
        ws.on('open', () => {
          ws.close();
          resolve({ status: 101, body: '' });
        });
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
        });
        ws.on('error', reject);
      });
    for (let i = 0; i < 3; i++) assert.equal((await upgrade('f'.repeat(64), '127.0.0.11')).status, 401);
    const blocked = await upgrade(token, '127.0.0.11');
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.retryAfter) >= 1, `Retry-After ${blocked.retryAfter}`);
    assert.equal((JSON.parse(blocked.body) as { error: { code: string } }).error.code, 'RATE_LIMITED');
    assert.equal((await upgrade(token, '127.0.0.12')).status, 101, 'another address');
    await sleep(WINDOW + 200);
    assert.equal((await upgrade(token, '127.0.0.11')).status, 101, 'after the window');
  });
});
