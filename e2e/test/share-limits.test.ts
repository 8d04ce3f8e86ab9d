/**
 * The limits of a share over HTTP hold on every request, tried the way an attacker would: a hub process, workspace X
 * exposing HTTP services with `connect expose --http` and sharing them `--methods GET --paths /api/v1`, workspace Y
 * joining and reaching them with the real `connect` CLI, then curl and hand-written HTTP on raw TCP connections.
 *
 * - Paths: two real static servers that read paths differently (Python's http.server decodes %2f and then resolves
 *   `..`; a Node static server resolves through WHATWG URL, then decodes) serve api/v1/ok.txt and, at their root,
 *   secret.txt. Every spelling of `..`, encoded separators, NUL and bad escapes gets 400 AMBIGUOUS_PATH, never the
 *   secret, and lands in X's audit log.
 * - Upgrade: an app that answers 200 to an Upgrade request does not turn the connection into an unchecked pipe: the
 *   requests after it on the same connection (sequential or pipelined) are refused and audited; a real WebSocket
 *   upgrade (101) still works.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import type { AuditEntry, CreatedShare } from '@private-connect/api';
import { enrolAgent, eventually, newWorkspace, removeDirs, startHubProcess, type AgentHome, type HubProcess } from '../src/index.js';
import { startNodeStatic, startPythonStatic, staticTree, type HttpBackend } from '../src/http-backends.js';
import { rawHttpClient, type WireResponse } from '../src/raw-http.js';

const run = promisify(execFile);
const SECRET = 'the-secret-at-the-root-7f3a';

/** curl with the path exactly as written (no dot-segment squashing by curl); status 0 when no answer came. */
async function curl(port: number, path: string): Promise<{ status: number; body: string }> {
  const args = ['-s', '--path-as-is', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`];
  // Python's http.server drops the connection on a NUL in the path (an uncaught ValueError): curl exits 52.
  const { stdout } = await run('curl', args).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '\n0' }));
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** X's share.access events of one share, once `ready` holds for them. */
async function accessEvents(hub: HubProcess, shareId: string, ready: (events: AuditEntry[]) => boolean): Promise<AuditEntry[]> {
  return eventually(async () => {
    const answer = await fetch(`${hub.url}/v1/audit?limit=500`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
    assert.equal(answer.status, 200);
    const events = ((await answer.json()) as { events: AuditEntry[] }).events.filter((e) => e.action === 'share.access' && e.targetId === shareId);
    assert.ok(ready(events), `not yet in the audit log: ${events.map((e) => `${e.metadata.method} ${e.metadata.path} ${e.metadata.status}`).join(' | ')}`);
    return events;
  });
}

const line = (e: AuditEntry) => `${e.metadata.service} ${e.metadata.method} ${e.metadata.path} ${e.metadata.status}`;

/** Path spellings that climb out of /api/v1 on some server, or that a server could read as another path. */
const ATTACKS = [
  '/api/v1/..%2f..%2fsecret.txt',
  '/api/v1/%2e%2e/%2e%2e/secret.txt',
  '/api/v1/..%5csecret.txt',
  '/api/v1/%2e%2e%2fsecret.txt',
  '/api/v1/../../secret.txt',
  '/api/v1/ok.txt%00',
  '/api/v1/%zz',
];

describe('share limits hold on every request (attacks through a real share)', () => {
  let hub: HubProcess;
  let x: AgentHome;
  let y: AgentHome;
  let yWorkspace = '';
  let root = '';
  const backends: Record<'python' | 'node', HttpBackend | undefined> = { python: undefined, node: undefined };
  let app: Server;
  let live: Server;
  let wss: WebSocketServer;
  /** Requests the app behind the Upgrade test saw, as `METHOD URL`. */
  const appSaw: string[] = [];
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    hub = await startHubProcess();
    const other = await newWorkspace(hub, 'mallory@partner.example');
    yWorkspace = other.workspaceId;
    x = await enrolAgent(hub, { label: 'x-files-server' });
    y = await enrolAgent({ url: hub.url, apiKey: other.apiKey }, { label: 'y-laptop' });
    root = await staticTree({ 'api/v1/ok.txt': 'ok\n', 'secret.txt': `${SECRET}\n` });
    backends.python = await startPythonStatic(root);
    backends.node = await startNodeStatic(root);
    // An app with no Upgrade handling: it answers an Upgrade request with 200 and keeps the connection.
    app = createServer((req, res) => {
      appSaw.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, url: req.url }));
    });
    wss = new WebSocketServer({ noServer: true });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo ${String(data)}`)));
    live = createServer((_req, res) => res.writeHead(426).end());
    live.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
    for (const server of [app, live]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const services: Array<[number, string]> = [
      [backends.python.port, 'files-py'],
      [backends.node.port, 'files-node'],
      [(app.address() as AddressInfo).port, 'app'],
      [(live.address() as AddressInfo).port, 'live'],
    ];
    for (const [port, name] of services) {
      const proc = await x.expose(`127.0.0.1:${port}`, name, ['--http']);
      stops.push(() => proc.stop());
    }
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    for (const client of wss?.clients ?? []) client.terminate();
    for (const server of [app, live]) {
      server?.closeAllConnections();
      await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    }
    await backends.python?.close();
    await backends.node?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, x?.home, y?.home, root);
  });

  /** X shares `services` with --methods GET --paths /api/v1; Y joins as `alias` and reaches each; returns the ports. */
  async function shareAndReach(alias: string, services: string[]): Promise<{ shareId: string; ports: Record<string, number> }> {
    const shared = x.run(['share', ...services, '--name', alias, '--methods', 'GET', '--paths', '/api/v1', '--expires', '1d']);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    const { code, share } = shared.json() as CreatedShare;
    const joined = y.run(['join', code, '--as', alias]);
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    const ports: Record<string, number> = {};
    for (const service of services) {
      const reach = await y.reach(`${alias}/${service}`, ['--port', '0']);
      stops.push(() => reach.proc.stop());
      ports[service] = reach.port;
    }
    return { shareId: share.id, ports };
  }

  test('encoded separators, .. in any spelling, NUL and bad escapes get 400 AMBIGUOUS_PATH from both backends, never the secret, and are audited', async () => {
    // The backends are really exposed to these attacks when asked directly: each serves the secret to one of them.
    for (const backend of [backends.python!, backends.node!]) {
      const leaks: string[] = [];
      for (const path of ATTACKS) if ((await curl(backend.port, path)).body.includes(SECRET)) leaks.push(path);
      assert.ok(leaks.length > 0, `${backend.name} asked directly leaks the secret to none of the attacks: the test would prove nothing`);
    }

    const { shareId, ports } = await shareAndReach('files', ['files-py', 'files-node']);
    const expected: string[] = [];
    for (const service of ['files-py', 'files-node']) {
      const ok = await curl(ports[service]!, '/api/v1/ok.txt');
      assert.deepEqual([ok.status, ok.body], [200, 'ok\n'], `${service}: the allowed file`);
      expected.push(`${service} GET /api/v1/ok.txt 200`);
      for (const path of ATTACKS) {
        const answer = await curl(ports[service]!, path);
        assert.ok(!answer.body.includes(SECRET), `${service} ${path} served the secret`);
        assert.equal(answer.status, 400, `${service} ${path}: ${answer.body}`);
        assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'AMBIGUOUS_PATH', `${service} ${path}`);
        expected.push(`${service} GET ${path} 400`);
      }
    }

    const events = await accessEvents(hub, shareId, (list) => list.length >= expected.length);
    const seen = events.map(line);
    for (const entry of expected) assert.ok(seen.includes(entry), `${entry} in X's audit log: ${seen.join(' | ')}`);
    for (const e of events) assert.deepEqual([e.actorId, e.ip], [yWorkspace, '127.0.0.1']);
  });

  test('an Upgrade the app answers with 200 opens no unchecked pipe: later and pipelined requests are refused and audited; a real WebSocket still works', async () => {
    const { shareId, ports } = await shareAndReach('apps', ['app', 'live']);
    appSaw.splice(0); // `connect expose --http` checked the app with HEAD / when it started
    const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    const request = (method: string, path: string, close = false) => `${method} ${path} HTTP/1.1\r\nHost: app\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    /** `status url` for the app's answers, `status code` for the share's refusals. */
    const summary = (a: WireResponse | undefined) => {
      if (!a) return 'connection ended';
      const body = JSON.parse(a.body) as { error?: { code: string }; url?: string };
      return `${a.status} ${body.error?.code ?? body.url}`;
    };

    // One request at a time on one connection, each sent once the previous one was answered.
    const one = await rawHttpClient(ports.app!);
    const answers: string[] = [];
    for (const wire of [upgrade('/api/v1/chat'), request('GET', '/admin'), request('DELETE', '/api/v1/items'), request('GET', '/api/v1/items')]) {
      one.write(wire);
      answers.push(summary(await one.next()));
    }
    one.close();
    assert.deepEqual(answers, ['200 /api/v1/chat', '403 PATH_NOT_ALLOWED', '405 METHOD_NOT_ALLOWED', '200 /api/v1/items']);

    // All pipelined in one write on another connection.
    const two = await rawHttpClient(ports.app!);
    two.write(upgrade('/api/v1/chat2') + request('GET', '/admin/users') + request('DELETE', '/api/v1/items/2') + request('GET', '/api/v1/last', true));
    const pipelined: string[] = [];
    for (let i = 0; i < 4; i++) pipelined.push(summary(await two.next()));
    two.close();
    assert.deepEqual(pipelined, ['200 /api/v1/chat2', '403 PATH_NOT_ALLOWED', '405 METHOD_NOT_ALLOWED', '200 /api/v1/last']);
    assert.deepEqual(appSaw.splice(0), ['GET /api/v1/chat', 'GET /api/v1/items', 'GET /api/v1/chat2', 'GET /api/v1/last'], 'refused requests never reach the app');

    // A real WebSocket upgrade (101) through the same share becomes a pipe both ways.
    const ws = new WebSocket(`ws://127.0.0.1:${ports.live}/api/v1/ws`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const replies: string[] = [];
    for (const text of ['one', 'two']) {
      ws.send(text);
      replies.push(String(await new Promise((resolve) => ws.once('message', resolve))));
    }
    ws.close();
    assert.deepEqual(replies, ['echo one', 'echo two']);

    const expected = [
      'app GET /api/v1/chat 200',
      'app GET /admin 403',
      'app DELETE /api/v1/items 405',
      'app GET /api/v1/items 200',
      'app GET /api/v1/chat2 200',
      'app GET /admin/users 403',
      'app DELETE /api/v1/items/2 405',
      'app GET /api/v1/last 200',
      'live GET /api/v1/ws 101',
    ];
    const events = await accessEvents(hub, shareId, (list) => list.length >= expected.length);
    assert.deepEqual(events.map(line).sort(), [...expected].sort(), "X's audit log has every request, once");
  });
});
