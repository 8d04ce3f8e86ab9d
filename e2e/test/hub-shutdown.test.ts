/**
 * Graceful hub shutdown with real processes: SIGTERM turns /readyz 503, agents get GOAWAY, a stream in flight
 * finishes within SHUTDOWN_GRACE_MS, the hub exits 0, and the agents reconnect to the next hub on the same port
 * without the backoff they would otherwise build up (their backoff cap is set high here to show it).
 */

import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, enrolAgent, eventually, removeDirs, startHubProcess, tempDir, type AgentHome, type HubProcess, type Proc } from '../src/index.js';

const CHUNKS = 10;
const CHUNK_GAP_MS = 200;
const GRACE_MS = 8000;

/** Answers any data with CHUNKS lines, CHUNK_GAP_MS apart, then closes: a response that takes ~2 s. */
function slowServer(): Promise<Server> {
  const server = createServer((socket) => {
    socket.once('data', () => {
      let sent = 0;
      const timer = setInterval(() => {
        socket.write(`chunk ${sent}\n`);
        if (++sent === CHUNKS) {
          clearInterval(timer);
          socket.end();
        }
      }, CHUNK_GAP_MS);
      socket.on('close', () => clearInterval(timer));
    });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Everything the socket receives until the server closes it. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

const lineTime = (line: Record<string, unknown>) => Date.parse(String(line.time));

describe('graceful hub shutdown', () => {
  let dataDir: string;
  let hubA: HubProcess;
  let hubB: HubProcess | undefined;
  let a: AgentHome;
  let b: AgentHome;
  let slow: Server;
  const procs: Proc[] = [];

  before(async () => {
    dataDir = await tempDir('shutdown');
    hubA = await startHubProcess({ dataDir, env: { SHUTDOWN_GRACE_MS: String(GRACE_MS) } });
    // A 30 s backoff cap: without GOAWAY's fast path, a few refused attempts would already mean seconds of waiting.
    const env = { CONNECT_RECONNECT_MAX_MS: '30000' };
    [a, b] = await Promise.all([enrolAgent(hubA, { label: 'server', env }), enrolAgent(hubA, { label: 'laptop', env })]);
    slow = await slowServer();
  });

  after(async () => {
    for (const proc of procs) await proc.stop();
    slow?.close();
    await hubA?.stop();
    await hubB?.stop();
    await removeDirs(dataDir, a?.home, b?.home);
  });

  test('agents get GOAWAY, the open stream finishes, the hub exits, agents reconnect to its successor at once', async () => {
    const exposer = await a.expose(`127.0.0.1:${(slow.address() as AddressInfo).port}`, 'slow');
    const { proc: reacher, port } = await b.reach('slow', ['--port', '0']);
    procs.push(exposer, reacher);

    const client = await connect(port);
    const received = readAll(client);
    const firstChunk = new Promise((resolve) => client.once('data', resolve));
    client.write('go\n');
    await firstChunk; // the stream is open end to end and the response is under way

    const stoppedAt = Date.now();
    hubA.proc.child.kill('SIGTERM');
    const notReady = await fetch(`${hubA.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.equal(((await notReady.json()) as { state: string }).state, 'draining');

    for (const agent of [exposer, reacher]) await agent.waitFor((l) => l.type === 'goaway', 5000, 'goaway event');
    const body = await received;
    assert.equal(body.split('\n').filter(Boolean).length, CHUNKS, `the whole response arrived: ${JSON.stringify(body)}`);

    assert.equal(await hubA.proc.exited, 0);
    const stoppedIn = Date.now() - stoppedAt;
    assert.ok(stoppedIn < GRACE_MS, `the hub exited once the stream was done (${stoppedIn} ms), not at the end of the grace period`);
    const drained = hubA.proc.lines.find((l) => typeof l === 'object' && l.msg === 'draining: agents were told to reconnect') as Record<string, unknown>;
    assert.ok(drained && drained.streams === 1, JSON.stringify(drained));
    assert.ok(!hubA.proc.lines.some((l) => typeof l === 'object' && l.msg === 'grace period over: cutting the streams still open'));

    hubB = await startHubProcess({ dataDir, port: hubA.port, apiKey: hubA.apiKey });
    const listening = hubB.proc.lines.find((l) => typeof l === 'object' && l.msg === 'hub listening') as Record<string, unknown>;
    for (const agent of [exposer, reacher]) {
      const goaway = agent.lines.findIndex((l) => typeof l === 'object' && l.type === 'goaway');
      const reconnected = await agent.waitFor((l) => l.type === 'connected' && agent.lines.indexOf(l) > goaway, 10_000, 'connected after goaway');
      const delay = lineTime(reconnected) - lineTime(listening);
      assert.ok(delay < 2000, `reconnected ${delay} ms after the new hub listened`);
      // Every retry after GOAWAY waited at most its reconnectMs (500), never the growing backoff.
      const retries = agent.lines.slice(goaway).filter((l): l is Record<string, unknown> => typeof l === 'object' && l.type === 'disconnected');
      assert.ok(retries.length > 0);
      for (const retry of retries) assert.ok(Number(retry.retryInMs) <= 500, JSON.stringify(retry));
    }

    // The tunnel works through the new hub.
    await eventually(async () => {
      const again = await connect(port);
      const text = readAll(again);
      again.write('again\n');
      assert.equal((await text).split('\n').filter(Boolean).length, CHUNKS);
    });
  });
});
