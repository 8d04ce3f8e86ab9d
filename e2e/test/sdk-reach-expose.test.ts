/**
 * The SDK's reach() and expose() against a real hub process: config folders written by `connect up`, bytes through
 * the end-to-end encrypted tunnel, stable ports, a rotated token saved like the CLI saves it, and the refusals
 * (wrong token, unknown service, taken name, no config, no hub) as ConnectError codes instead of a hang.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ConnectError } from '@private-connect/protocol';
import { expose, portIsFree, readConfig, reach, type AgentEvent } from '@private-connect/sdk';
import { echoServer, enrolAgent, eventually, removeDirs, roundTrip, startHubProcess, tempDir, type AgentHome, type HubProcess, type TcpServer } from '../src/index.js';

/** Asserts that `promise` rejects with a ConnectError of `code`. */
async function rejectsWith(promise: Promise<unknown>, code: ConnectError['code']): Promise<ConnectError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected ${code}, but it resolved`),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof ConnectError, `expected a ConnectError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

describe('reach() and expose() from the SDK', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let echo: TcpServer;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'sdk-server' }), enrolAgent(hub, { label: 'sdk-laptop' })]);
    echo = await echoServer();
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await echo?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home);
  });

  test('bytes sent into the reach() port come back from the echo server behind expose(), end-to-end encrypted', async () => {
    const exposed = await expose(`127.0.0.1:${echo.port}`, { name: 'echo', home: a.home });
    cleanups.push(() => exposed.close());
    assert.equal(exposed.service.name, 'echo');
    assert.equal(exposed.service.target, `127.0.0.1:${echo.port}`);
    const events: AgentEvent[] = [];
    const reached = await reach('echo', { home: b.home, onEvent: (event) => events.push(event) });
    try {
      assert.equal(reached.host, '127.0.0.1');
      const payload = Buffer.concat([Buffer.from('hello through the hub\n'), Buffer.alloc(256 * 1024, 7)]);
      const reply = await roundTrip(reached.port, payload);
      assert.ok(reply.equals(payload), `${reply.length} bytes came back, ${payload.length} were sent`);
      // The exposing agent's identity key was pinned on the first stream: the stream was encrypted end to end.
      const pinned = events.find((e): e is Extract<AgentEvent, { type: 'agent_pinned' }> => e.type === 'agent_pinned');
      assert.equal(pinned?.label, 'sdk-server');
      assert.equal(pinned.fingerprint, exposed.agent.fingerprint);
      assert.match(await readFile(`${b.home}/known_agents.json`, 'utf8'), /echo/);
      assert.equal(reached.agent.traffic('echo').bytesIn, payload.length);
    } finally {
      await reached.close();
    }
  });

  test('close() frees the port, and the next reach() of the name gets the same port from ports.json', async () => {
    const first = await reach('echo', { home: b.home });
    const port = first.port;
    assert.deepEqual(JSON.parse(await readFile(`${b.home}/ports.json`, 'utf8')).echo, port);
    await first.close();
    assert.equal(await portIsFree(port, '127.0.0.1'), true, 'nothing listens on the port after close()');
    const second = await reach('echo', { home: b.home });
    try {
      assert.equal(second.port, port);
      assert.equal((await roundTrip(second.port, 'again')).toString(), 'again');
    } finally {
      await second.close();
    }
  });

  test('connect reach (the CLI) reaches a service exposed with expose(), and reach() one exposed with connect expose', async () => {
    const exposed = await expose(`127.0.0.1:${echo.port}`, { name: 'sdk-echo', home: a.home });
    cleanups.push(() => exposed.close());
    const cli = await b.reach('sdk-echo', ['--port', '0']);
    cleanups.push(() => cli.proc.stop());
    assert.equal((await roundTrip(cli.port, 'sdk to cli')).toString(), 'sdk to cli');
    const exposer = await a.expose(`127.0.0.1:${echo.port}`, 'cli-echo');
    cleanups.push(() => exposer.stop());
    const reached = await reach('cli-echo', { home: b.home, port: 0 });
    cleanups.push(() => reached.close());
    assert.equal((await roundTrip(reached.port, 'cli to sdk')).toString(), 'cli to sdk');
  });

  test('explicit hubUrl and token work without a config.json', async () => {
    const config = await readConfig(b.home);
    assert.ok(config);
    const home = await tempDir('sdk-explicit');
    cleanups.push(() => removeDirs(home));
    const reached = await reach('echo', { home, hubUrl: config.hubUrl, token: config.token, port: 0 });
    try {
      assert.equal((await roundTrip(reached.port, 'explicit')).toString(), 'explicit');
    } finally {
      await reached.close();
    }
  });

  test('a token the hub rotates while reach() runs is saved to config.json, as the CLI saves it', async () => {
    const old = await readConfig(b.home);
    assert.ok(old);
    const events: AgentEvent[] = [];
    const reached = await reach('echo', { home: b.home, port: 0, onEvent: (event) => events.push(event) });
    try {
      const res = await fetch(`${hub.url}/v1/agents/${old.agentId}/rotate-token`, { method: 'POST', headers: { authorization: `Bearer ${hub.apiKey}` } });
      assert.equal(res.status, 200);
      const rotated = await eventually(async () => {
        const config = await readConfig(b.home);
        assert.notEqual(config?.token, old.token);
        return config!;
      });
      assert.deepEqual({ ...rotated, token: old.token, tokenExpiresAt: old.tokenExpiresAt }, old, 'only the token and its expiry change');
      await eventually(async () => assert.ok(events.some((e) => e.type === 'token_rotated' && e.saved), JSON.stringify(events)));
    } finally {
      await reached.close();
    }
  });

  test('refuses a wrong token with UNAUTHORIZED (reach and expose), without a hang', async () => {
    const home = await tempDir('sdk-wrong-token');
    cleanups.push(() => removeDirs(home));
    const { token } = (await readConfig(b.home))!;
    const wrong = { home, hubUrl: hub.url, token: token.slice(0, -6) + (token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA') };
    await rejectsWith(reach('echo', { ...wrong, port: 0 }), 'UNAUTHORIZED');
    await rejectsWith(expose(`127.0.0.1:${echo.port}`, { ...wrong, name: 'never' }), 'UNAUTHORIZED');
  });

  test('refuses an unknown service with SERVICE_NOT_FOUND and leaves no listener behind', async () => {
    const error = await rejectsWith(reach('no-such-service', { home: b.home, port: 0 }), 'SERVICE_NOT_FOUND');
    assert.match(error.message, /no-such-service/);
    assert.equal(JSON.parse(await readFile(`${b.home}/ports.json`, 'utf8'))['no-such-service'], undefined);
  });

  test('refuses a name another agent exposes with SERVICE_NAME_TAKEN', async () => {
    await rejectsWith(expose(`127.0.0.1:${echo.port}`, { name: 'echo', home: b.home }), 'SERVICE_NAME_TAKEN');
  });

  test('refuses bad input before connecting: INVALID_NAME, INVALID_TARGET, half the credentials', async () => {
    await rejectsWith(reach('Not A Name', { home: b.home }), 'INVALID_NAME');
    await rejectsWith(expose('localhost:99999', { name: 'x', home: a.home }), 'INVALID_TARGET');
    await rejectsWith(reach('echo', { home: b.home, hubUrl: hub.url }), 'BAD_REQUEST');
  });

  test('without config.json (and no hubUrl/token) it rejects with NOT_ENROLLED naming the folder', async () => {
    const home = await tempDir('sdk-empty');
    cleanups.push(() => removeDirs(home));
    const error = await rejectsWith(reach('echo', { home }), 'NOT_ENROLLED');
    assert.ok(error.message.includes(home), error.message);
  });

  test('a hub that is not there rejects with HUB_UNREACHABLE once connectTimeoutMs has passed', async () => {
    const closed = await echoServer();
    await closed.close(); // a port nothing listens on
    const config = await readConfig(b.home);
    const error = await rejectsWith(
      reach('echo', { home: b.home, hubUrl: `http://127.0.0.1:${closed.port}`, token: config!.token, connectTimeoutMs: 1500, port: 0 }),
      'HUB_UNREACHABLE',
    );
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${closed.port}`));
  });
});
