/**
 * Public links on an in-process hub (ManualClock) with an SDK agent exposing a local HTTP server: the REST API's
 * validation and storage (only a hash of the token), the links table's row level security, and the proxy's edges:
 * expiry by the hub's clock, revocation that counts at once even for a cached link and cuts an open response,
 * the hub's session cookie kept away from the app, malformed requests, and the idle timeout on a stalled body.
 */

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent } from '@private-connect/sdk';
import type { CreatedLink, LinkInfo } from '@private-connect/api';
import { redactSecrets } from '../src/logger.js';
import { MAX_LINK_LOOKUPS_PER_MIN, generateLinkToken } from '../src/sharing/links.js';
import { cookiesForApp, linkCookiePrefix, pathModeSetCookie, subdomainSetCookie } from '../src/sharing/link-cookies.js';
import { forwardedHeader } from '../src/sharing/link-http.js';
import { dbKind } from './support/test-database.js';
import { DAY, eventually, startTestHub, type TestHub } from './support/test-hub.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', localAddress?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes to the hub and resolves with everything it answers until it closes the connection. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('latin1').on('data', (c: string) => (out += c));
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.write(bytes);
    setTimeout(() => socket.end(), 500).unref();
  });
}

describe(`public links: API, storage and proxy edges (${dbKind})`, () => {
  let t: TestHub;
  let agent: Agent;
  let app: http.Server;
  /** What the app saw of each request, by path. */
  const seen = new Map<string, http.IncomingHttpHeaders>();
  /** Responses of /slow still open, and how many ended. */
  const slow = { open: 0, closed: 0 };
  /** Uploads the app saw end without all their bytes. */
  const uploads = { aborted: 0 };

  const create = async (body: Record<string, unknown>, token = t.apiKey) => t.http('POST', '/v1/links', { token, body });

  before(async () => {
    t = await startTestHub(new Date('2030-01-01T00:00:00Z'), { PUBLIC_LINK_IDLE_TIMEOUT: '1s', PUBLIC_BASE_DOMAIN: 'links.test' });
    app = http.createServer((req, res) => {
      seen.set(req.url ?? '', req.headers);
      if (req.url === '/slow') {
        slow.open++;
        res.writeHead(200);
        const timer = setInterval(() => res.write('tick\n'), 50);
        return void res.once('close', () => {
          clearInterval(timer);
          slow.closed++;
        });
      }
      if (req.url === '/upload') {
        req.resume();
        req.once('aborted', () => uploads.aborted++);
        return void req.once('end', () => res.end('stored'));
      }
      res.setHeader('set-cookie', ['pc_session=from-the-app; Path=/', 'app=1; Path=/']);
      res.end(`app: ${req.method} ${req.url}`);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const enrolled = await t.enrol('web-server');
    agent = new Agent({ hubUrl: t.hub.url, token: enrolled.token, label: 'web-server' });
    await agent.expose('web', `127.0.0.1:${(app.address() as AddressInfo).port}`, { protocol: 'http' });
  });

  after(async () => {
    await agent?.close();
    app?.closeAllConnections();
    app?.close();
    await t?.close();
  });

  test('creates a link with a 256-bit base32 token; only its SHA-256 and a 6-character prefix are stored', async () => {
    const answer = await create({ service: 'web', expiresIn: '30d', methods: 'get,HEAD', paths: ['/api/v1/', '/health'], rate: 120 });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const created = answer.body as CreatedLink;
    assert.match(created.token, /^[a-z2-7]{52}$/);
    assert.deepEqual([created.link.methods, created.link.paths, created.link.ratePerMin], [['GET', 'HEAD'], ['/api/v1', '/health'], 120]);
    assert.equal(created.link.expiresAt, new Date(t.clock.now().getTime() + 30 * DAY).toISOString(), 'expiry by the hub clock');
    assert.equal(created.url, `${t.hub.url}/l/${created.token}/`);
    assert.equal(created.subdomainUrl, `http://${created.token}.links.test/`);
    const [row] = await t.hub.db.withSystem((tx) => tx.query<Record<string, unknown>>('select * from links where id = $1', [created.link.id]));
    assert.ok((row!.token_hash as Buffer).equals(createHash('sha256').update(created.token).digest()));
    assert.equal(row!.token_prefix, created.token.slice(0, 6));
    assert.ok(!JSON.stringify(row).includes(created.token.slice(6)), 'no column holds the token');
    const listed = await t.http('GET', '/v1/links', { token: t.apiKey });
    assert.ok(!JSON.stringify(listed.body).includes(created.token), 'the list never shows the token');
  });

  test('refuses a bad service, duration, method, path or rate with a stable code', async () => {
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ service: 'nope', expiresIn: '1d' }, 404, 'SERVICE_NOT_FOUND'],
      [{ service: 'web', expiresIn: 'soon' }, 400, 'BAD_REQUEST'],
      [{ service: 'web', expiresIn: '366d' }, 400, 'BAD_REQUEST'],
      [{ service: 'web', methods: ['GET /'] }, 400, 'BAD_REQUEST'],
      [{ service: 'web', paths: ['api'] }, 400, 'BAD_REQUEST'],
      [{ service: 'web', rate: 0 }, 400, 'BAD_REQUEST'],
      [{ service: 'web', rate: 1_000_001 }, 400, 'BAD_REQUEST'],
      [{}, 400, 'BAD_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await create(body);
      assert.equal(answer.status, status, JSON.stringify(body));
      assert.equal(answer.body.error.code, code, JSON.stringify(body));
    }
    assert.equal((await t.http('POST', '/v1/links', { body: { service: 'web' } })).status, 401, 'no credentials');
    // A workspace named in the body is not honoured: the link is the caller's.
    const other = await t.addWorkspace('elsewhere');
    const placed = await create({ service: 'web', workspaceId: other.workspaceId });
    assert.equal(placed.status, 201);
    const [row] = await t.hub.db.withSystem((tx) => tx.query<{ workspace_id: string }>('select workspace_id from links where id = $1', [placed.body.link.id]));
    assert.equal(row!.workspace_id, t.workspaceId);
  });

  test("an agent token of the workspace may create links (links.manage); a missing or malformed id is NOT_FOUND", async () => {
    const enrolled = await t.enrol('operator');
    assert.equal((await create({ service: 'web' }, enrolled.token)).status, 201);
    for (const id of ['not-a-uuid', '00000000-0000-4000-8000-000000000000']) {
      const answer = await t.http('DELETE', `/v1/links/${id}`, { token: t.apiKey });
      assert.equal(answer.status, 404);
      assert.equal(answer.body.error.code, 'NOT_FOUND');
    }
  });

  test('an expired link answers 410 as soon as the hub clock passes its expiry', async () => {
    const created = (await create({ service: 'web', expiresIn: '1h' })).body as CreatedLink;
    assert.equal((await get(t.hub.port, `/l/${created.token}/x`)).status, 200);
    t.clock.advance(60 * 60 * 1000);
    const gone = await get(t.hub.port, `/l/${created.token}/x`, { accept: 'application/json' });
    assert.equal(gone.status, 410);
    assert.equal(JSON.parse(gone.body).error.code, 'PUBLIC_LINK_GONE');
    const listed = (await t.http('GET', '/v1/links', { token: t.apiKey })).body.links as LinkInfo[];
    assert.equal(listed.find((l) => l.id === created.link.id)?.state, 'expired');
  });

  test('revocation counts at once for a link just served (and cached); revoking again changes nothing', async () => {
    const created = (await create({ service: 'web' })).body as CreatedLink;
    assert.equal((await get(t.hub.port, `/l/${created.token}/a`)).status, 200);
    assert.equal((await t.http('DELETE', `/v1/links/${created.link.id}`, { token: t.apiKey })).status, 204);
    assert.equal((await get(t.hub.port, `/l/${created.token}/a`)).status, 410);
    assert.equal((await t.http('DELETE', `/v1/links/${created.link.id}`, { token: t.apiKey })).status, 204);
    const revokes = await t.hub.db.withWorkspace(t.workspaceId, (tx) => tx.query("select 1 from audit_log where action = 'link.revoke' and target_id = $1", [created.link.id]));
    assert.equal(revokes.length, 1, 'one link.revoke event');
  });

  test("revoking cuts the link's open response at once", async () => {
    const created = (await create({ service: 'web' })).body as CreatedLink;
    const closedBefore = slow.closed;
    let received = 0;
    const cut = new Promise<boolean>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: t.hub.port, path: `/l/${created.token}/slow` }, (res) => {
          res.on('data', (c: Buffer) => (received += c.length));
          res.on('error', () => undefined);
          res.on('close', () => resolve(!res.complete));
        })
        .on('error', reject);
    });
    await eventually(async () => received > 0); // the response is under way
    assert.equal((await t.http('DELETE', `/v1/links/${created.link.id}`, { token: t.apiKey })).status, 204);
    assert.equal(await cut, true, 'the response ends without completing');
    await eventually(async () => slow.closed > closedBefore);
  });

  test("path mode keeps the hub's session cookie away from the app and the app's cookies under its own link", async () => {
    const created = (await create({ service: 'web' })).body as CreatedLink;
    const prefix = linkCookiePrefix(created.token);
    const answer = await get(t.hub.port, `/l/${created.token}/cookies`, { cookie: `pc_session=secret-session; theme=dark; ${prefix}theme=light` });
    assert.equal(answer.status, 200);
    assert.equal(seen.get('/cookies')?.cookie, 'theme=light', "only the cookies set through this link, under the app's names");
    const scope = `Path=/l/${created.token}/`;
    assert.deepEqual(answer.headers['set-cookie'], [`${prefix}pc_session=from-the-app; ${scope}`, `${prefix}app=1; ${scope}`]);
    assert.match(String(answer.headers['content-security-policy']), /^sandbox allow-scripts/);
    // Subdomain mode is the app's own origin: passed through, but for the hub's session cookie.
    const sub = await get(t.hub.port, '/cookies', { host: `${created.token}.links.test`, cookie: 'pc_session=secret-session; theme=dark' });
    assert.equal(seen.get('/cookies')?.cookie, 'theme=dark');
    assert.deepEqual(sub.headers['set-cookie'], ['app=1; Path=/']);
    assert.equal(sub.headers['content-security-policy'], undefined);
  });

  test('Set-Cookie rewriting: path mode moves every cookie under the link; subdomain mode drops Domain and the hub session', () => {
    const prefix = linkCookiePrefix('t'.repeat(52));
    assert.match(prefix, /^pcl[0-9a-f]{12}_$/);
    assert.notEqual(prefix, linkCookiePrefix('u'.repeat(52)));
    assert.equal(pathModeSetCookie('sid=1; Domain=hub.example; Path=/; Secure; HttpOnly; SameSite=Lax', prefix, '/l/t/'), `${prefix}sid=1; Secure; HttpOnly; SameSite=Lax; Path=/l/t/`);
    assert.equal(pathModeSetCookie('a=b=c;path=/x;domain', prefix, '/l/t/'), `${prefix}a=b=c; Path=/l/t/`);
    for (const nameless of ['=x; Path=/', 'x', ' =y']) assert.equal(pathModeSetCookie(nameless, prefix, '/l/t/'), undefined, nameless);
    assert.equal(subdomainSetCookie('a=1; Domain=.links.test; Path=/'), 'a=1; Path=/');
    assert.equal(subdomainSetCookie('__Host-pc_session=x; Path=/; Secure'), undefined);
    assert.equal(subdomainSetCookie('PC_SESSION=x'), undefined);
    assert.equal(cookiesForApp(`a=1; ${prefix}b=2;${prefix}=3; ${prefix}c=x=y`, prefix), 'b=2; c=x=y');
    assert.equal(cookiesForApp('a=1; pc_session=s; __Host-pc_session=s', undefined), 'a=1');
    assert.equal(cookiesForApp('pc_session=s', undefined), undefined);
  });

  test('Forwarded (RFC 7239): IPv6 addresses in brackets and values that are not tokens quoted', () => {
    assert.equal(forwardedHeader('192.0.2.1', 'http', 'example.com'), 'for=192.0.2.1;proto=http;host=example.com');
    assert.equal(forwardedHeader('2001:db8::1', 'https', 'hub.example:8443'), 'for="[2001:db8::1]";proto=https;host="hub.example:8443"');
    assert.equal(forwardedHeader(undefined, 'http', 'a"b\\c'), 'for=unknown;proto=http;host="a\\"b\\\\c"');
  });

  test('an Upgrade request the app answers with 200 leaves the connection HTTP: the next request goes to the hub again', async () => {
    const created = (await create({ service: 'web', paths: ['/api'] })).body as CreatedLink;
    const upgrade = `GET /l/${created.token}/api/up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    const answer = await raw(t.hub.port, `${upgrade}GET /l/${created.token}/other HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) [A-Z]/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 403, 200], answer);
    assert.match(answer, /app: GET \/api\/up/);
    assert.match(answer, /PATH_NOT_ALLOWED/);
    // An Upgrade request with a body is refused: where its body ends and the next request starts is guesswork.
    const withBody = await raw(t.hub.port, `POST /l/${created.token}/api/up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello`);
    assert.match(withBody, /^HTTP\/1\.1 400/);
    assert.match(withBody, /BAD_REQUEST/);
  });

  test('an Upgrade to h2c is not passed to the app: after its 101, HTTP/2 would carry requests past the limits', async () => {
    // An app that speaks h2c: after this 101 anything on the connection is HTTP/2, which the hub could not check.
    const h2c = http.createServer((req, res) => res.end(`plain: ${req.headers.upgrade ?? 'no upgrade'}`));
    h2c.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(`h2c got ${d.length} bytes`));
    });
    await new Promise<void>((resolve) => h2c.listen(0, '127.0.0.1', resolve));
    try {
      await agent.expose('h2app', `127.0.0.1:${(h2c.address() as AddressInfo).port}`, { protocol: 'http' });
      const created = (await create({ service: 'h2app', paths: ['/api'] })).body as CreatedLink;
      const upgrade = `GET /l/${created.token}/api/h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`;
      const answer = await raw(t.hub.port, `${upgrade}GET /l/${created.token}/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.doesNotMatch(answer, /h2c got/, answer);
      const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) [A-Z]/g)].map((m) => Number(m[1]));
      assert.deepEqual(statuses, [200, 403], answer);
      assert.match(answer, /plain: no upgrade/);
      assert.match(answer, /PATH_NOT_ALLOWED/);
    } finally {
      h2c.closeAllConnections();
      h2c.close();
    }
  });

  test('a 101 the app sends when no Upgrade was offered to it is not relayed: 502, and none of its bytes reach the client', async () => {
    const forcing = net.createServer((socket) => socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nRAW-FROM-APP')));
    await new Promise<void>((resolve) => forcing.listen(0, '127.0.0.1', resolve));
    try {
      await agent.expose('forcing', `127.0.0.1:${(forcing.address() as AddressInfo).port}`, { protocol: 'http' });
      const created = (await create({ service: 'forcing', paths: ['/api'] })).body as CreatedLink;
      const answer = await raw(t.hub.port, `GET /l/${created.token}/api/h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /l/${created.token}/admin HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 502 /, answer);
      assert.match(answer, /PROTOCOL_ERROR/);
      assert.doesNotMatch(answer, /RAW-FROM-APP|101 Switching/, answer);
    } finally {
      forcing.close();
    }
  });

  test('malformed and unknown link requests get 4xx answers and the hub keeps serving', async () => {
    const created = (await create({ service: 'web' })).body as CreatedLink;
    assert.equal((await get(t.hub.port, '/l/')).status, 404);
    assert.equal((await get(t.hub.port, '/l/../v1/me')).status, 404);
    assert.equal((await get(t.hub.port, `/l/${created.token.toUpperCase()}/`)).status, 404);
    assert.equal((await get(t.hub.port, '/x', { host: 'hub.links.test' })).status, 404, 'a non-token subdomain is not a link');
    const bare = await get(t.hub.port, `/l/${created.token}?q=1`);
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.location, `/l/${created.token}/?q=1`);
    assert.match(await raw(t.hub.port, `GET /l/${created.token}//evil.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 400/);
    assert.match(await raw(t.hub.port, `GET /l/${created.token}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`), /^HTTP\/1\.1 400/);
    assert.match(await raw(t.hub.port, `GET /l/${'a'.repeat(52)}/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`), /^HTTP\/1\.1 404/);
    assert.equal((await t.http('GET', '/healthz')).status, 200);
  });

  test('guessing tokens is bounded: past MAX_LINK_LOOKUPS_PER_MIN unknown tokens an address gets 429', async () => {
    const created = (await create({ service: 'web' })).body as CreatedLink;
    const answers: Array<{ status: number; headers: Record<string, unknown> }> = [];
    // The bucket refills as time passes (MAX per minute), so go on until the refusals start.
    while (!answers.some((a) => a.status === 429) && answers.length < 3 * MAX_LINK_LOOKUPS_PER_MIN) {
      const batch = Array.from({ length: 50 }, () => get(t.hub.port, `/l/${generateLinkToken()}/`, {}, 'GET', '127.0.0.5'));
      answers.push(...(await Promise.all(batch)));
    }
    const statuses = answers.map((a) => a.status);
    assert.deepEqual(new Set(statuses), new Set([404, 429]));
    assert.ok(statuses.filter((s) => s === 404).length >= MAX_LINK_LOOKUPS_PER_MIN, 'a full bucket of lookups first');
    // Each refusal says when to try again (a request after the batch may already pass: the bucket refills).
    for (const refused of answers.filter((a) => a.status === 429)) assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await get(t.hub.port, `/l/${created.token}/ok`)).status, 200, 'another address is not affected');
  });

  test('a request body that stalls is cut after PUBLIC_LINK_IDLE_TIMEOUT (1 s here)', async () => {
    const created = (await create({ service: 'web' })).body as CreatedLink;
    const abortedBefore = uploads.aborted;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(t.hub.port, '127.0.0.1');
      let out = '';
      socket.setEncoding('latin1').on('data', (c: string) => (out += c));
      socket.on('error', reject);
      socket.on('close', () => resolve(out));
      // 10 of the 1000 announced bytes, then nothing.
      socket.write(`POST /l/${created.token}/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
    });
    assert.equal(answer, '', 'the connection closes with no answer');
    await eventually(async () => uploads.aborted > abortedBefore);
    assert.equal((await t.http('GET', '/healthz')).status, 200);
  });

  test('every request through a link is audited once: 200 requests make fewer rows whose counts match the answers per address, method, path and status', async () => {
    const created = (await create({ service: 'web', methods: ['GET'], rate: 150 })).body as CreatedLink;
    /** What the clients saw, by `ip method path status`. */
    const answered = new Map<string, number>();
    const plan = Array.from({ length: 200 }, (_, i) => {
      const [method, path] = i % 10 === 9 ? ['POST', '/a'] : i % 3 === 0 ? ['GET', '/b'] : ['GET', '/a'];
      return { method, path, ip: i % 4 === 0 ? '127.0.0.2' : '127.0.0.1' };
    });
    for (let i = 0; i < plan.length; i += 20) {
      await Promise.all(
        plan.slice(i, i + 20).map(async ({ method, path, ip }) => {
          const answer = await get(t.hub.port, `/l/${created.token}${path}`, {}, method, ip);
          const kind = `${ip} ${method} ${path} ${answer.status}`;
          answered.set(kind, (answered.get(kind) ?? 0) + 1);
        }),
      );
    }
    assert.ok(answered.has('127.0.0.1 GET /a 429') || answered.has('127.0.0.2 GET /a 429'), `the rate limit refused some: ${JSON.stringify([...answered])}`);
    await t.hub.sharing.access.flush();
    const listed = await t.http('GET', '/v1/audit?action=link.access&limit=500', { token: t.apiKey });
    const rows = (listed.body.events as Array<{ targetId: string; ip: string; metadata: { method: string; path: string; status: number; count: number } }>).filter((e) => e.targetId === created.link.id);
    const audited = new Map<string, number>();
    for (const { ip, metadata } of rows) {
      assert.ok(Number.isInteger(metadata.count) && metadata.count >= 1, JSON.stringify(metadata));
      const kind = `${ip} ${metadata.method} ${metadata.path} ${metadata.status}`;
      audited.set(kind, (audited.get(kind) ?? 0) + metadata.count);
    }
    assert.deepEqual(new Map([...audited].sort()), new Map([...answered].sort()));
    assert.equal(rows.reduce((sum, row) => sum + row.metadata.count, 0), 200);
    assert.ok(rows.length < 200, `identical requests share rows (${rows.length} rows)`);
  });

  test('link tokens are redacted from logs, also one without a digit', () => {
    const token = generateLinkToken();
    const lettersOnly = 'abcdefghijklmnopqrstuvwxyz'.repeat(2);
    for (const secret of [token, lettersOnly]) {
      const line = redactSecrets(`GET /l/${secret}/x and https://${secret}.links.example.com/`);
      assert.ok(!line.includes(secret), line);
    }
  });

  test("a workspace cannot see, change or add another workspace's links (row level security)", async () => {
    const other = await t.addWorkspace('other');
    const created = (await create({ service: 'web' })).body as CreatedLink;
    const seenByOther = await t.hub.db.withWorkspace(other.workspaceId, (tx) => tx.query('select id from links'));
    assert.deepEqual(seenByOther, []);
    const updated = await t.hub.db.withWorkspace(other.workspaceId, (tx) => tx.query('update links set revoked_at = now() where id = $1 returning id', [created.link.id]));
    assert.deepEqual(updated, []);
    await assert.rejects(
      t.hub.db.withWorkspace(other.workspaceId, (tx) =>
        tx.query("insert into links (workspace_id, service_name, token_hash, token_prefix, created_by_type, expires_at) values ($1, 'web', $2, 'x', 'user', now())", [t.workspaceId, randomBytes(32)]),
      ),
      /row-level security/,
    );
    await assert.rejects(t.hub.db.withWorkspace(t.workspaceId, (tx) => tx.query('delete from links where id = $1', [created.link.id])), /permission denied/);
    assert.equal((await t.http('DELETE', `/v1/links/${created.link.id}`, { token: other.apiKey })).status, 404, "another workspace's key gets 404");
    assert.equal((await get(t.hub.port, `/l/${created.token}/still`)).status, 200, 'and the link still works');
  });
});
