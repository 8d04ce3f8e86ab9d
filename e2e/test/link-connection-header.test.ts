/**
 * A client's Connection header names the headers that are hop-by-hop for its message; the proxy drops them. If it
 * dropped Content-Length while still sending the body on, the app would read that body as a second request: one no
 * limit of the link checked and nobody audited (request smuggling). A real hub, `connect expose --http` of an app
 * that records every request it reads, raw sockets: on a connection the public-link fast path serves (it starts with
 * the link request) and on one Node's HTTP server serves (it starts with an API request).
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CreatedLink } from '@private-connect/api';
import { enrolAgent, exchange, parseResponses, removeDirs, startHubProcess, type AgentHome, type HubProcess, type Proc } from '../src/index.js';

describe('Connection: content-length on a public link', () => {
  let hub: HubProcess;
  let agent: AgentHome;
  let exposer: Proc;
  let app: http.Server;
  let link: CreatedLink;
  /** Every request the app read: method, path, the Content-Length it saw. */
  const seen: string[] = [];

  before(async () => {
    app = http.createServer((req, res) => {
      // The exposing agent's own health check (HEAD /, User-Agent connect-check) comes whenever it comes: not a client's.
      if (req.headers['user-agent'] !== 'connect-check') seen.push(`${req.method} ${req.url} ${req.headers['content-length'] ?? '-'}`);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    hub = await startHubProcess();
    agent = await enrolAgent(hub, { label: 'smuggling-target' });
    exposer = await agent.expose(`127.0.0.1:${(app.address() as AddressInfo).port}`, 'web', ['--http']);
    const made = agent.run(['link', 'web', '--expires', '1h', '--methods', 'POST', '--paths', '/api']);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    link = made.json() as CreatedLink;
  });

  after(async () => {
    await exposer?.stop();
    app?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
  const request = () =>
    `POST /l/${link.token}/api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${smuggled.length}\r\nConnection: content-length, close\r\n\r\n${smuggled}`;

  for (const [way, before] of [
    ['the fast path (the connection starts with the link request)', ''],
    ["Node's HTTP server (the connection starts with an API request)", 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
  ] as const) {
    test(`through ${way}: the app reads one POST with its Content-Length, never the body as a request`, async () => {
      seen.length = 0;
      const answers = parseResponses(await exchange(hub.port, before + request()));
      assert.deepEqual(answers.map((a) => a.status), before ? [200, 200] : [200]);
      // The GET a direct request would have been refused (405: the link allows POST only).
      assert.deepEqual(seen, [`POST /api/x ${smuggled.length}`]);
    });
  }
});
