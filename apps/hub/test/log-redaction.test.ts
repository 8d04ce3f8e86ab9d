/**
 * Log redaction, end to end: a real hub logs to a capture stream while every kind of secret (API keys, agent tokens,
 * base64url session and link tokens, bearer tokens, cookies, client IPs) is pushed through every log path we can
 * trigger. None of the secrets may appear anywhere in the output; the masked forms must.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { FrameType, PROTOCOL_VERSION, decodeFrame, encodeFrame, encodeJsonFrame } from '@private-connect/protocol';
import { loadConfig, type HubConfig } from '../src/config.js';
import { startHub, type Hub } from '../src/hub.js';
import { createLogger, maskIp, redactSecrets } from '../src/logger.js';
import { printWelcome } from '../src/welcome.js';
import { createTestDatabase, dbKind, type TestDatabase } from './support/test-database.js';

/** A 256-bit base64url secret that contains a digit (as nearly all do). */
function base64urlSecret(): string {
  for (;;) {
    const s = randomBytes(32).toString('base64url');
    if (/[0-9]/.test(s)) return s;
  }
}

const fakeKey = 'pc_' + randomBytes(24).toString('base64url').replace(/[-_]/g, 'A').slice(0, 32);
const fakeToken = randomBytes(32).toString('hex');
const sessionToken = base64urlSecret();
const linkToken = base64urlSecret();
const opaqueBearer = `eyJ${randomBytes(12).toString('hex')}.sig${randomBytes(6).toString('hex')}`;
const cookieValue = `other=${randomBytes(8).toString('hex')}`;

function httpCall(url: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string; from?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: options.method ?? 'GET', headers: options.headers, localAddress: options.from }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Opens the agent WebSocket; resolves with the upgrade status (101 when it opened) and the socket if any. */
function upgrade(url: string, path: string, headers: Record<string, string>, from?: string): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws') + path, { headers, localAddress: from });
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    ws.on('error', reject);
  });
}

/** Resolves once the socket closes. */
const closed = (ws: WebSocket) => new Promise<void>((resolve) => (ws.readyState === ws.CLOSED ? resolve() : ws.on('close', () => resolve())));

/** Sends hello and waits for welcome. */
async function handshake(ws: WebSocket, agent: Record<string, string>): Promise<void> {
  const welcome = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer) => {
      if (decodeFrame(data).type === FrameType.CONTROL) resolve();
    }),
  );
  ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'test', ...agent } }));
  await welcome;
}

describe(`log redaction on a running hub (${dbKind})`, () => {
  let testDb: TestDatabase;
  let dataDir: string;
  let hub: Hub;
  let config: HubConfig;
  let output = '';
  let apiKey: string;
  let agentToken: string;

  const lines = () =>
    output
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    testDb = await createTestDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'pc-redact-'));
    config = loadConfig({ HUB_PORT: '0', WEB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
    const sink = new Writable({
      write(chunk: Buffer | string, _enc, callback) {
        output += chunk.toString();
        callback();
      },
    });
    hub = await startHub(config, { db: testDb.db, logger: createLogger('debug', sink) });
    apiKey = hub.bootstrap!.apiKey;
  });
  after(async () => {
    await hub?.close();
    await testDb?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('every log path is scrubbed of every secret and shows the masked forms', async () => {
    // The welcome (with the one-time bootstrap key) goes to its own stream, never to the logger.
    let welcome = '';
    printWelcome(hub, config, new Writable({ write: (c, _e, cb) => ((welcome += c.toString()), cb()) }));
    assert.ok(welcome.includes(apiKey), 'the welcome shows the bootstrap key once');

    // Enrol with secrets in the label and hostname: they reach the log when the agent connects.
    const enrolBody = JSON.stringify({ label: `db ${fakeKey}`, hostname: `h-${fakeToken}` });
    const enrol = await new Promise<{ token: string }>((resolve, reject) => {
      const req = http.request(`${hub.url}/v1/agents/enroll`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text) as { token: string }));
      });
      req.on('error', reject);
      req.end(enrolBody);
    });
    agentToken = enrol.token;
    assert.match(agentToken, /^[a-f0-9]{64}$/);

    // HTTP: refused requests carrying each kind of secret in headers, query and body, from other addresses.
    const refusals: Array<[string, Record<string, string>, string?]> = [
      ['/v1/services', { authorization: `Bearer ${fakeKey}` }],
      ['/v1/services', { authorization: `Bearer ${fakeToken}` }],
      ['/v1/agents', { authorization: `Bearer ${opaqueBearer}`, 'x-forwarded-for': '203.0.113.77, 2001:db8:85a3::8a2e:370:7334' }],
      ['/v1/me', { cookie: `pc_session=${sessionToken}; ${cookieValue}` }],
      [`/v1/services?token=${linkToken}&key=${fakeKey}`, { authorization: `Bearer ${linkToken}` }],
    ];
    for (const [path, headers] of refusals) assert.equal(await httpCall(hub.url, path, { headers, from: '127.0.0.2' }), 401, path);
    // An agent token may not enrol (403), and a broken JSON body with a secret in it (400).
    assert.equal(await httpCall(hub.url, '/v1/agents/enroll', { method: 'POST', headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' }, body: '{}' }), 403);
    assert.equal(
      await httpCall(hub.url, '/v1/agents/enroll', { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: `{"label": "${fakeKey} ${sessionToken}` }),
      400,
    );

    // WebSocket upgrades refused: wrong token, an API key, a wrong path with a token in it, a cookie.
    assert.equal((await upgrade(hub.url, '/v1/agent', { authorization: `Bearer ${fakeToken}` }, '127.0.0.3')).status, 401);
    assert.equal((await upgrade(hub.url, '/v1/agent', { authorization: `Bearer ${apiKey}` }, '127.0.0.3')).status, 403);
    assert.equal((await upgrade(hub.url, `/v1/agents/${agentToken}?token=${linkToken}`, { authorization: `Bearer ${agentToken}` }, '127.0.0.3')).status, 404);
    assert.equal((await upgrade(hub.url, '/v1/agent', { cookie: `pc_session=${sessionToken}` }, '127.0.0.3')).status, 401);

    // A connected agent whose hello carries secrets; then bad frames with secrets in their payloads.
    const good = await upgrade(hub.url, '/v1/agent', { authorization: `Bearer ${agentToken}` }, '127.0.0.4');
    assert.ok(good.ws);
    await handshake(good.ws, { label: `lbl ${fakeKey}`, hostname: `Bearer ${opaqueBearer}` });
    good.ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id: 1, op: 'resolve', args: { name: fakeToken } }));
    good.ws.send(encodeFrame(FrameType.CONTROL, 0, Buffer.from(`{"t":"req","id":2,"op":"${fakeKey}","args":{"token":"${sessionToken}"}}`)));
    await closed(good.ws);
    const text = await upgrade(hub.url, '/v1/agent', { authorization: `Bearer ${agentToken}` }, '127.0.0.4');
    text.ws!.send(`hello ${fakeKey} ${agentToken}`);
    await closed(text.ws!);

    // Errors and objects logged by hub code: messages, stacks, nested objects, child bindings, plain strings.
    hub.log.error({ err: new Error(`query failed for ${fakeKey} with token ${fakeToken} from 10.1.2.3`) }, 'unexpected error');
    hub.log.warn({ deep: { a: { b: [`Bearer ${opaqueBearer}`, { cookie: `pc_session=${sessionToken}` }, `sent pc_session=${sessionToken}; x=1`] } }, peer: '2001:db8:85a3::8a2e:370:7334' }, 'nested');
    hub.log.child({ token: agentToken, session: sessionToken, client: '198.51.100.23' }).info(`link ${hub.url}/auth/verify?token=${linkToken} for 192.168.1.20`);
    hub.log.info({ headers: { 'set-cookie': `pc_session=${sessionToken}; HttpOnly`, Cookie: cookieValue } }, `Set-Cookie: pc_session=${sessionToken}`);
    await sleep(300); // connect/disconnect logs are written after the socket events

    const secrets = {
      bootstrapKey: apiKey,
      fakeKey,
      agentToken,
      fakeToken,
      sessionToken,
      linkToken,
      opaqueBearer,
      cookieValue,
      ipv4: '203.0.113.77',
      ipv4b: '10.1.2.3',
      ipv4c: '198.51.100.23',
      ipv4d: '192.168.1.20',
      loopback2: '127.0.0.2',
      loopback4: '127.0.0.4',
      ipv6: '8a2e:370:7334',
    };
    for (const [name, secret] of Object.entries(secrets)) {
      assert.ok(!output.includes(secret), `${name} (${secret}) leaked into the log:\n${output.split('\n').filter((l) => l.includes(secret)).join('\n')}`);
      // Nor a long piece of it.
      if (secret.length >= 40) assert.ok(!output.includes(secret.slice(8, 28)), `part of ${name} leaked`);
    }

    // Every path above did log, and in masked form.
    const messages = lines().map((l) => l.msg);
    assert.ok(messages.filter((m) => m === 'request refused').length >= 7, 'HTTP refusals are logged');
    assert.ok(messages.filter((m) => m === 'agent connection refused').length >= 4, 'refused upgrades are logged');
    assert.ok(messages.includes('agent connected'));
    assert.ok(messages.includes('closing agent connection'), 'the bad frame is logged');
    for (const masked of ['pc_[REDACTED]', '[REDACTED_TOKEN]', 'Bearer [REDACTED]', 'pc_session=[REDACTED]', '?token=[REDACTED]', '203.0.x.x', '127.0.x.x', '10.1.x.x', '192.168.x.x', '198.51.x.x', '2001:db8:x:x']) {
      assert.ok(output.includes(masked), `expected ${masked} in the log`);
    }
    const connected = lines().find((l) => l.msg === 'agent connected')!;
    assert.equal(connected.ip, '127.0.x.x');
    assert.equal(connected.label, 'lbl pc_[REDACTED]');
    const refused = lines().find((l) => l.msg === 'request refused') as { req: { ip: string; url: string; headers: Record<string, string> } };
    assert.equal(refused.req.ip, '127.0.x.x');
    assert.equal(refused.req.headers.authorization, '[REDACTED]');
  });
});

describe('the hub\'s own listen addresses in its log', () => {
  test('are shown whole (the hub and web ports), while a client on the same address stays masked', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pc-own-addr-'));
    const testDb = await createTestDatabase();
    let output = '';
    const sink = new Writable({
      write(chunk: Buffer | string, _enc, callback) {
        output += chunk.toString();
        callback();
      },
    });
    const config = loadConfig({ HUB_PORT: '0', WEB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
    const hub = await startHub(config, { db: testDb.db, logger: createLogger('debug', sink) });
    try {
      const port = Number(new URL(hub.url).port);
      // A request the hub logs with the client's address (127.0.0.1 too, but a client's).
      assert.equal(await httpCall(hub.url, '/v1/services', { headers: { authorization: 'Bearer nope' } }), 401);
      await sleep(100);
      const lines = output.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const listening = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'));
      assert.equal(listening?.msg, `Server listening at http://127.0.0.1:${port}`);
      assert.equal(lines.find((l) => l.msg === 'hub listening')?.url, `http://127.0.0.1:${port}`);
      assert.equal(lines.find((l) => l.msg === 'web listening')?.url, hub.webUrl);
      const refused = lines.find((l) => l.msg === 'request refused') as { req: { ip: string } } | undefined;
      assert.equal(refused?.req.ip, '127.0.x.x', output);
    } finally {
      await hub.close();
      await testDb.dispose();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('redactSecrets keeps only the addresses it is given whole, with their port', () => {
    const keep = new Set(['127.0.0.1:3001', '[::1]:3001']);
    assert.equal(
      redactSecrets('at http://127.0.0.1:3001 and http://[::1]:3001 from 127.0.0.1 and 127.0.0.1:5555 and 10.0.0.1:3001', keep),
      'at http://127.0.0.1:3001 and http://[::1]:3001 from 127.0.x.x and 127.0.x.x:5555 and 10.0.x.x:3001',
    );
  });
});

describe('redactSecrets and maskIp', () => {
  test('keep times, UUIDs, paths and short words, and mask addresses of both families', () => {
    const line = '{"time":"2026-11-23T11:24:46.123Z","conn":"123e4567-e89b-12d3-a456-426614174000","msg":"listening on /v1/agent at 11:24:46","hostname":"node_modules"}';
    assert.equal(redactSecrets(line), line);
    assert.equal(redactSecrets('from ::1 and fe80::1ff:fe23:4567:890a'), 'from x and fe80:1ff:x:x');
    assert.equal(maskIp('192.168.1.20'), '192.168.x.x');
    assert.equal(maskIp('::ffff:10.0.0.7'), '10.0.x.x');
    assert.equal(redactSecrets(`Authorization: Bearer ${fakeToken}`), 'Authorization: Bearer [REDACTED]');
    assert.equal(redactSecrets(`key ${fakeKey}.`), 'key pc_[REDACTED].');
  });
});
