/**
 * Several hubs on one PostgreSQL database: agents given the list of hubs move to the next one when theirs dies.
 * Hub A is SIGKILLed with a stream open through it: that stream ends (it cannot hang), both agents are on hub B
 * within seconds, new connections through the same local port work, and nothing durable is lost (the agents'
 * tokens, the audit log written through hub A). Agents are the SDK's Agent, as `connect` runs it.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Agent, type AgentEvent } from '@private-connect/sdk';
import { connect, echoServer, enrolViaApi, eventually, removeDirs, roundTrip, scratchDatabase, startHubProcess, type HubProcess, type TcpServer } from '../src/index.js';


describe('several hubs on one PostgreSQL: failover to the next hub', () => {
  let database: { url: string; drop(): Promise<void> };
  let hubA: HubProcess;
  let hubB: HubProcess;
  let echo: TcpServer;
  const agents: Agent[] = [];
  const events = new Map<string, AgentEvent[]>();
  let reachPort = 0;

  before(async () => {
    database = await scratchDatabase('pc_e2e_failover');
    // One after the other, so that hub A is the one that creates the workspace with its bootstrap key.
    hubA = await startHubProcess({ databaseUrl: database.url });
    hubB = await startHubProcess({ databaseUrl: database.url, apiKey: hubA.apiKey });
    echo = await echoServer();
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all([hubA?.stop(), hubB?.stop()]);
    echo?.close();
    await removeDirs(...[hubA?.dataDir, hubB?.dataDir].filter((d): d is string => !!d));
    await database?.drop();
  });

  function startAgent(label: string, token: string): Agent {
    const seen: AgentEvent[] = [];
    events.set(label, seen);
    // Listed order: both agents start on hub A, the one that is killed.
    const agent = new Agent({ hubUrl: hubA.url, hubUrls: [hubB.url], hubOrder: 'listed', token, label, backoff: { initialMs: 100, maxMs: 1000 }, onEvent: (e) => seen.push(e) });
    agents.push(agent);
    return agent;
  }
  const hubOf = (label: string) => events.get(label)!.filter((e) => e.type === 'connected').map((e) => (e as { hubUrl: string }).hubUrl).at(-1);

  test('a hub that dies: streams through it end, agents move to the next hub, new streams work, nothing stored is lost', async (t) => {
    const server = startAgent('db-server', (await enrolViaApi(hubA.url, hubA.apiKey, 'db-server')).token);
    const laptop = startAgent('laptop', (await enrolViaApi(hubA.url, hubA.apiKey, 'laptop')).token);
    await server.expose('staging-db', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    const reach = await laptop.reach('staging-db', { port: 0 });
    reachPort = reach.port;
    assert.equal((await roundTrip(reach.port, 'through hub A\n')).toString(), 'through hub A\n');
    assert.equal(hubOf('db-server'), hubA.url);
    assert.equal(hubOf('laptop'), hubA.url);

    // A connection held open through hub A when it dies.
    const held = await connect(reach.port);
    const heldEnded = new Promise<string>((resolve) => {
      held.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      held.on('close', () => resolve('closed'));
    });
    held.write('before the crash\n');
    await new Promise<void>((resolve) => held.once('data', () => resolve()));

    const killedAt = performance.now();
    await hubA.proc.kill();
    t.diagnostic(`the held connection ended with: ${await heldEnded}`);

    // The same local port serves again once both agents are on hub B and the service is announced there.
    await eventually(async () => assert.equal((await roundTrip(reach.port, 'through hub B\n', 2000)).toString(), 'through hub B\n'), 20_000, 100);
    t.diagnostic(`new streams worked ${Math.round(performance.now() - killedAt)} ms after hub A was killed`);
    assert.equal(hubOf('db-server'), hubB.url);
    assert.equal(hubOf('laptop'), hubB.url);

    // Durable state lives in PostgreSQL: hub B knows both agents and has the audit entries written through hub A.
    const headers = { authorization: `Bearer ${hubB.apiKey}` };
    const listed = (await (await fetch(`${hubB.url}/v1/agents`, { headers })).json()) as { agents: Array<{ label: string; online: boolean }> };
    assert.deepEqual(listed.agents.filter((a) => a.online).map((a) => a.label).sort(), ['db-server', 'laptop']);
    const audit = (await (await fetch(`${hubB.url}/v1/audit?action=agent.enroll`, { headers })).json()) as { events: unknown[] };
    assert.equal(audit.events.length, 2);

    // A 1 MiB transfer through hub B arrives intact.
    const payload = randomBytes(1024 * 1024);
    assert.deepEqual(await roundTrip(reach.port, payload, 20_000), payload);
  });

  test('an agent whose hubs are all down keeps trying them in turn, and is back when one returns', async () => {
    const laptop = events.get('laptop')!;
    const from = laptop.length;
    await hubB.proc.kill();
    // Both hubs are down: the attempts go to one and the other and fail; the agent does not give up.
    await eventually(async () => assert.ok(laptop.slice(from).filter((e) => e.type === 'disconnected').length >= 4), 20_000, 100);
    assert.ok(!laptop.some((e) => e.type === 'fatal'));
    hubA = await startHubProcess({ databaseUrl: database.url, apiKey: hubA.apiKey, port: hubA.port });
    await eventually(async () => assert.equal((await roundTrip(reachPort, 'hub A is back\n', 2000)).toString(), 'hub A is back\n'), 30_000, 100);
    assert.equal(hubOf('laptop'), hubA.url);
    assert.equal(hubOf('db-server'), hubA.url);
  });
});
