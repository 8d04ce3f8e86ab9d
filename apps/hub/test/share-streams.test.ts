/**
 * Streams through a share, with real agents (the SDK's Agent) and real TCP and HTTP services: the joining
 * workspace reaches `alias/service` and nothing else; the hub limits new TCP connections per minute and audits
 * each; the exposing agent applies methods, paths and the rate to HTTP requests and reports each one; revocation
 * cuts open streams at once, and expiry refuses new ones (and the sweep cuts the open ones).
 */

import assert from 'node:assert/strict';
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { ConnectError } from '@private-connect/protocol';
import type { CreatedShare } from '@private-connect/api';
import { Agent, type AgentEvent } from '@private-connect/sdk';
import { sweepShareStreams } from '../src/sharing/shares.js';
import { HOUR, eventually, startTestHub, type TestHub } from './support/test-hub.js';
import { dbKind } from './support/test-database.js';

const X_LABEL = 'owner-secret-agent';

function listen(server: net.Server | HttpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** Connects, sends `line`, resolves with the first answer (or '' when the connection is closed without one). */
function exchange(port: number, line: string): Promise<{ socket: net.Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('data', (d: Buffer) => resolve({ socket, answer: d.toString() }));
    socket.once('close', () => resolve({ socket, answer: '' }));
    socket.write(line);
  });
}

/** One HTTP request through a reach port: status, headers and body text. `path` is sent as written. */
function get(port: number, method: string, path: string, body?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe(`streams through a share (${dbKind})`, () => {
  let t: TestHub;
  let y: { workspaceId: string; apiKey: string };
  let owner: Agent;
  let reacher: Agent;
  const events: AgentEvent[] = [];
  const servers: Array<net.Server | HttpServer> = [];
  let echoPort = 0;
  let webPort = 0;

  const api = (apiKey: string, method: string, path: string, body?: unknown) => t.http(method, path, { token: apiKey, body });
  /** X shares `services`; Y joins as `alias`. */
  const shareWithY = async (alias: string, body: Record<string, unknown>): Promise<CreatedShare> => {
    const created = await api(t.apiKey, 'POST', '/v1/shares', { name: alias, expiresIn: '7d', ...body });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const joined = await api(y.apiKey, 'POST', '/v1/shares/join', { code: created.body.code });
    assert.equal(joined.status, 201, JSON.stringify(joined.body));
    return created.body as CreatedShare;
  };
  // Confirmed opens: a stream that sends its first bytes with the open is handed out before the hub's answer.
  const refusal = (name: string) =>
    reacher.connection.openStream(name, undefined, { confirmed: true }).then(
      (stream) => {
        stream.reset('STREAM_CLOSED', 'test');
        assert.fail(`${name} opened`);
      },
      (err: ConnectError) => err,
    );
  const accesses = async (shareId: string) => {
    await t.hub.sharing.access.flush();
    const answer = await api(t.apiKey, 'GET', '/v1/audit?action=share.access&limit=500');
    return (answer.body.events as Array<{ targetId: string; actorId: string; ip: string | null; metadata: any }>).filter((e) => e.targetId === shareId);
  };

  before(async () => {
    // The periodic share sweep stays out of the way: the expiry test runs the sweep itself and counts what it cut.
    t = await startTestHub(new Date('2030-01-01T00:00:00Z'), { LOG_LEVEL: 'warn', SHARE_SWEEP_MS: '1h' });
    y = await t.addWorkspace('workspace-y');
    const echo = net.createServer((s) => s.on('error', () => undefined).pipe(s));
    const web = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, url: req.url, body })));
    });
    new WebSocketServer({ server: web }).on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    servers.push(echo, web);
    [echoPort, webPort] = [await listen(echo), await listen(web)];
    owner = new Agent({ hubUrl: t.hub.url, token: (await t.enrol(X_LABEL)).token, label: X_LABEL });
    await owner.expose('echo', `127.0.0.1:${echoPort}`);
    await owner.expose('other', `127.0.0.1:${echoPort}`);
    await owner.expose('web', `127.0.0.1:${webPort}`, { protocol: 'http' });
    reacher = new Agent({ hubUrl: t.hub.url, token: (await t.enrol('y-laptop', y.apiKey)).token, onEvent: (e) => events.push(e) });
    await reacher.connection.ready();
  });

  after(async () => {
    await reacher?.close();
    await owner?.close();
    for (const server of servers) {
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    await t?.close();
  });

  test('the joining workspace reaches alias/service, and learns nothing of the owner but the share', async () => {
    await shareWithY('acme', { services: ['echo'] });
    const reach = await reacher.reach('acme/echo', { port: 0 });
    try {
      const { socket, answer } = await exchange(reach.port, 'hello through a share\n');
      assert.equal(answer, 'hello through a share\n');
      socket.destroy();
      const { service } = await reacher.connection.request('resolve', { name: 'acme/echo' });
      assert.equal(service.name, 'acme/echo');
      assert.equal(service.target, `shared:${echoPort}`);
      assert.ok(!JSON.stringify(service).includes(X_LABEL) && !JSON.stringify(service).includes('127.0.0.1'), JSON.stringify(service));
    } finally {
      await reach.close();
    }
  });

  test('an unshared service (by alias/name and by plain name) and an unknown alias answer like a missing name', async () => {
    const missing = await refusal('nobody/nothing');
    assert.equal(missing.code, 'SERVICE_NOT_FOUND');
    for (const name of ['acme/other', 'other', 'acme/web', 'nobody/echo', 'acme/Bad Name']) {
      const err = await refusal(name);
      assert.deepEqual([err.code, err.message], ['SERVICE_NOT_FOUND', `Service not found: ${name}`]);
      const reply = await reacher.connection.request('resolve', { name }).then(() => undefined, (e: ConnectError) => e);
      assert.deepEqual(reply && [reply.code, reply.message], ['SERVICE_NOT_FOUND', `Service not found: ${name}`]);
    }
    // The listing of Y's own workspace shows nothing of X.
    assert.deepEqual(await reacher.list(), []);
  });

  test('TCP: new connections over --rate are refused with RATE_LIMITED; every attempt is audited with the address', async () => {
    const { share } = await shareWithY('rated', { services: ['echo'], rate: 2 });
    const opened = [];
    for (let i = 0; i < 2; i++) opened.push(await reacher.connection.openStream('rated/echo', undefined, { confirmed: true }));
    const limited = await refusal('rated/echo');
    assert.equal(limited.code, 'RATE_LIMITED');
    assert.match(limited.message, /allows 2 new connections a minute; try again in \d+ s/);
    for (const stream of opened) stream.reset('STREAM_CLOSED', 'done');
    const events = await accesses(share.id);
    // Identical attempts of one flush window share a row: its count says how many.
    assert.deepEqual(events.flatMap((e) => Array<string>(e.metadata.count).fill(e.metadata.result)).sort(), ['RATE_LIMITED', 'open', 'open']);
    for (const e of events) {
      assert.equal(e.ip, '127.0.0.1');
      assert.equal(e.actorId, y.workspaceId);
      assert.equal(e.metadata.service, 'echo');
    }
  });

  test('HTTP: the exposing agent applies methods, paths and the rate, and reports each request', async () => {
    const { share } = await shareWithY('api', { services: ['web'], methods: ['GET', 'POST'], paths: ['/api/v1'], rate: 8 });
    const reach = await reacher.reach('api/web', { port: 0 });
    try {
      const ok = await get(reach.port, 'GET', '/api/v1/items?q=1');
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(JSON.parse(ok.text), { method: 'GET', url: '/api/v1/items?q=1', body: '' });
      const posted = await get(reach.port, 'POST', '/api/v1/items', 'x'.repeat(100_000));
      assert.equal(JSON.parse(posted.text).body.length, 100_000, 'bodies stream through');
      const put = await get(reach.port, 'PUT', '/api/v1/items');
      assert.deepEqual([put.status, JSON.parse(put.text).error.code, put.headers.allow], [405, 'METHOD_NOT_ALLOWED', 'GET, POST']);
      for (const path of ['/admin', '/api/v10']) {
        const refused = await get(reach.port, 'GET', path);
        assert.deepEqual([refused.status, JSON.parse(refused.text).error.code], [403, 'PATH_NOT_ALLOWED'], path);
      }
      // A .. segment, in any spelling, is refused before any prefix check: the service could resolve it differently.
      for (const path of ['/api/v1/../../admin', '/api/v1/%2e%2e/%2E%2E/admin']) {
        const refused = await get(reach.port, 'GET', path);
        assert.deepEqual([refused.status, JSON.parse(refused.text).error.code], [400, 'AMBIGUOUS_PATH'], path);
      }
      // A WebSocket upgrade passes once checked.
      const ws = new WebSocket(`ws://127.0.0.1:${reach.port}/api/v1/socket`);
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('ping'));
        ws.once('message', (m) => resolve(m.toString()));
        ws.once('error', reject);
      });
      ws.close();
      assert.equal(echoed, 'echo:ping');
      // 8 requests so far against a rate of 8 a minute: the next ones are refused until tokens come back (one every
      // 7.5 s; a few tries, so that a slow machine still sees the refusal).
      let limited = await get(reach.port, 'GET', '/api/v1/items');
      for (let i = 0; i < 3 && limited.status !== 429; i++) limited = await get(reach.port, 'GET', '/api/v1/items');
      assert.equal(limited.status, 429, limited.text);
      assert.equal(JSON.parse(limited.text).error.code, 'RATE_LIMITED');
      assert.match(String(limited.headers['retry-after']), /^\d+$/);
      const reported = await eventually(async () => {
        const list = await accesses(share.id);
        return list.length >= 9 && list;
      });
      const seen = reported.map((e) => `${e.metadata.method} ${e.metadata.path} ${e.metadata.status}`).sort();
      for (const line of [
        'GET /api/v1/items 200',
        'POST /api/v1/items 200',
        'PUT /api/v1/items 405',
        'GET /admin 403',
        'GET /api/v10 403',
        'GET /api/v1/../../admin 400',
        'GET /api/v1/%2e%2e/%2E%2E/admin 400',
        'GET /api/v1/socket 101',
        'GET /api/v1/items 429',
      ]) {
        assert.ok(seen.includes(line), `${line} in ${seen.join(' | ')}`);
      }
      for (const e of reported) assert.equal(e.ip, '127.0.0.1');
    } finally {
      await reach.close();
    }
  });

  test('a share with HTTP limits is never passed through raw: once the service is exposed as TCP, opens get HTTP_ONLY_LIMIT', async () => {
    await shareWithY('limited', { services: ['web'], paths: ['/api/v1'] });
    await owner.expose('web', `127.0.0.1:${webPort}`, { protocol: 'tcp' });
    try {
      const err = await refusal('limited/web');
      assert.equal(err.code, 'HTTP_ONLY_LIMIT');
      assert.match(err.message, /exposed as TCP now/);
    } finally {
      await owner.expose('web', `127.0.0.1:${webPort}`, { protocol: 'http' });
    }
  });

  test('revocation cuts open connections at once and refuses new ones with SHARE_REVOKED', async () => {
    const { share } = await shareWithY('revoked', { services: ['echo'] });
    const reach = await reacher.reach('revoked/echo', { port: 0 });
    try {
      const { socket, answer } = await exchange(reach.port, 'before\n');
      assert.equal(answer, 'before\n');
      const closed = new Promise((resolve) => socket.once('close', resolve));
      assert.equal((await api(t.apiKey, 'DELETE', `/v1/shares/${share.id}`)).status, 204);
      await closed;
      const err = await refusal('revoked/echo');
      assert.deepEqual([err.code, err.message], ['SHARE_REVOKED', 'the share "revoked" was revoked by its owner; ask them for a new one']);
      const resolved = await reacher.connection.request('resolve', { name: 'revoked/echo' }).then(() => undefined, (e: ConnectError) => e.code);
      assert.equal(resolved, 'SHARE_REVOKED');
    } finally {
      await reach.close();
    }
  });

  test('expiry: new connections are refused with SHARE_EXPIRED saying when; the sweep cuts the open ones', async () => {
    const { share } = await shareWithY('brief', { services: ['echo'], expiresIn: '1h' });
    const reach = await reacher.reach('brief/echo', { port: 0 });
    try {
      const { socket, answer } = await exchange(reach.port, 'before\n');
      assert.equal(answer, 'before\n');
      const closed = new Promise((resolve) => socket.once('close', resolve));
      t.clock.advance(2 * HOUR);
      const err = await refusal('brief/echo');
      assert.deepEqual([err.code, err.message], ['SHARE_EXPIRED', `the share "brief" expired at ${share.expiresAt}; ask its owner for a new one`]);
      // The hub's periodic sweep, run here at once: the connection opened before the expiry ends.
      assert.equal(await sweepShareStreams(t.hub.sharing), 1);
      await closed;
      for (const conn of t.hub.connections) for (const end of conn.streams.values()) assert.notEqual(end.tag?.shareId, share.id);
    } finally {
      await reach.close();
    }
  });

  test('an access report may stand for several identical requests (count); a count out of bounds is refused and nothing recorded', async () => {
    const { share } = await shareWithY('counted', { services: ['web'] });
    const report = { shareId: share.id, service: 'web', method: 'GET', path: '/counted', status: 200, ip: '203.0.113.7' };
    await owner.connection.request('access', { ...report, count: 5000 });
    await owner.connection.request('access', report);
    for (const count of [0, -1, 1.5, 1_000_001, '3'] as unknown[]) {
      await assert.rejects(owner.connection.request('access', { ...report, count } as never), (err: ConnectError) => err.code === 'BAD_REQUEST', String(count));
    }
    const rows = await accesses(share.id);
    assert.equal(rows.reduce((n, e) => n + e.metadata.count, 0), 5001);
  });
});
