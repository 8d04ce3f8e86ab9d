/**
 * Workspace isolation: two workspaces on one hub. Nothing an agent of workspace 2 can do (CLI, HTTP API, or the
 * wire protocol spoken by hand) reaches, lists or even reveals the existence of a service of workspace 1.
 *
 * The hub runs in this process (startHub, PGlite in a temp folder) because the bootstrap creates one workspace
 * only; the second is inserted into its database with an API key of its own. Agents are enrolled with the real CLI.
 */

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FrameType, parseErrorPayload, type ServiceInfo } from '@private-connect/protocol';
import {
  connect,
  connectRawAgent,
  echoServer,
  enrolAgentAsync,
  removeDirs,
  roundTrip,
  startInProcessHub,
  type AsyncAgentHome,
  type CliResult,
  type InProcessHub,
  type Proc,
  type TcpServer,
} from '../src/index.js';

/** The single error line `connect --json reach|expose` prints, with its code and message. */
function errorLine(result: CliResult): { code: string; message: string } {
  const errors = result.lines().filter((l) => l.type === 'error');
  assert.equal(errors.length, 1, `expected one error line:\n${result.stdout}\n${result.stderr}`);
  return { code: String(errors[0]!.code), message: String(errors[0]!.message) };
}

/** `connect reach NAME` run to its end: the exit code and the output with the name replaced, for comparison. */
async function reachOutcome(agent: AsyncAgentHome, name: string, json: boolean) {
  const result = await agent.run(['reach', name, '--port', '0'], { json });
  return { code: result.code, result, stdout: result.stdout.replaceAll(name, '<NAME>'), stderr: result.stderr.replaceAll(name, '<NAME>') };
}

async function servicesOver(url: string, credential: string): Promise<{ status: number; names: string[]; body: unknown }> {
  const response = await fetch(`${url}/v1/services`, { headers: { authorization: `Bearer ${credential}` } });
  const body = (await response.json()) as { services?: ServiceInfo[] };
  return { status: response.status, names: (body.services ?? []).map((s) => s.name), body };
}

/** A TCP server that answers every connection with `tag` and closes: tells which side a tunnel reached. */
async function tagServer(tag: string): Promise<TcpServer> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(tag);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('two workspaces on one hub', () => {
  let hub: InProcessHub;
  let ws2: { workspaceId: string; apiKey: string };
  let owner1: AsyncAgentHome; // workspace 1, exposes secret-db
  let peer1: AsyncAgentHome; // workspace 1, reaches it (the control: the service really works)
  let outsider2: AsyncAgentHome; // workspace 2
  let other2: AsyncAgentHome; // workspace 2, a second agent
  let secret: TcpServer;
  /** Connections the secret service received: an outsider must never add one. */
  let secretConnections = 0;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    hub = await startInProcessHub();
    ws2 = await hub.addWorkspace('second');
    assert.notEqual(ws2.workspaceId, hub.workspaceId);
    [owner1, peer1, outsider2, other2] = await Promise.all([
      enrolAgentAsync(hub, { label: 'ws1-server' }),
      enrolAgentAsync(hub, { label: 'ws1-laptop' }),
      enrolAgentAsync({ url: hub.url, apiKey: ws2.apiKey }, { label: 'ws2-laptop' }),
      enrolAgentAsync({ url: hub.url, apiKey: ws2.apiKey }, { label: 'ws2-server' }),
    ]);
    assert.equal((await outsider2.config()).workspaceId, ws2.workspaceId);
    assert.equal((await owner1.config()).workspaceId, hub.workspaceId);
    secret = await echoServer();
    secret.server.on('connection', () => secretConnections++);
    // No health checks: their dials of the target (TCP, then TLS and HTTP probes) run in the background and would
    // count as connections; here every connection to the secret service must come from a reach.
    const exposer = await owner1.expose(`127.0.0.1:${secret.port}`, 'secret-db', ['--check-interval', '0']);
    stops.push(() => exposer.stop());
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await secret?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, owner1?.home, peer1?.home, outsider2?.home, other2?.home);
  });

  test('control: an agent of workspace 1 reaches secret-db and it echoes', async () => {
    const { proc, port } = await peer1.reach('secret-db', ['--port', '0']);
    try {
      const reply = await roundTrip(port, 'same workspace\n');
      assert.equal(reply.toString(), 'same workspace\n');
    } finally {
      await proc.stop();
    }
  });

  test('connect reach secret-db from workspace 2 fails exactly like a name that exists nowhere', async () => {
    const before = secretConnections;
    for (const json of [true, false]) {
      const hidden = await reachOutcome(outsider2, 'secret-db', json);
      const missing = await reachOutcome(outsider2, 'no-such-db', json);
      assert.equal(hidden.code, 1, `${hidden.result.stdout}${hidden.result.stderr}`);
      assert.equal(missing.code, 1, `${missing.result.stdout}${missing.result.stderr}`);
      if (json) {
        assert.deepEqual(errorLine(hidden.result), { code: 'SERVICE_NOT_FOUND', message: 'Service not found: secret-db; connect ls lists the services you can reach' });
        assert.deepEqual(errorLine(missing.result), { code: 'SERVICE_NOT_FOUND', message: 'Service not found: no-such-db; connect ls lists the services you can reach' });
        // Apart from the name and the time stamps, the two outputs are the same bytes.
        const strip = (s: string) => s.replace(/"time":"[^"]*",?/g, '');
        assert.equal(strip(hidden.stdout), strip(missing.stdout));
        assert.ok(!hidden.result.lines().some((l) => l.type === 'listening'), 'no local port may be opened for a hidden service');
      } else {
        assert.match(hidden.result.stderr, /Service not found: secret-db; connect ls lists the services you can reach \(SERVICE_NOT_FOUND\)/);
        // Human output: byte for byte the same apart from the name.
        assert.equal(hidden.stdout, missing.stdout);
        assert.equal(hidden.stderr, missing.stderr);
      }
    }
    assert.equal(secretConnections, before, 'the secret service must not have been dialled');
  });

  test('connect ls in workspace 2 does not show secret-db; in workspace 1 it does', async () => {
    const outside = await outsider2.run(['ls']);
    assert.equal(outside.code, 0, outside.stdout + outside.stderr);
    const { services } = outside.json() as { services: ServiceInfo[] };
    assert.deepEqual(services, [], 'workspace 2 has no services of its own yet');
    assert.ok(!outside.stdout.includes('secret-db'));
    assert.ok(!outside.stdout.includes('ws1-server'), 'nor the label of the agent exposing it');

    const inside = await peer1.run(['ls']);
    assert.equal(inside.code, 0, inside.stdout + inside.stderr);
    const row = (inside.json() as { services: ServiceInfo[] }).services.find((s) => s.name === 'secret-db');
    assert.ok(row, inside.stdout);
    assert.equal(row.online, true);
    assert.equal(row.agentLabel, 'ws1-server');
  });

  test('GET /v1/services and /v1/agents with workspace 2 credentials show nothing of workspace 1', async () => {
    const token2 = (await outsider2.config()).token;
    for (const credential of [token2, ws2.apiKey]) {
      const listing = await servicesOver(hub.url, credential);
      assert.equal(listing.status, 200);
      assert.deepEqual(listing.names, []);
      assert.ok(!JSON.stringify(listing.body).includes('secret-db'));
    }
    const agents = await fetch(`${hub.url}/v1/agents`, { headers: { authorization: `Bearer ${token2}` } });
    assert.equal(agents.status, 200);
    const labels = ((await agents.json()) as { agents: Array<{ label: string }> }).agents.map((a) => a.label).sort();
    assert.deepEqual(labels, ['ws2-laptop', 'ws2-server']);

    // Control: workspace 1's own credentials do see it.
    const inside = await servicesOver(hub.url, (await peer1.config()).token);
    assert.deepEqual(inside.names, ['secret-db']);
  });

  test('speaking the protocol directly with a workspace 2 token: OPEN secret-db gets the not-found OPEN_ERROR', async () => {
    const before = secretConnections;
    const raw = await connectRawAgent(hub.url, (await outsider2.config()).token);
    try {
      const welcome = await raw.handshake();
      assert.equal(welcome.workspaceId, ws2.workspaceId);

      const hidden = await raw.open(1, 'secret-db');
      const missing = await raw.open(3, 'no-such-db');
      assert.equal(hidden.type, FrameType.OPEN_ERROR, 'OPEN to another workspace’s service must be refused');
      assert.equal(missing.type, FrameType.OPEN_ERROR);
      const hiddenError = parseErrorPayload(hidden.payload);
      const missingError = parseErrorPayload(missing.payload);
      assert.deepEqual(hiddenError, { code: 'SERVICE_NOT_FOUND', message: 'Service not found: secret-db' });
      assert.deepEqual(missingError, { code: 'SERVICE_NOT_FOUND', message: 'Service not found: no-such-db' });
      assert.equal(hidden.payload.toString().replace('secret-db', '<NAME>'), missing.payload.toString().replace('no-such-db', '<NAME>'));

      // The control operations answer the same way: resolve, reach, unexpose; list shows nothing.
      for (const [op, args] of [
        ['resolve', { name: 'secret-db' }],
        ['reach', { name: 'secret-db', localPort: 5432 }],
        ['unexpose', { name: 'secret-db' }],
      ] as const) {
        const reply = await raw.request(op, args as never);
        assert.equal(reply.ok, false, `${op} must fail`);
        assert.deepEqual(reply.ok ? undefined : reply.error, { code: 'SERVICE_NOT_FOUND', message: 'Service not found: secret-db' }, op);
      }
      const list = await raw.request('list', {});
      assert.deepEqual(list.ok ? list.result : list.error, { services: [] });

      // Refusals are not protocol errors: the connection stays usable.
      assert.equal(raw.ws.readyState, raw.ws.OPEN);
      // The hub sent nothing towards workspace 1: no stream frames other than the two OPEN_ERRORs.
      assert.deepEqual(
        raw.frames.filter((f) => f.streamId !== 0).map((f) => [f.type, f.streamId]),
        [
          [FrameType.OPEN_ERROR, 1],
          [FrameType.OPEN_ERROR, 3],
        ],
      );
    } finally {
      await raw.close();
    }
    assert.equal(secretConnections, before, 'the secret service must not have been dialled');

    // unexpose from workspace 2 did not touch it: workspace 1 still has it, online, and it still works.
    const inside = await peer1.run(['ls']);
    const row = (inside.json() as { services: ServiceInfo[] }).services.find((s) => s.name === 'secret-db');
    assert.equal(row?.online, true, inside.stdout);
  });

  test('a service of workspace 1 that is offline is still "not found" for workspace 2, never "offline"', async () => {
    const cache = await echoServer();
    try {
      const exposer = await owner1.expose(`127.0.0.1:${cache.port}`, 'secret-cache');
      await exposer.stop();
      // Workspace 1 sees it stored and offline (the control)...
      const own = await connectRawAgent(hub.url, (await peer1.config()).token);
      await own.handshake();
      const ownAnswer = await own.open(1, 'secret-cache');
      assert.equal(parseErrorPayload(ownAnswer.payload).code, 'SERVICE_OFFLINE');
      await own.close();
      // ...workspace 2 learns nothing.
      const raw = await connectRawAgent(hub.url, (await outsider2.config()).token);
      await raw.handshake();
      const answer = await raw.open(1, 'secret-cache');
      assert.deepEqual(parseErrorPayload(answer.payload), { code: 'SERVICE_NOT_FOUND', message: 'Service not found: secret-cache' });
      await raw.close();
      const cli = await outsider2.run(['reach', 'secret-cache', '--port', '0']);
      assert.equal(cli.code, 1);
      assert.deepEqual(errorLine(cli), { code: 'SERVICE_NOT_FOUND', message: 'Service not found: secret-cache; connect ls lists the services you can reach' });
    } finally {
      await cache.close();
    }
  });

  test('workspace 2 can expose its own secret-db: no "name taken" leak, and each workspace reaches its own', async () => {
    const mine = await tagServer('workspace-2\n');
    const procs: Proc[] = [];
    try {
      const exposer = await other2.expose(`127.0.0.1:${mine.port}`, 'secret-db');
      procs.push(exposer);
      assert.ok(!exposer.lines.some((l) => typeof l === 'object' && l.type === 'error'), 'exposing a name another workspace uses must succeed');

      const reach2 = await outsider2.reach('secret-db', ['--port', '0']);
      procs.push(reach2.proc);
      assert.equal((await roundTrip(reach2.port, '')).toString(), 'workspace-2\n');

      const reach1 = await peer1.reach('secret-db', ['--port', '0']);
      procs.push(reach1.proc);
      assert.equal((await roundTrip(reach1.port, 'workspace-1\n')).toString(), 'workspace-1\n');

      // Both listings show one secret-db each, exposed by their own agent.
      const list2 = (await outsider2.run(['ls'])).json() as { services: ServiceInfo[] };
      assert.deepEqual(list2.services.map((s) => [s.name, s.agentLabel]), [['secret-db', 'ws2-server']]);
      const list1 = (await peer1.run(['ls'])).json() as { services: ServiceInfo[] };
      assert.deepEqual(list1.services.filter((s) => s.name === 'secret-db').map((s) => s.agentLabel), ['ws1-server']);

      // A live workspace 1 tunnel and a workspace 2 tunnel side by side stay apart.
      const socket1 = await connect(reach1.port);
      const echoed = new Promise<string>((resolve) => {
        let got = '';
        socket1.on('data', (c: Buffer) => {
          got += c.toString();
          if (got.endsWith('\n')) resolve(got);
        });
      });
      socket1.write('still mine\n');
      assert.equal((await roundTrip(reach2.port, '')).toString(), 'workspace-2\n');
      assert.equal(await echoed, 'still mine\n');
      socket1.destroy();
    } finally {
      for (const proc of procs.reverse()) await proc.stop();
      await mine.close();
    }
  });
});
