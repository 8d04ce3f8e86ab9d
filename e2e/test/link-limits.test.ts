/**
 * A public link's limits tried as an attacker tries them, on a real hub process with `connect expose` and curl or
 * raw TCP as the stranger: paths that climb out of `--paths /api/v1` in the spellings two real static servers
 * read differently (Python's http.server, a Node static server) are refused with 400 AMBIGUOUS_PATH and audited; an
 * Upgrade request the app answers with 200 does not turn the connection into an unchecked pipe (every later request
 * is checked, rewritten and audited); and a client's own Forwarded and X-Real-IP never reach the app.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import type { AuditEntry, CreatedLink } from '@private-connect/api';
import {
  closeHttpServer,
  enrolAgent,
  eventually,
  exchange,
  parseResponses,
  removeDirs,
  startHubProcess,
  startNodeStatic,
  startPythonStatic,
  staticTree,
  type AgentHome,
  type HttpBackend,
  type HubProcess,
  type Proc,
} from '../src/index.js';

const run = promisify(execFile);
const SECRET = 'THE SECRET behind the link';

/** `curl --path-as-is` (the target goes out exactly as written): status, body. */
async function curlAsIs(url: string, args: string[] = []): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '--path-as-is', '--max-time', '30', '-H', 'accept: application/json', '-w', '\n%{http_code}', ...args, url], { encoding: 'utf8' });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** Paths under /api/v1 that name /secret.txt (or something else above /api/v1) for some server that decodes first. */
const CLIMBS = [
  '/api/v1/..%2f..%2fsecret.txt',
  '/api/v1/..%2F..%2Fsecret.txt',
  '/api/v1/%2e%2e/%2e%2e/secret.txt',
  '/api/v1/%2E%2E/%2E%2E/secret.txt',
  '/api/v1/..%5c..%5csecret.txt',
  '/api/v1/..%5csecret.txt',
  '/api/v1/%2e%2e%2fsecret.txt',
  '/api/v1/%2e%2e%2f%2e%2e%2fsecret.txt',
  '/api/v1/../../secret.txt',
  '/api/v1/..\\..\\secret.txt',
  '/api/v1/.%2e/.%2e/secret.txt',
  '/api/v1/..;/..;/secret.txt',
  '/api/v1/ok.txt%00',
  '/api/v1/%00/../../secret.txt',
  '/api/v1/%zz',
  '/api/v1/%2',
];

/** An app that answers every request itself, Upgrade ones included (200, never 101), and says what it saw. */
async function startPlainApp() {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  const wss = new WebSocketServer({ server, path: '/api/v1/ws' });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => closeHttpServer(server, wss),
  };
}

/** An app that never switches protocols: no 'upgrade' listener, so Node answers an Upgrade request like any other. */
async function startNoUpgradeApp() {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => closeHttpServer(server),
  };
}

/** A client WebSocket text frame (masked, as clients must send them), payload under 126 bytes. */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** A request head on the wire, for a link in path mode. */
function wireRequest(method: string, target: string, headers: Record<string, string> = {}): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return lines.join('\r\n') + '\r\n\r\n';
}

const UPGRADE = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };

describe('public link limits against an attacker (real hub, connect expose, curl and raw TCP)', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let root: string;
  const backends: HttpBackend[] = [];
  const exposers: Proc[] = [];
  let plain: Awaited<ReturnType<typeof startPlainApp>>;
  let noUpgrade: Awaited<ReturnType<typeof startNoUpgradeApp>>;

  const link = (args: string[]): CreatedLink => {
    const made = a.run(['link', ...args]);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    return made.json() as CreatedLink;
  };

  const accessesOf = async (linkId: string): Promise<AuditEntry[]> => {
    const res = await fetch(`${hub.url}/v1/audit?action=link.access&limit=500`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
    return ((await res.json()) as { events: AuditEntry[] }).events.filter((e) => e.targetId === linkId);
  };

  before(async () => {
    hub = await startHubProcess();
    a = await enrolAgent(hub, { label: 'static-server' });
    root = await staticTree({ 'api/v1/ok.txt': 'ok from the app\n', 'secret.txt': `${SECRET}\n` });
    backends.push(await startPythonStatic(root), await startNodeStatic(root));
    plain = await startPlainApp();
    noUpgrade = await startNoUpgradeApp();
    for (const [i, backend] of backends.entries()) exposers.push(await a.expose(`127.0.0.1:${backend.port}`, `static-${i}`, ['--http']));
    exposers.push(await a.expose(`127.0.0.1:${plain.port}`, 'plain', ['--http']));
    exposers.push(await a.expose(`127.0.0.1:${noUpgrade.port}`, 'no-upgrade', ['--http']));
  });

  after(async () => {
    await Promise.all(exposers.map((p) => p.stop()));
    await Promise.all(backends.map((b) => b.close()));
    await plain?.close();
    await noUpgrade?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, root);
  });

  for (const [i, name] of ['python3 -m http.server', 'a Node static server'].entries()) {
    test(`--paths /api/v1 in front of ${name}: no spelling of .. or an encoded separator reaches the secret; each is 400 AMBIGUOUS_PATH and audited`, async () => {
      const backend = backends[i]!;
      // Control: the server itself does serve the secret for these spellings, so the link is what must stop them.
      const direct = await Promise.all(CLIMBS.map((path) => curlAsIs(`${backend.url}${path}`).catch(() => ({ status: 0, body: '' }))));
      const served = CLIMBS.filter((_, j) => direct[j]!.body.includes(SECRET));
      assert.ok(served.length >= 3, `${backend.name} serves the secret for several of the climbs when asked directly (got ${served.join(' ')})`);

      const limited = link([`static-${i}`, '--expires', '1h', '--paths', '/api/v1']);
      const base = limited.url.replace(/\/$/, '');
      for (const path of CLIMBS) {
        const answer = await curlAsIs(`${base}${path}`);
        assert.ok(!answer.body.includes(SECRET), `${path}: the secret came back`);
        assert.equal(answer.status, 400, `${path}: ${answer.body}`);
        assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'AMBIGUOUS_PATH', path);
      }
      for (const path of ['/api/v1/ok.txt', '/api/v%31/ok.txt', '/api/v1/./ok.txt']) {
        const answer = await curlAsIs(`${base}${path}`);
        assert.equal(answer.status, 200, `${path}: ${answer.body}`);
        assert.equal(answer.body, 'ok from the app\n', path);
      }
      assert.equal((await curlAsIs(`${base}/secret.txt`)).status, 403, 'the plain path outside the prefix');

      // Identical requests of one flush window share a row: metadata.count says how many.
      const requests = (list: AuditEntry[], status: number) => list.filter((e) => e.metadata.status === status).reduce((sum, e) => sum + (e.metadata.count as number), 0);
      const events = await eventually(async () => {
        const found = await accessesOf(limited.link.id);
        assert.equal(requests(found, 400), CLIMBS.length);
        assert.equal(requests(found, 200), 3);
        return found;
      });
      for (const event of events.filter((e) => e.metadata.status === 400)) {
        assert.equal(event.metadata.code, 'AMBIGUOUS_PATH');
        assert.equal(event.ip, '127.0.0.1');
        assert.ok(typeof event.metadata.path === 'string' && event.metadata.path.startsWith('/api/v1/'), JSON.stringify(event.metadata));
      }
      const paths = new Set(events.filter((e) => e.metadata.status === 200).map((e) => e.metadata.path));
      assert.deepEqual([...paths], ['/api/v1/ok.txt'], 'the audit has the decoded path the limits were checked on');
    });
  }

  test('after an Upgrade request the app answers with 200, every request on the connection is still checked, rewritten and audited', async () => {
    const limited = link(['no-upgrade', '--expires', '1h', '--paths', '/api/v1', '--methods', 'GET']);
    const prefix = `/l/${limited.token}`;
    const before = noUpgrade.seen.length;
    const wire = await exchange(
      hub.port,
      wireRequest('GET', `${prefix}/api/v1/upgrade-me`, UPGRADE) +
        wireRequest('GET', `${prefix}/admin`) +
        wireRequest('DELETE', `${prefix}/api/v1/items/1`) +
        wireRequest('GET', `${prefix}/api/v1/..%2fadmin`) +
        wireRequest('GET', `${prefix}/api/v1/after`, { 'X-Forwarded-For': '203.0.113.9', Connection: 'close' }),
    );
    const answers = parseResponses(wire);
    assert.deepEqual(answers.map((r) => r.status), [200, 403, 405, 400, 200], wire.toString('latin1').slice(0, 2000));
    const seen = noUpgrade.seen.slice(before);
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url}`), ['GET /api/v1/upgrade-me', 'GET /api/v1/after'], 'the app saw only the allowed requests');
    assert.equal(seen[1]!.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen[1]!.headers['x-forwarded-prefix'], prefix);
    assert.equal(seen[1]!.headers['x-real-ip'], '127.0.0.1');

    const events = await eventually(async () => {
      const found = await accessesOf(limited.link.id);
      assert.equal(found.length, 5, JSON.stringify(found.map((e) => e.metadata)));
      return found;
    });
    const summary = events.map((e) => `${e.metadata.method} ${e.metadata.path} ${e.metadata.status}`).sort();
    assert.deepEqual(summary, ['DELETE /api/v1/items/1 405', 'GET /admin 403', 'GET /api/v1/..%2fadmin 400', 'GET /api/v1/after 200', 'GET /api/v1/upgrade-me 200'].sort());
  });

  test('after an Upgrade request answered with 200, the rate limit still counts every request on the connection (429)', async () => {
    const rated = link(['no-upgrade', '--expires', '1h', '--rate', '2']);
    const prefix = `/l/${rated.token}`;
    const wire = await exchange(
      hub.port,
      wireRequest('GET', `${prefix}/one`, UPGRADE) + wireRequest('GET', `${prefix}/two`) + wireRequest('GET', `${prefix}/three`) + wireRequest('GET', `${prefix}/four`, { Connection: 'close' }),
    );
    const answers = parseResponses(wire);
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 429, 429], wire.toString('latin1').slice(0, 2000));
    assert.ok(Number(answers[2]!.headers['retry-after']) >= 1);
    await eventually(async () => assert.equal((await accessesOf(rated.link.id)).filter((e) => e.metadata.status === 429).length, 2));
  });

  test('on one connection: an Upgrade the app refuses, a refused path, then a real WebSocket upgrade (101) that echoes', async () => {
    const limited = link(['plain', '--expires', '1h', '--paths', '/api/v1']);
    const prefix = `/l/${limited.token}`;
    const wire = await exchange(
      hub.port,
      Buffer.concat([
        // ws answers 400 to an Upgrade on another path than its own: not a 101, so the connection stays HTTP.
        Buffer.from(wireRequest('GET', `${prefix}/api/v1/not-ws`, UPGRADE)),
        Buffer.from(wireRequest('GET', `${prefix}/admin`)),
        Buffer.from(wireRequest('GET', `${prefix}/api/v1/ws`, UPGRADE)),
        clientTextFrame('hello over the link'),
        // A close frame: the app closes, and so does the connection.
        Buffer.from([0x88, 0x80, 1, 2, 3, 4]),
      ]),
    );
    const text = wire.toString('latin1');
    const answers = parseResponses(wire);
    assert.deepEqual(answers.slice(0, 3).map((r) => r.status), [400, 403, 101], text.slice(0, 2000));
    assert.match(answers[2]!.body, /hello over the link/, 'the echo came back after the 101');
    const events = await eventually(async () => {
      const found = await accessesOf(limited.link.id);
      assert.equal(found.length, 3);
      return found;
    });
    assert.deepEqual(events.map((e) => `${e.metadata.path} ${e.metadata.status} ${e.metadata.upgrade ?? false}`).sort(), ['/admin 403 false', '/api/v1/not-ws 400 true', '/api/v1/ws 101 true']);
  });

  test("a client's own Forwarded and X-Real-IP never reach the app: the hub sets both", async () => {
    const open = link(['plain', '--expires', '1h']);
    const answer = await curlAsIs(`${open.url}api/v1/headers`, ['-H', 'Forwarded: for=6.6.6.6;proto=https;host=bank.example', '-H', 'X-Real-IP: 6.6.6.6', '-H', 'forwarded: for=7.7.7.7']);
    assert.equal(answer.status, 200, answer.body);
    const headers = (JSON.parse(answer.body) as { headers: Record<string, string> }).headers;
    assert.equal(headers['x-real-ip'], '127.0.0.1');
    assert.equal(headers.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${hub.port}"`);
  });
});
