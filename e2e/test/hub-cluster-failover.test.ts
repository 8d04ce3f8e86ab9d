/**
 * Two hub processes on one PostgreSQL, relaying over NATS (NATS_URL, 127.0.0.1:4222 by default), when one of them
 * dies: opens sent in the first moments after the exposing agent's hub was killed follow its new route instead of
 * hanging on the dead one, and agents spread back over both hubs when the dead one returns, without cutting a stream.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Agent, type AgentEvent } from '@private-connect/sdk';
import { CONNECT_MAIN, connect, echoServer, enrolAgent, enrolViaApi, eventually, removeDirs, roundTrip, scratchDatabase, startHubProcess, tempDir, type AgentHome, type HubProcess, type Proc, type TcpServer } from '../src/index.js';

const NATS_URL = process.env.TEST_NATS_URL || 'nats://127.0.0.1:4222';

describe('two hubs over NATS: one dies, and comes back', () => {
  let database: { url: string; drop(): Promise<void> };
  const hubs: HubProcess[] = [];
  const agents: Agent[] = [];
  const events = new Map<Agent, AgentEvent[]>();
  let home = '';
  let echo: TcpServer;
  let cli: AgentHome | undefined;
  const procs: Proc[] = [];

  const startHub = (apiKey?: string, port?: number) =>
    startHubProcess({ databaseUrl: database.url, ...(apiKey ? { apiKey } : {}), ...(port ? { port } : {}), env: { NATS_URL, WEB_PORT: 'off' } });

  before(async () => {
    database = await scratchDatabase('pc_e2e_cluster_failover');
    hubs.push(await startHub());
    hubs.push(await startHub(hubs[0]!.apiKey));
    home = await tempDir('cluster-failover-agents');
    echo = await echoServer();
  });

  after(async () => {
    for (const proc of procs) await proc.stop();
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all(hubs.map((h) => h.stop()));
    echo?.close();
    await removeDirs(home, cli?.home, ...hubs.map((h) => h.dataDir));
    await database?.drop();
  });

  /** An agent enrolled through hub 0 that knows the hubs `urls` (in that order); E2E on. */
  async function startAgent(label: string, urls: string[]): Promise<Agent> {
    const enrolled = await enrolViaApi(hubs[0]!.url, hubs[0]!.apiKey, label);
    const seen: AgentEvent[] = [];
    const agent = new Agent({
      hubUrl: urls[0]!,
      hubUrls: urls.slice(1),
      token: enrolled.token,
      label,
      identityFile: `${home}/${label}.identity`,
      knownAgentsFile: `${home}/${label}.known_agents.json`,
      backoff: { initialMs: 100, maxMs: 1000 },
      onEvent: (e) => seen.push(e),
    });
    events.set(agent, seen);
    agents.push(agent);
    await eventually(async () => assert.ok(seen.some((e) => e.type === 'connected')), 10_000, 50);
    return agent;
  }
  const hubOf = (agent: Agent) => events.get(agent)!.filter((e) => e.type === 'connected').map((e) => (e as { hubUrl: string }).hubUrl).at(-1);
  const indexOf = (url: string | undefined) => hubs.findIndex((h) => h.url === url);

  /** Agents online on `hub`, from its /metrics. */
  async function agentsOn(hub: HubProcess): Promise<number> {
    const text = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.apiKey}` } })).text();
    const line = text.split('\n').find((l) => l.startsWith('connect_agents_connected '));
    assert.ok(line, 'connect_agents_connected in /metrics');
    return Number(line.split(' ')[1]);
  }

  test("opens sent right after the exposing agent's hub was killed are served once the agent moved, and none fails with the other agent's disconnection", async (t) => {
    const server = await startAgent('echo-server', hubs.map((h) => h.url));
    const dead = indexOf(hubOf(server));
    const live = 1 - dead;
    await server.expose('echo', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    // An agent that knows only the hub that dies: it cannot move, and opens to its service fail saying why.
    const stranded = await startAgent('stranded', [hubs[dead]!.url]);
    await stranded.expose('stranded-echo', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    // The laptop knows only the hub that stays up: its opens cross to the exposing agent's hub over NATS.
    const laptop = await startAgent('laptop', [hubs[live]!.url]);
    const reach = await laptop.reach('echo', { port: 0 });
    const reachStranded = await laptop.reach('stranded-echo', { port: 0 });
    await eventually(async () => assert.equal((await roundTrip(reach.port, 'before\n', 2000)).toString(), 'before\n'), 20_000, 100);
    await eventually(async () => assert.equal((await roundTrip(reachStranded.port, 'before\n', 2000)).toString(), 'before\n'), 20_000, 100);
    const refusedBefore = events.get(laptop)!.filter((e) => e.type === 'stream_refused').length;

    const killedAt = performance.now();
    await hubs[dead]!.proc.kill();
    // Opens sent at once and in the moments after: each must come back with its echo.
    const opens = Array.from({ length: 8 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 50));
      const line = `open ${i}\n`;
      const answer = await roundTrip(reach.port, line, 30_000).then((b) => b.toString(), (err: Error) => `failed: ${err.message}`);
      return { line, answer, ms: Math.round(performance.now() - killedAt) };
    });
    const strandedOpen = roundTrip(reachStranded.port, 'stranded\n', 30_000).then((b) => b.toString(), (err: Error) => `failed: ${err.message}`);
    const results = await Promise.all(opens);
    for (const r of results) t.diagnostic(`${r.line.trim()}: ${JSON.stringify(r.answer)} after ${r.ms} ms`);
    assert.deepEqual(results.map((r) => r.answer), results.map((r) => r.line));
    // The open to the agent that could not move is refused, and the refusal names the hub that went away.
    assert.notEqual(await strandedOpen, 'stranded\n');
    const refused = events.get(laptop)!.slice(refusedBefore).filter((e) => e.type === 'stream_refused') as Array<{ name: string; code: string; message: string }>;
    assert.deepEqual(
      refused.map((e) => `${e.name} ${e.code}`),
      ['stranded-echo HUB_GONE'],
      `only the stranded service refused, HUB_GONE: ${JSON.stringify(refused)}`,
    );
    assert.match(refused[0]!.message, /hub of the agent exposing "stranded-echo" went away/);
    assert.equal(hubOf(server), hubs[live]!.url);

    // The dead hub comes back on its port for the next test.
    hubs[dead] = await startHub(hubs[0]!.apiKey, hubs[dead]!.port);
  });

  test('connect status names the hub the agent runs on, not the first configured one, and says so when that hub refuses a revoked agent', async () => {
    cli = await enrolAgent({ url: hubs.map((h) => h.url).join(','), apiKey: hubs[0]!.apiKey }, { label: 'cli-status' });
    const exposing = await cli.expose(`127.0.0.1:${echo.port}`, 'cli-echo', ['--check-interval', '0']);
    procs.push(exposing);
    // The first configured hub goes away (a graceful stop): the agent runs on the second one.
    await hubs[0]!.stop();
    await exposing.waitFor((l) => l.type === 'connected' && l.hubUrl === hubs[1]!.url, 20_000, 'connected to the second hub');
    type Status = { hub: { url: string; connected: boolean; reachable: boolean; tokenRefused?: string } };
    const status = await eventually(async () => {
      const answer = cli!.run(['status']).json() as Status;
      assert.deepEqual([answer.hub.url, answer.hub.connected], [hubs[1]!.url, true], JSON.stringify(answer.hub));
      return answer;
    }, 20_000, 200);
    assert.equal(status.hub.reachable, true);
    hubs[0] = await startHub(hubs[1]!.apiKey, hubs[0]!.port);

    // Revoked: the agent's process ends; the hub still answers, and status says it refused the token, with the fix.
    const { agentId } = JSON.parse(readFileSync(`${cli.home}/config.json`, 'utf8')) as { agentId: string };
    const revoked = await fetch(`${hubs[1]!.url}/v1/agents/${agentId}`, { method: 'DELETE', headers: { authorization: `Bearer ${hubs[1]!.apiKey}` } });
    assert.equal(revoked.status, 204);
    await exposing.exited;
    const after = cli.run(['status']).json() as Status;
    assert.equal(after.hub.reachable, true, JSON.stringify(after.hub));
    assert.equal(after.hub.tokenRefused, 'UNAUTHORIZED');
    const human = spawnSync(process.execPath, [CONNECT_MAIN, 'status'], { env: { ...process.env, CONNECT_HOME: cli.home, NO_COLOR: '1' }, encoding: 'utf8', timeout: 30_000 });
    assert.match(human.stdout, /hub {5}\S+ {2}answers, but refused this agent's token \(the agent was revoked, or the token is not valid\)/);
    assert.match(human.stdout, /enrol again: connect up --hub /);
    assert.doesNotMatch(human.stdout, /unreachable/);
  });

  test('agents spread back over both hubs when a dead hub returns, and the rebalancing cuts no open stream', async (t) => {
    const movers = await Promise.all(Array.from({ length: 6 }, (_, i) => startAgent(`mover-${i}`, hubs.map((h) => h.url))));
    // A stream held open between two movers the whole time: its agents are busy, so they are not asked to move.
    await movers[0]!.expose('held-echo', `127.0.0.1:${echo.port}`, { checkIntervalMs: 0 });
    const heldReach = await movers[1]!.reach('held-echo', { port: 0 });

    await hubs[0]!.proc.kill();
    await eventually(async () => assert.deepEqual(movers.map(hubOf), movers.map(() => hubs[1]!.url)), 30_000, 100);
    await eventually(async () => assert.equal((await roundTrip(heldReach.port, 'moved\n', 2000)).toString(), 'moved\n'), 20_000, 100);
    const held = await connect(heldReach.port);
    let heldError = '';
    held.on('error', (err: NodeJS.ErrnoException) => (heldError = err.code ?? err.message));
    const echoed = (line: string) =>
      new Promise<string>((resolve, reject) => {
        let text = '';
        const onData = (chunk: Buffer) => {
          text += chunk.toString();
          if (text.endsWith('\n')) {
            held.off('data', onData);
            resolve(text);
          }
        };
        held.on('data', onData);
        held.once('close', () => reject(new Error(`the held stream closed (${heldError || 'no error'})`)));
        held.write(line);
      });
    assert.equal(await echoed('before the hub returns\n'), 'before the hub returns\n');
    const disconnectsBefore = movers.map((a) => events.get(a)!.filter((e) => e.type === 'disconnected').length);

    const restartedAt = performance.now();
    hubs[0] = await startHub(hubs[1]!.apiKey, hubs[0]!.port);
    const spread = await eventually(async () => {
      const counts = [await agentsOn(hubs[0]!), await agentsOn(hubs[1]!)];
      assert.ok(counts[0]! >= 2 && counts[1]! >= 2, `agents on the two hubs: ${counts.join(' and ')}`);
      return counts;
    }, 90_000, 500);
    t.diagnostic(`agents on the two hubs ${Math.round(performance.now() - restartedAt)} ms after hub 0 was started again: ${spread.join(' and ')}`);
    const movedBack = movers.filter((a) => hubOf(a) === hubs[0]!.url);
    assert.ok(movedBack.length > 0, 'some movers are on the hub that returned');
    // They were asked to move (GOAWAY HUB_REBALANCING), not cut off.
    for (const [i, agent] of movers.entries()) {
      const later = events.get(agent)!.filter((e) => e.type === 'disconnected').slice(disconnectsBefore[i]!) as Array<{ code: string }>;
      assert.ok(later.every((e) => e.code === 'HUB_REBALANCING'), `${i}: ${JSON.stringify(later)}`);
    }
    // The stream held open through the rebalancing still carries data both ways.
    assert.equal(await echoed('after the rebalancing\n'), 'after the rebalancing\n');
    assert.equal(heldError, '');
    held.destroy();
  });
});
