/**
 * The exposing agent's filter for HTTP services reached through a share, fed exactly as the agent feeds it (one
 * side of duplexPair per stream) and proxying to a real local HTTP server: limits, refusals, reports. The access
 * reporter keeps the hub's limit on waiting control requests.
 */

import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import type { AccessReport, SharePolicy } from '@private-connect/protocol';
import { duplexPair } from '@private-connect/tunnel';
import { createAccessReporter, createShareFilter, type ShareFilter } from '../src/agent/share-filter.js';

describe('share filter for HTTP services', () => {
  let target: Server;
  let port = 0;
  const seen: string[] = [];

  before(async () => {
    target = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'x-from': 'target' }).end(`${req.method} ${req.url}`));
    });
    port = await new Promise<number>((resolve) => target.listen(0, '127.0.0.1', () => resolve((target.address() as AddressInfo).port)));
  });
  after(async () => {
    target.closeAllConnections();
    await new Promise((resolve) => target.close(resolve));
  });

  /** One request over a new stream into `filter`. */
  function send(filter: ShareFilter, policy: SharePolicy, method: string, path: string, targetPort = port) {
    const [outside, inside] = duplexPair();
    filter.serve(inside, { policy, service: 'web', target: { host: '127.0.0.1', port: targetPort }, ip: '203.0.113.9' });
    return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = request({ method, path, headers: { host: 'shared' }, createConnection: () => outside as never }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('refuses other methods (405 with Allow) and paths outside the prefixes after normalisation (403); forwards the normalised target', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const policy: SharePolicy = { id: 'share-1', name: 'acme', methods: ['GET'], paths: ['/api/v1'] };
    const ok = await send(filter, policy, 'GET', '/api/v1/./items/./?q=1');
    assert.deepEqual([ok.status, ok.body, ok.headers['x-from']], [200, 'GET /api/v1/items/?q=1', 'target']);
    const post = await send(filter, policy, 'POST', '/api/v1/items');
    assert.deepEqual([post.status, JSON.parse(post.body).error.code, post.headers.allow], [405, 'METHOD_NOT_ALLOWED', 'GET']);
    for (const path of ['/api/v10', '/api/v1%2Fx', '/']) {
      const refused = await send(filter, policy, 'GET', path);
      const code = path.includes('%2F') ? 'AMBIGUOUS_PATH' : 'PATH_NOT_ALLOWED';
      assert.deepEqual([refused.status, JSON.parse(refused.body).error.code], [code === 'AMBIGUOUS_PATH' ? 400 : 403, code], path);
    }
    assert.deepEqual(seen.splice(0), ['GET /api/v1/items/?q=1'], 'refused requests never reach the target');
    assert.deepEqual(
      reports.map((r) => `${r.method} ${r.path} ${r.status}`),
      ['GET /api/v1/items/ 200', 'POST /api/v1/items 405', 'GET /api/v10 403', 'GET /api/v1%2Fx 400', 'GET / 403'],
    );
    for (const r of reports) assert.deepEqual([r.shareId, r.service, r.ip], ['share-1', 'web', '203.0.113.9']);
    filter.close();
  });

  test('refuses paths the target could read as another path (encoded / or \\, .. in any spelling, NUL, bad escapes): 400 AMBIGUOUS_PATH, reported without the query', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const policy: SharePolicy = { id: 'share-amb', name: 'acme', paths: ['/api/v1'] };
    const attacks = [
      '/api/v1/..%2f..%2fsecret.txt',
      '/api/v1/%2e%2e/%2e%2e/secret.txt',
      '/api/v1/..%5csecret.txt',
      '/api/v1/%2e%2e%2fsecret.txt',
      '/api/v1/../../secret.txt',
      '/api/v1/..\\secret.txt',
      '/api/v1/ok.txt%00.html',
      '/api/v1/%zz',
      '/api/v1/..;x=1/secret.txt',
    ];
    for (const path of attacks) {
      const refused = await send(filter, policy, 'GET', `${path}?token=s3cret`);
      assert.deepEqual([refused.status, JSON.parse(refused.body).error.code], [400, 'AMBIGUOUS_PATH'], path);
    }
    assert.deepEqual(seen.splice(0), [], 'no ambiguous request reaches the target');
    await until(() => reports.length === attacks.length);
    assert.deepEqual(reports.map((r) => `${r.path} ${r.status}`), attacks.map((path) => `${path} 400`), 'reported as sent, without the query');
    filter.close();
  });

  test('reports the path the target reads (percent-decoded), for refused and forwarded requests', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const policy: SharePolicy = { id: 'share-dec', name: 'acme', paths: ['/api/v1'] };
    assert.equal((await send(filter, policy, 'GET', '/%61dmin?token=s3cret')).status, 403);
    assert.equal((await send(filter, policy, 'GET', '/api/v1/caf%C3%A9')).status, 200);
    assert.deepEqual(seen.splice(0), ['GET /api/v1/caf%C3%A9'], 'the target gets the target as sent');
    await until(() => reports.length === 2);
    assert.deepEqual(reports.map((r) => `${r.path} ${r.status}`), ['/admin 403', '/api/v1/café 200']);
    filter.close();
  });

  test('counts every request of the share against --rate: 429 with Retry-After once the minute\'s requests are used', async () => {
    let now = 1_000_000;
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r), () => now);
    const policy: SharePolicy = { id: 'share-2', name: 'rated', ratePerMin: 2 };
    assert.equal((await send(filter, policy, 'GET', '/a')).status, 200);
    assert.equal((await send(filter, policy, 'GET', '/b')).status, 200);
    const limited = await send(filter, policy, 'GET', '/c');
    assert.deepEqual([limited.status, limited.headers['retry-after'], JSON.parse(limited.body).error.code], [429, '30', 'RATE_LIMITED']);
    // Another share has its own budget; this one gets a request back after 30 s.
    assert.equal((await send(filter, { ...policy, id: 'share-3' }, 'GET', '/d')).status, 200);
    now += 30_000;
    assert.equal((await send(filter, policy, 'GET', '/e')).status, 200);
    assert.deepEqual(reports.map((r) => r.status), [200, 200, 429, 200, 200]);
    seen.splice(0);
    filter.close();
  });

  test('a target that refuses connections gets 502 TARGET_UNREACHABLE, reported', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const closed = createServer();
    const deadPort = await new Promise<number>((resolve) => closed.listen(0, '127.0.0.1', () => resolve((closed.address() as AddressInfo).port)));
    await new Promise((resolve) => closed.close(resolve));
    const answer = await send(filter, { id: 's', name: 'n' }, 'GET', '/x', deadPort);
    assert.deepEqual([answer.status, JSON.parse(answer.body).error.code], [502, 'TARGET_UNREACHABLE']);
    assert.deepEqual(reports.map((r) => r.status), [502]);
    filter.close();
  });
});

/** One HTTP/1.1 response read off a raw connection. */
interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Reads the first whole response in `text` (Content-Length or chunked body), or undefined while it is incomplete. */
function parseResponse(text: string): { response: WireResponse; rest: string } | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  let at = end + 4;
  let body = '';
  if (headers['transfer-encoding'] === 'chunked') {
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(text.slice(at, lineEnd), 16);
      if (text.length < lineEnd + 2 + size + 2) return undefined;
      at = lineEnd + 2;
      if (size === 0) {
        at += 2;
        break;
      }
      body += text.slice(at, at + size);
      at += size + 2;
    }
  } else {
    const length = Number(headers['content-length'] ?? 0);
    if (text.length < at + length) return undefined;
    body = text.slice(at, at + length);
    at += length;
  }
  return { response: { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]), headers, body }, rest: text.slice(at) };
}

/** Resolves once `ready()` holds (reports are sent when a response closes, a moment after the client read it). */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A raw client connection: write bytes, then read whole responses in order. */
function rawClient(socket: Duplex) {
  let text = '';
  let ended = false;
  let wake: (() => void) | undefined;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    wake?.();
  });
  socket.on('end', () => {
    ended = true;
    wake?.();
  });
  return {
    write: (wire: string) => socket.write(wire),
    /** The next response; undefined when the connection ended first. */
    async next(): Promise<WireResponse | undefined> {
      for (;;) {
        const parsed = parseResponse(text);
        if (parsed) {
          text = parsed.rest;
          return parsed.response;
        }
        if (ended) return undefined;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

describe('Upgrade requests through a share', () => {
  /** Answers every request with 200 and `METHOD URL`, Upgrade or not (it has no upgrade handler). */
  let plain: Server;
  /** A WebSocket echo server on /api/v1/ws. */
  let sockets: Server;
  let wss: WebSocketServer;
  const seen: string[] = [];
  const ports = { plain: 0, sockets: 0 };

  before(async () => {
    plain = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      // A slow answer to an earlier pipelined request: the upgrade's answer must still come after it.
      const delay = req.url === '/api/v1/slow' ? 50 : 0;
      const body = `${req.method} ${req.url}`;
      setTimeout(() => {
        // Some answers without a length (chunked from here; re-framed by the filter), others with one.
        if (req.url?.includes('chat')) return void res.writeHead(200, { 'x-from': 'plain' }).end(body);
        res.writeHead(200, { 'x-from': 'plain', 'content-length': Buffer.byteLength(body) }).end(body);
      }, delay);
    });
    wss = new WebSocketServer({ noServer: true });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo ${String(data)}`)));
    sockets = createServer((req, res) => res.writeHead(200, { 'x-from': 'plain' }).end(`${req.method} ${req.url} upgrade=${req.headers.upgrade ?? 'none'}`));
    sockets.on('upgrade', (req, socket, head) => {
      if (req.headers.upgrade !== 'h2c') return wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      // A server that speaks h2c: after this 101 anything on the connection is HTTP/2, which the filter cannot read.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(`h2c got ${d.length} bytes`));
    });
    for (const [name, server] of [['plain', plain], ['sockets', sockets]] as const) {
      ports[name] = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    }
  });
  after(async () => {
    for (const client of wss.clients) client.terminate();
    for (const server of [plain, sockets]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const policy: SharePolicy = { id: 'share-up', name: 'acme', methods: ['GET'], paths: ['/api/v1'] };

  /** A raw client on a new stream into the filter, toward the target on `port`. */
  function open(filter: ShareFilter, port: number) {
    const [outside, inside] = duplexPair();
    filter.serve(inside, { policy, service: 'web', target: { host: '127.0.0.1', port } });
    return rawClient(outside);
  }

  const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: shared\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
  const plainRequest = (method: string, path: string, close = false) => `${method} ${path} HTTP/1.1\r\nHost: shared\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
  /** `status body-or-error-code` of a response. */
  const summary = (a: WireResponse | undefined) => {
    if (!a) return 'connection ended';
    if (a.headers['x-from'] === 'plain' || !a.body.startsWith('{')) return `${a.status} ${a.body}`.trimEnd();
    return `${a.status} ${JSON.parse(a.body).error.code}`;
  };

  test('an Upgrade answered with 200 is no raw pipe: the next requests on the connection are checked, refused and reported', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const client = open(filter, ports.plain);
    const answers: string[] = [];
    const framing: string[] = [];
    for (const wire of [upgrade('/api/v1/chat'), plainRequest('GET', '/admin'), plainRequest('DELETE', '/api/v1/items'), plainRequest('GET', '/api/v1/after', true)]) {
      client.write(wire);
      const answer = await client.next();
      framing.push(answer?.headers['transfer-encoding'] === 'chunked' ? 'chunked' : answer?.headers['content-length'] !== undefined ? 'length' : 'none');
      answers.push(summary(answer));
    }
    assert.deepEqual(answers, ['200 GET /api/v1/chat', '403 PATH_NOT_ALLOWED', '405 METHOD_NOT_ALLOWED', '200 GET /api/v1/after']);
    assert.deepEqual(framing, ['chunked', 'length', 'length', 'length'], 'the answer without a length is re-framed as chunked');
    assert.deepEqual(seen.splice(0), ['GET /api/v1/chat', 'GET /api/v1/after'], 'refused requests never reach the target');
    await until(() => reports.length === 4);
    assert.deepEqual(reports.map((r) => `${r.method} ${r.path} ${r.status}`), ['GET /api/v1/chat 200', 'GET /admin 403', 'DELETE /api/v1/items 405', 'GET /api/v1/after 200']);
    filter.close();
  });

  test('pipelined around an Upgrade answered with 200: answers in order, each request checked', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const client = open(filter, ports.plain);
    client.write(plainRequest('GET', '/api/v1/slow') + upgrade('/api/v1/chat') + plainRequest('GET', '/admin') + plainRequest('DELETE', '/api/v1/items') + plainRequest('GET', '/api/v1/after', true));
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) answers.push(summary(await client.next()));
    assert.deepEqual(answers, ['200 GET /api/v1/slow', '200 GET /api/v1/chat', '403 PATH_NOT_ALLOWED', '405 METHOD_NOT_ALLOWED', '200 GET /api/v1/after']);
    assert.equal(await client.next(), undefined, 'the connection ends after Connection: close');
    assert.deepEqual(seen.splice(0), ['GET /api/v1/slow', 'GET /api/v1/chat', 'GET /api/v1/after']);
    await until(() => reports.length === 5);
    assert.deepEqual(reports.map((r) => `${r.method} ${r.path} ${r.status}`), ['GET /api/v1/slow 200', 'GET /api/v1/chat 200', 'GET /admin 403', 'DELETE /api/v1/items 405', 'GET /api/v1/after 200']);
    filter.close();
  });

  test('every Upgrade on a kept-alive connection is checked: a second one outside the paths is refused', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const client = open(filter, ports.plain);
    client.write(upgrade('/api/v1/one'));
    assert.equal(summary(await client.next()), '200 GET /api/v1/one');
    client.write(upgrade('/admin/two'));
    assert.equal(summary(await client.next()), '403 PATH_NOT_ALLOWED');
    await until(() => reports.length === 2);
    assert.deepEqual(seen.splice(0), ['GET /api/v1/one'], 'the refused upgrade never reaches the target');
    assert.deepEqual(reports.map((r) => `${r.path} ${r.status}`), ['/api/v1/one 200', '/admin/two 403']);
    filter.close();
  });

  test('a client asking for Upgrade over and over on one connection gets each checked and reported, and piles up no listeners', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const [outside, inside] = duplexPair();
    filter.serve(inside, { policy, service: 'web', target: { host: '127.0.0.1', port: ports.plain } });
    const client = rawClient(outside);
    const rounds = 30;
    for (let i = 0; i < rounds; i++) {
      client.write(upgrade(`/api/v1/round-${i}`));
      assert.equal(summary(await client.next()), `200 GET /api/v1/round-${i}`);
    }
    await until(() => reports.length === rounds);
    assert.equal(reports.length, rounds);
    seen.splice(0);
    for (const event of inside.eventNames()) assert.ok(inside.listenerCount(event) <= 1, `${String(event)}: ${inside.listenerCount(event)} listeners`);
    filter.close();
  });

  test('an upgrade to h2c is not passed on (HTTP/2 would carry requests past the limits): the target answers a plain request, the connection stays checked', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const client = open(filter, ports.sockets);
    client.write('GET /api/v1/h2 HTTP/1.1\r\nHost: shared\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
    assert.equal(summary(await client.next()), '200 GET /api/v1/h2 upgrade=none');
    client.write(plainRequest('GET', '/admin'));
    assert.equal(summary(await client.next()), '403 PATH_NOT_ALLOWED');
    await until(() => reports.length === 2);
    assert.deepEqual(reports.map((r) => `${r.path} ${r.status}`), ['/api/v1/h2 200', '/admin 403']);
    filter.close();
  });

  test('an Upgrade to a target that refuses connections gets 502 TARGET_UNREACHABLE; one with a body gets 400; both reported', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const closed = createServer();
    const deadPort = await new Promise<number>((resolve) => closed.listen(0, '127.0.0.1', () => resolve((closed.address() as AddressInfo).port)));
    await new Promise((resolve) => closed.close(resolve));
    const dead = open(filter, deadPort);
    dead.write(upgrade('/api/v1/ws'));
    assert.equal(summary(await dead.next()), '502 TARGET_UNREACHABLE');
    // Its body would sit where the next request (or the new protocol) starts: refused rather than guessed at.
    const withBody = open(filter, ports.plain);
    withBody.write('GET /api/v1/ws HTTP/1.1\r\nHost: shared\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(summary(await withBody.next()), '400 BAD_REQUEST');
    assert.equal(await withBody.next(), undefined, 'the connection is closed after the refusal');
    await until(() => reports.length === 2);
    assert.deepEqual(reports.map((r) => `${r.method} ${r.path} ${r.status}`), ['GET /api/v1/ws 502', 'GET /api/v1/ws 400']);
    assert.deepEqual(seen.splice(0), []);
    filter.close();
  });

  test('a real WebSocket upgrade (101) becomes a pipe both ways, reported once as 101', async () => {
    const reports: AccessReport[] = [];
    const filter = createShareFilter((r) => reports.push(r));
    const [outside, inside] = duplexPair();
    filter.serve(inside, { policy, service: 'web', target: { host: '127.0.0.1', port: ports.sockets } });
    const ws = new WebSocket('ws://shared/api/v1/ws', { createConnection: () => outside as never });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const replies: string[] = [];
    for (const text of ['one', 'two']) {
      ws.send(text);
      replies.push(String(await new Promise((resolve) => ws.once('message', resolve))));
    }
    assert.deepEqual(replies, ['echo one', 'echo two']);
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
    assert.deepEqual(reports.map((r) => `${r.method} ${r.path} ${r.status}`), ['GET /api/v1/ws 101']);
    filter.close();
  });
});

describe('access reporter', () => {
  test('keeps at most maxInFlight reports waiting for the hub; past maxQueued it drops and counts', async () => {
    const waiting: Array<() => void> = [];
    const sent: string[] = [];
    const reporter = createAccessReporter(
      (access) => {
        sent.push(access.path);
        return new Promise<void>((resolve) => waiting.push(resolve));
      },
      { maxInFlight: 2, maxQueued: 3 },
    );
    const report = (path: string) => reporter.report({ shareId: 's', service: 'web', method: 'GET', path, status: 200 });
    for (const path of ['/1', '/2', '/3', '/4', '/5', '/6']) report(path);
    assert.deepEqual(sent, ['/1', '/2'], 'two in flight');
    assert.equal(reporter.dropped, 1, 'three queued, the sixth dropped');
    while (waiting.length > 0) {
      waiting.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(sent, ['/1', '/2', '/3', '/4', '/5']);
  });

  test('merges a report identical to one still queued (its count goes up): a flood of one request is counted, never dropped', async () => {
    const waiting: Array<() => void> = [];
    const sent: Array<[string, number | undefined]> = [];
    const reporter = createAccessReporter(
      (access) => {
        sent.push([access.path, access.count]);
        return new Promise<void>((resolve) => waiting.push(resolve));
      },
      { maxInFlight: 1, maxQueued: 2 },
    );
    const report = (path: string) => reporter.report({ shareId: 's', service: 'web', method: 'GET', path, status: 200, ip: '203.0.113.9' });
    report('/1');
    for (let i = 0; i < 20_000; i++) report('/2');
    for (let i = 0; i < 500; i++) report('/3');
    report('/4'); // a third distinct report while two wait: the queue bound applies to distinct reports
    assert.equal(reporter.dropped, 1);
    while (waiting.length > 0) {
      waiting.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(sent, [['/1', 1], ['/2', 20_000], ['/3', 500]]);
    // Once a report has left, the next identical one starts a new count.
    report('/2');
    assert.deepEqual(sent.at(-1), ['/2', 1]);
  });
});
