/**
 * Public links with real processes: a hub (PUBLIC_BASE_DOMAIN=links.test), an agent running `connect expose` for a
 * real HTTP + WebSocket server, links made with `connect link`, and `curl` as the stranger who has the URL. Limits
 * answer 405 / 403 / 429, revoked and expired links 410, an offline agent 502; bodies stream both ways (a 100 MiB
 * download leaves the hub's memory nearly where it was), a WebSocket echoes through, and the owner's audit log
 * has every step.
 */

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { AuditEntry, CreatedLink, LinkInfo } from '@private-connect/api';
import { chunks, closeHttpServer, enrolAgent, eventually, expectedDigest, removeDirs, startHubProcess, tempDir, type AgentHome, type HubProcess, type Proc } from '../src/index.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** `curl -i`: the final status, its headers (lower-case names) and the body. */
async function curl(url: string, args: string[] = []): Promise<CurlAnswer> {
  const { stdout } = await run('curl', ['-sS', '-i', '--max-time', '30', ...args, url], { encoding: 'latin1', maxBuffer: 16 * MiB });
  let rest = stdout;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    const head = rest.slice(0, end).split('\r\n');
    rest = rest.slice(end + 4);
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head[0]!)?.[1]);
    if (status >= 100 && status < 200) continue; // 100 Continue before the answer
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { status, headers, body: Buffer.from(rest, 'latin1').toString('utf8') };
  }
}

/** Resident memory of a process in bytes (VmRSS). */
function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** The app behind the link: a few HTTP routes and a WebSocket echo on /ws. */
async function startApp() {
  const slow = { open: 0, closed: 0 };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/api/v1/hello') return void res.end('hello from the app');
    if (url.startsWith('/api/v1/headers')) {
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify({ url, headers: req.headers }));
    }
    if (url === '/upload' && req.method === 'POST') {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      return void req.on('end', () => res.end(JSON.stringify({ length, sha256: hash.digest('hex') })));
    }
    if (url.startsWith('/big/')) {
      const total = Number(url.slice(5));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const source = chunks(total, 11);
      const pump = () => {
        for (let next = source.next(); !next.done; next = source.next()) if (!res.write(next.value)) return void res.once('drain', pump);
        res.end();
      };
      return pump();
    }
    if (url === '/slow') {
      // Never ends by itself: a chunk every 100 ms until the connection goes away.
      slow.open++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 100);
      return void res.once('close', () => {
        clearInterval(timer);
        slow.closed++;
      });
    }
    res.writeHead(404).end('no such page in the app');
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    slow,
    close: () => closeHttpServer(server, wss),
  };
}

describe('public links through the hub, with curl', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let app: Awaited<ReturnType<typeof startApp>>;
  let exposer: Proc;
  let dir: string;
  /** GET only, under /api/v1. */
  let limited: CreatedLink;
  /** Any method, any path. */
  let anyLink: CreatedLink;

  const link = (args: string[]): CreatedLink => {
    const made = a.run(['link', ...args]);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    return made.json() as CreatedLink;
  };

  const audit = async (action: string): Promise<AuditEntry[]> => {
    const res = await fetch(`${hub.url}/v1/audit?action=${action}&limit=500`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
    return ((await res.json()) as { events: AuditEntry[] }).events;
  };

  before(async () => {
    hub = await startHubProcess({ env: { PUBLIC_BASE_DOMAIN: 'links.test' } });
    a = await enrolAgent(hub, { label: 'web-server' });
    app = await startApp();
    dir = await tempDir('links');
    exposer = await a.expose(`127.0.0.1:${app.port}`, 'web', ['--http']);
    limited = link(['web', '--expires', '1h', '--methods', 'GET', '--paths', '/api/v1']);
    anyLink = link(['web', '--expires', '1h']);
  });

  after(async () => {
    await exposer?.stop();
    await app?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, dir);
  });

  test('connect link prints path and subdomain URLs; the token is 52 base32 characters and shown once', async () => {
    assert.match(limited.token, /^[a-z2-7]{52}$/);
    assert.equal(limited.url, `${hub.url}/l/${limited.token}/`);
    assert.equal(limited.subdomainUrl, `http://${limited.token}.links.test/`);
    assert.deepEqual([limited.link.methods, limited.link.paths, limited.link.state], [['GET'], ['/api/v1'], 'active']);
    const listed = a.run(['link', 'ls']);
    assert.equal(listed.code, 0, listed.stderr);
    const { links } = listed.json() as { links: LinkInfo[] };
    assert.deepEqual(links.map((l) => l.id).sort(), [limited.link.id, anyLink.link.id].sort());
    assert.ok(!listed.stdout.includes(limited.token), 'the list never shows a token');
    const human = a.run(['link', 'web', '--expires', '10m']);
    assert.equal(human.code, 0);
    assert.doesNotThrow(() => JSON.parse(human.stdout), 'with --json the answer is JSON');
  });

  test('allowed GET passes; POST → 405, a path outside the prefix → 403', async () => {
    const ok = await curl(`${limited.url}api/v1/hello`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'hello from the app');
    const post = await curl(`${limited.url}api/v1/hello`, ['-X', 'POST', '-d', 'x=1']);
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET');
    assert.match(post.body, /METHOD_NOT_ALLOWED/);
    const outside = await curl(`${limited.url}admin`);
    assert.equal(outside.status, 403);
    assert.match(outside.body, /PATH_NOT_ALLOWED/);
    // A .. segment in any spelling is refused outright: apps resolve them differently (e2e/test/link-limits.test.ts).
    const climb = await curl(`${limited.url}api/v1/%2e%2e/%2e%2e/admin`, ['--path-as-is']);
    assert.equal(climb.status, 400);
    assert.match(climb.body, /AMBIGUOUS_PATH/);
    assert.equal((await curl(`${hub.url}/l/${'a'.repeat(52)}/api/v1/hello`)).status, 404, 'an unknown token');
  });

  test('the app sees X-Forwarded-For/Proto/Host/Prefix and the path without /l/<token>', async () => {
    const answer = await curl(`${limited.url}api/v1/headers?q=1`, ['-H', 'X-Forwarded-For: 203.0.113.7', '-H', 'X-Forwarded-Prefix: /spoofed']);
    assert.equal(answer.status, 200, answer.body);
    const seen = JSON.parse(answer.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/api/v1/headers?q=1');
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${hub.port}`);
    assert.equal(seen.headers['x-forwarded-prefix'], `/l/${limited.token}`);
    assert.match(answer.headers['content-security-policy'] ?? '', /^sandbox /, 'path mode pages run sandboxed');
  });

  test('subdomain mode: Host <token>.links.test serves the same link at the root', async () => {
    const host = `${limited.token}.links.test`;
    const answer = await curl(`${hub.url}/api/v1/headers`, ['-H', `Host: ${host}`]);
    assert.equal(answer.status, 200, answer.body);
    const seen = JSON.parse(answer.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/api/v1/headers');
    assert.equal(seen.headers['x-forwarded-host'], host);
    assert.equal(seen.headers['x-forwarded-prefix'], undefined);
    assert.equal((await curl(`${hub.url}/other`, ['-H', `Host: ${host}`])).status, 403);
  });

  test('a burst over --rate gets 429 with Retry-After', async () => {
    const rated = link(['web', '--rate', '3']);
    const answers: CurlAnswer[] = [];
    for (let i = 0; i < 8; i++) answers.push(await curl(`${rated.url}api/v1/hello`));
    assert.deepEqual(answers.slice(0, 3).map((x) => x.status), [200, 200, 200]);
    const refused = answers.filter((x) => x.status !== 200);
    assert.ok(refused.length > 0, 'some requests of the burst are refused');
    for (const x of refused) {
      assert.equal(x.status, 429);
      assert.ok(Number(x.headers['retry-after']) >= 1, JSON.stringify(x.headers));
    }
  });

  test('a request body streams to the app (16 MiB upload, checksum)', async () => {
    const size = 16 * MiB;
    const file = join(dir, 'upload.bin');
    const handle = await open(file, 'w');
    for (const chunk of chunks(size, 5)) await handle.write(chunk);
    await handle.close();
    const answer = await curl(`${anyLink.url}upload`, ['-X', 'POST', '-T', file, '-H', 'content-type: application/octet-stream']);
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual(JSON.parse(answer.body), { length: size, sha256: expectedDigest(size, 5) });
  });

  test('a 100 MiB download streams through the link while the hub memory stays bounded', async () => {
    const total = 100 * MiB;
    const pid = hub.proc.child.pid!;
    await curl(`${anyLink.url}big/${MiB}`); // warm up the path
    const baseline = rss(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 20);
    try {
      const digest = await new Promise<string>((resolve, reject) => {
        const hash = createHash('sha256');
        const child = spawn('curl', ['-sS', '--fail', '--max-time', '120', `${anyLink.url}big/${total}`]);
        let received = 0;
        child.stdout.on('data', (c: Buffer) => {
          received += c.length;
          hash.update(c);
        });
        child.on('error', reject);
        child.on('close', (code) => (code === 0 && received === total ? resolve(hash.digest('hex')) : reject(new Error(`curl exited ${code} after ${received} bytes`))));
      });
      assert.equal(digest, expectedDigest(total, 11));
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - baseline;
    assert.ok(growth < 64 * MiB, `the hub grew by ${(growth / MiB).toFixed(1)} MiB while relaying ${total / MiB} MiB`);
  });

  test('a WebSocket echoes through the link', async () => {
    const ws = new WebSocket(`${anyLink.url.replace('http', 'ws')}ws`);
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const echo = (data: string | Buffer) =>
        new Promise<Buffer>((resolve) => {
          ws.once('message', (m: Buffer) => resolve(m));
          ws.send(data);
        });
      assert.equal((await echo('hello through the link')).toString(), 'hello through the link');
      const big = Buffer.concat([...chunks(MiB, 3)]);
      assert.ok((await echo(big)).equals(big), 'a 1 MiB binary message comes back intact');
    } finally {
      ws.close();
    }
    // A WebSocket upgrade gets the same checks: outside the prefix of the limited link it is refused.
    const refused = new WebSocket(`${limited.url.replace('http', 'ws')}ws`);
    const status = await new Promise<number>((resolve) => {
      refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      refused.once('error', () => resolve(-1));
    });
    assert.equal(status, 403);
  });

  test('revoking cuts an open response at once; the link then answers 410', async () => {
    const doomed = link(['web', '--expires', '1h']);
    const closedBefore = app.slow.closed;
    let bytes = 0;
    const ended = new Promise<{ error: boolean }>((resolve, reject) => {
      const req = http.get(`${doomed.url}slow`, (res) => {
        let error = false;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('error', () => (error = true));
        res.on('close', () => resolve({ error: error || !res.complete }));
      });
      req.on('error', reject);
    });
    await eventually(async () => assert.ok(bytes > 0, 'the slow response is under way'));
    const revoked = a.run(['link', 'revoke', doomed.link.id]);
    assert.equal(revoked.code, 0, revoked.stdout + revoked.stderr);
    const result = await ended;
    assert.ok(result.error, 'the client sees the response cut, not a clean end');
    await eventually(async () => assert.ok(app.slow.closed > closedBefore, 'the app sees its connection closed'));
    const gone = await curl(`${doomed.url}slow`);
    assert.equal(gone.status, 410);
    assert.match(gone.body, /revoked/);
    const again = a.run(['link', 'revoke', '00000000-0000-4000-8000-000000000000']);
    assert.notEqual(again.code, 0);
    assert.match(again.stdout, /NOT_FOUND/);
  });

  test('an expired link answers 410', async () => {
    const brief = link(['web', '--expires', '2s']);
    assert.equal((await curl(`${brief.url}api/v1/hello`)).status, 200);
    const gone = await eventually(async () => {
      const answer = await curl(`${brief.url}api/v1/hello`, ['-H', 'accept: application/json']);
      assert.equal(answer.status, 410);
      return answer;
    });
    assert.equal((JSON.parse(gone.body) as { error: { code: string } }).error.code, 'PUBLIC_LINK_GONE');
    const listed = (a.run(['link', 'ls']).json() as { links: LinkInfo[] }).links.find((l) => l.id === brief.link.id);
    assert.equal(listed?.state, 'expired');
  });

  test('the audit log has link.create, link.access (ip, method, path, status) and link.revoke', async () => {
    const created = await audit('link.create');
    assert.ok(created.some((e) => e.targetId === limited.link.id && e.actorType === 'agent' && e.metadata.service === 'web'));
    const accesses = await eventually(async () => {
      const events = await audit('link.access');
      assert.ok(events.some((e) => e.metadata.status === 405));
      return events;
    });
    const find = (status: number, method: string, path: string) => accesses.find((e) => e.targetId === limited.link.id && e.metadata.status === status && e.metadata.method === method && e.metadata.path === path);
    const allowed = find(200, 'GET', '/api/v1/hello');
    assert.ok(allowed, JSON.stringify(accesses.slice(0, 5)));
    assert.equal(allowed.ip, '127.0.0.1');
    assert.equal(allowed.actorType, 'public');
    assert.ok(find(405, 'POST', '/api/v1/hello'));
    assert.ok(find(403, 'GET', '/admin'));
    assert.ok(accesses.some((e) => e.metadata.status === 429));
    assert.ok(accesses.some((e) => e.metadata.status === 410));
    assert.ok(accesses.some((e) => e.metadata.upgrade === true && e.metadata.status === 101), 'the WebSocket upgrade is recorded');
    assert.ok((await audit('link.revoke')).length >= 1);
    const raw = JSON.stringify(accesses);
    assert.ok(!raw.includes(limited.token) && !raw.includes(anyLink.token), 'tokens never reach the audit log');
  });

  test('with the exposing agent stopped the link answers 502 with a clear page (JSON on request)', async () => {
    await exposer.stop();
    const page = await eventually(async () => {
      const answer = await curl(`${limited.url}api/v1/hello`);
      assert.equal(answer.status, 502);
      return answer;
    });
    assert.match(page.headers['content-type'] ?? '', /text\/html/);
    assert.match(page.body, /not connected/);
    const json = await curl(`${limited.url}api/v1/hello`, ['-H', 'accept: application/json']);
    assert.equal(json.status, 502);
    assert.equal((JSON.parse(json.body) as { error: { code: string } }).error.code, 'SERVICE_OFFLINE');
    // The hub's log never carries a link token.
    assert.ok(!hub.proc.lines.some((l) => JSON.stringify(l).includes(limited.token)), 'no token in the hub log');
  });
});
