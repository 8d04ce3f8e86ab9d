/**
 * The exposing agent's filter for HTTP services reached through a share, fed exactly as the agent feeds it (one
 * side of duplexPair per stream) and proxying to a real local HTTP server: limits, refusals, reports. The access
 * reporter keeps the hub's limit on waiting control requests.
 */

import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AccessReport, SharePolicy } from '@private-connect/protocol';
import { duplexPair } from '../src/agent/duplex-pair.js';
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
    const ok = await send(filter, policy, 'GET', '/api/v1/./items/../items?q=1');
    assert.deepEqual([ok.status, ok.body, ok.headers['x-from']], [200, 'GET /api/v1/items?q=1', 'target']);
    const post = await send(filter, policy, 'POST', '/api/v1/items');
    assert.deepEqual([post.status, JSON.parse(post.body).error.code, post.headers.allow], [405, 'METHOD_NOT_ALLOWED', 'GET']);
    for (const path of ['/api/v10', '/api/v1/../admin', '/api/v1/%2e%2e/%2e%2e/etc', '/']) {
      const refused = await send(filter, policy, 'GET', path);
      assert.deepEqual([refused.status, JSON.parse(refused.body).error.code], [403, 'PATH_NOT_ALLOWED'], path);
    }
    assert.deepEqual(seen.splice(0), ['GET /api/v1/items?q=1'], 'refused requests never reach the target');
    assert.deepEqual(
      reports.map((r) => `${r.method} ${r.path} ${r.status}`),
      ['GET /api/v1/items 200', 'POST /api/v1/items 405', 'GET /api/v10 403', 'GET /api/admin 403', 'GET /etc 403', 'GET / 403'],
    );
    for (const r of reports) assert.deepEqual([r.shareId, r.service, r.ip], ['share-1', 'web', '203.0.113.9']);
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
});
