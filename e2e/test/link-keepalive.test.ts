/**
 * A public link whose app closes idle keep-alive connections (Node's default keepAliveTimeout is 5 s; nginx,
 * gunicorn and most frameworks do the same) must keep answering: the hub may never hand a new request to a stream
 * whose app side has already ended. A hub process, `connect expose --http` for an app that closes idle connections
 * after two seconds, curl through the link. At rest, with every client gone, the hub's stream gauge is back to zero (and
 * never a half stream).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { CreatedLink } from '@private-connect/api';
import { enrolAgent, eventually, removeDirs, startHubProcess, type AgentHome, type HubProcess, type Proc } from '../src/index.js';

const run = promisify(execFile);

/** Status of one curl request through the link (000 when curl gave up: the link did not answer in 5 s). */
async function curlStatus(url: string, args: string[] = []): Promise<string> {
  try {
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', ...args, url]);
    return stdout;
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? 'failed');
  }
}

describe('a public link in front of an app that closes idle connections', () => {
  let hub: HubProcess;
  let agent: AgentHome;
  let exposer: Proc;
  let app: http.Server;
  let link: CreatedLink;

  before(async () => {
    app = http.createServer((_req, res) => res.end('hello'));
    app.keepAliveTimeout = 2_000;
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    hub = await startHubProcess();
    agent = await enrolAgent(hub, { label: 'keepalive-app' });
    exposer = await agent.expose(`127.0.0.1:${(app.address() as AddressInfo).port}`, 'web', ['--http']);
    const made = agent.run(['link', 'web', '--expires', '1h']);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    link = made.json() as CreatedLink;
  });

  after(async () => {
    await exposer?.stop();
    app?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  test('one client connection kept open after its answer holds exactly one stream (never half of one)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        http.get(link.url, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      });
      assert.equal(status, 200);
      await eventually(async () => assert.equal((await hub.metrics()).get('connect_streams_open'), 1), 2_000);
    } finally {
      agent.destroy();
    }
  });

  test('requests after the app closed its idle connections are answered, and no stream is left at rest', async () => {
    // Several connections at once, so that the hub holds several upstream connections to the app.
    const first = await Promise.all(Array.from({ length: 8 }, () => curlStatus(link.url, ['-o', '/dev/null', link.url])));
    assert.deepEqual(first, Array(8).fill('200200'));
    // The app closes every one of them.
    await new Promise((r) => setTimeout(r, 3_500));
    const later: string[] = [];
    for (let i = 0; i < 12; i++) later.push(await curlStatus(link.url));
    assert.deepEqual(later, Array(12).fill('200'), 'every request after the idle close must be answered');
    const burst = await Promise.all(Array.from({ length: 8 }, () => curlStatus(link.url)));
    assert.deepEqual(burst, Array(8).fill('200'));
    // At rest: the app closed its side of everything, so nothing may stay open in the hub.
    await eventually(async () => {
      const open = (await hub.metrics()).get('connect_streams_open');
      assert.equal(open, 0, `connect_streams_open at rest: ${open}`);
    }, 10_000);
  });
});
