/**
 * The per-workspace quota of hub TCP ports (HUB_TCP_PORTS_PER_WORKSPACE), with the real `connect` CLI: a workspace
 * that holds its quota is refused the next `expose --hub-port` with HUB_PORT_QUOTA (the limit and how to free a port
 * in the message), while another workspace still gets a port from the same range.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  echoServer,
  enrolAgentAsync,
  freePortRange,
  removeDirs,
  roundTrip,
  scratchDatabase,
  startInProcessHub,
  type AsyncAgentHome,
  type InProcessHub,
  type Proc,
  type TcpServer,
} from '../src/index.js';

const QUOTA = 2;

/** The `exposed` line of an expose process: its hub port. */
function hubPortOf(proc: Proc): number | undefined {
  const exposed = proc.lines.find((l) => typeof l === 'object' && l.type === 'exposed') as { service: { hubPort?: number } } | undefined;
  return exposed?.service.hubPort;
}

for (const storage of ['pglite', 'postgres'] as const) describe(`hub TCP ports per workspace (${storage})`, () => {
  let hub: InProcessHub;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let x: AsyncAgentHome;
  let y: AsyncAgentHome;
  let echo: TcpServer;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    // A range of QUOTA + 2 ports: the whole range is never what refuses here, only the quota.
    const first = await freePortRange(QUOTA + 2, 20000, 3900);
    const ports = Array.from({ length: QUOTA + 2 }, (_, i) => first + i);
    database = storage === 'postgres' ? await scratchDatabase('pc_e2e_port_quota') : undefined;
    hub = await startInProcessHub({
      env: { ...(database ? { DATABASE_URL: database.url } : {}), HUB_TCP_PORT_RANGE: `${ports[0]}-${ports[ports.length - 1]}`, HUB_TCP_BIND: '127.0.0.1', HUB_TCP_PORTS_PER_WORKSPACE: String(QUOTA) },
    });
    const second = await hub.addWorkspace('second');
    [x, y] = await Promise.all([enrolAgentAsync(hub, { label: 'x-server' }), enrolAgentAsync({ url: hub.url, apiKey: second.apiKey }, { label: 'y-server' })]);
    echo = await echoServer();
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await echo?.close();
    await hub?.stop();
    await database?.drop();
    await removeDirs(hub?.dataDir, x?.home, y?.home);
  });

  test('a workspace at its quota is refused with HUB_PORT_QUOTA; another workspace still gets a port', async () => {
    const ports: number[] = [];
    for (let i = 0; i < QUOTA; i++) {
      const exposer = await x.expose(`127.0.0.1:${echo.port}`, `echo-${i}`, ['--hub-port']);
      stops.push(() => exposer.stop());
      ports.push(hubPortOf(exposer)!);
    }
    assert.equal(new Set(ports).size, QUOTA);

    const over = x.start(['expose', `127.0.0.1:${echo.port}`, '--name', 'echo-over', '--hub-port']);
    stops.push(() => over.stop());
    const outcome = await over.waitFor((l) => l.type === 'error' || l.type === 'exposed', 30_000, 'the outcome of the expose over the quota');
    assert.equal(outcome.type, 'error', `the expose over the quota was refused, not given port ${hubPortOf(over)}`);
    assert.notEqual(await over.exited, 0, 'the expose over the quota fails');
    const error = outcome as { code?: string; message: string };
    assert.equal(error.code, 'HUB_PORT_QUOTA', JSON.stringify(over.lines) + over.stderr());
    assert.match(error.message, new RegExp(`\\b${QUOTA}\\b`), 'the message says the limit');
    assert.match(error.message, /HUB_TCP_PORTS_PER_WORKSPACE/);
    assert.match(error.message, /unexpos/, 'the message says how to free a port');
    assert.match(error.message, /echo-0/, 'the message names the services that hold ports');

    const other = await y.expose(`127.0.0.1:${echo.port}`, 'echo-y', ['--hub-port']);
    stops.push(() => other.stop());
    const yPort = hubPortOf(other);
    assert.ok(yPort !== undefined && !ports.includes(yPort), `workspace Y got its own port (${yPort})`);
    assert.equal((await roundTrip(yPort, 'through Y\n')).toString(), 'through Y\n');
    // X's ports still serve.
    assert.equal((await roundTrip(ports[0]!, 'through X\n')).toString(), 'through X\n');
  });
});
