/**
 * Soak of a public link next to the other ways to the same app (issue 21): one hub process, `connect expose --http
 * --hub-port` of a small Node HTTP app that closes connections idle for 1 s (e2e/src/soak-http-app.ts), a `connect
 * reach` of it from a second agent, and a public link (path mode, and subdomain mode by a Host header). For
 * LINK_SOAK_SECONDS (default 180, checks included; under `npm test` the test must end within run-tests' 300 s) it
 * alternates short load phases through the link, the reach and the hub TCP port: keep-alive connections making
 * requests back to back, and clients that leave abruptly (e2e/src/http-load.ts). In every phase, two link clients
 * also idle about as long as the app keeps an idle connection between their requests, and every other phase is
 * followed by a gap with no client at all, longer than that: the situation in which links used to stall.
 *
 * Black-box: it sees HTTP answers, the hub's /metrics and /v1/services, and `connect status --json` of each agent.
 * It asserts that every request of a well-behaved client is answered within 10 s with the right status and body;
 * that after every phase, with the clients gone, connect_streams_open is back to exactly 0 (and never fractional)
 * and neither agent has a connection open; that the hub stays up and its memory at rest does not keep growing. No
 * throughput is asserted: the load is sized for a 2-core machine running other tests at the same time.
 * LINK_SOAK_SEED replays a run's random choices (not its timing).
 */

import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { CreatedLink } from '@private-connect/api';
import {
  ABRUPT_KINDS,
  enrolAgent,
  freePort,
  httpCall,
  removeDirs,
  startAbruptClients,
  startHubProcess,
  startLoad,
  type AbruptKind,
  type AgentHome,
  type CallOutcome,
  type HttpCall,
  type HttpTarget,
  type HubProcess,
  type Proc,
  type Running,
} from '../src/index.js';
import { SOAK_CALLS, nextSoakCall, startSoakApp } from '../src/soak-http-app.js';
import { createRng, type Rng } from '../src/soak-traffic.js';

const SECONDS = Number(process.env.LINK_SOAK_SECONDS ?? 180);
if (!Number.isFinite(SECONDS) || SECONDS < 10) throw new Error(`LINK_SOAK_SECONDS must be a number of seconds, at least 10 (got "${process.env.LINK_SOAK_SECONDS}")`);
const SEED = process.env.LINK_SOAK_SEED ? Number(process.env.LINK_SOAK_SEED) : randomInt(2 ** 31);
/** One load phase; shorter in a short run, so that it still has a few. */
const PHASE_MS = Math.max(4_000, Math.min(12_000, (SECONDS * 1000) / 8));
/** Back-to-back keep-alive connections of a phase. */
const CONNECTIONS = 16;
const ABRUPT_CLIENTS = 2;
/** Per request: answered in full by then, or a failure. */
const DEADLINE_MS = 10_000;
/** With the clients gone, the hub must hold no stream by then (the agents get 5 s more: they report every 2 s). */
const SETTLE_MS = 10_000;
/** The app closes a connection idle this long. */
const APP_IDLE_CLOSE_MS = 1_000;
/** Longer than APP_IDLE_CLOSE_MS: every connection the app had is closed by the app during it. */
const IDLE_GAP_MS = 2_500;
const MiB = 1024 * 1024;
/**
 * How much the hub's RSS at rest may grow from the first phase to the end. Generous: the embedded PGlite (WASM, in
 * the hub's process) grows its heap by up to ~450 MiB at once under a burst of audit writes, which some runs see and
 * others do not. A hub keeping what links carry (3 MiB answers, 256 KiB bodies, thousands of them) still exceeds it.
 */
const RSS_MARGIN = 512 * MiB;
/** How much the hub's JS heap at rest may grow (it is 30-60 MiB at rest here): objects kept per request show here. */
const HEAP_MARGIN = 96 * MiB;
const MAX_FAILURE_LINES = 30;
const SERVICE = 'soak-app';
const LINK_DOMAIN = 'links.test';

type Way = 'link' | 'link-host' | 'reach' | 'hub-port';
const WAYS: readonly Way[] = ['link', 'link-host', 'reach', 'hub-port'];
/** The ways of the load phases, in turn: link → reach → hub port → reach → link is the sequence that once stalled links. */
const CYCLE: readonly Way[] = ['link', 'reach', 'hub-port', 'reach', 'link-host', 'hub-port'];

/** What the run saw; the test asserts on it at the end. */
interface Tally {
  requests: Record<Way, number>;
  failed: Record<Way, number>;
  /** The longest a request of each way took, answered or not. */
  slowest: Record<Way, { ms: number; call: string }>;
  failureLines: string[];
  abrupt: Record<AbruptKind, number>;
  /** Streams left open, a dead hub: a line each. */
  problems: string[];
  /** Samples of connect_streams_open that were not whole numbers, and the first of them. */
  fractional: { count: number; first?: string };
  phases: string[];
  gaugeMax: number;
  settleMaxMs: number;
  /** The hub's RSS and JS heap at rest after each phase. */
  rest: Array<{ rss: number; heap: number }>;
}

function emptyTally(): Tally {
  const zero = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  const slowest = Object.fromEntries(WAYS.map((w) => [w, { ms: 0, call: '' }])) as Tally['slowest'];
  return { requests: zero(WAYS), failed: zero(WAYS), slowest, failureLines: [], abrupt: zero(ABRUPT_KINDS), problems: [], fractional: { count: 0 }, phases: [], gaugeMax: 0, settleMaxMs: 0, rest: [] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

describe('a public link under minutes of load and abrupt clients, next to a reach and a hub TCP port', () => {
  let app: Awaited<ReturnType<typeof startSoakApp>>;
  let hub: HubProcess;
  let exposing: AgentHome;
  let reaching: AgentHome;
  let exposer: Proc;
  let reacher: Proc;
  const targets = {} as Record<Way, HttpTarget>;

  before(async () => {
    app = await startSoakApp(APP_IDLE_CLOSE_MS);
    const firstPort = await freePort();
    hub = await startHubProcess({ env: { PUBLIC_BASE_DOMAIN: LINK_DOMAIN, HUB_TCP_PORT_RANGE: `${firstPort}-${firstPort + 9}`, HUB_TCP_BIND: '127.0.0.1' } });
    exposing = await enrolAgent(hub, { label: 'soak-exposing' });
    reaching = await enrolAgent(hub, { label: 'soak-reaching' });
    exposer = await exposing.expose(`127.0.0.1:${app.port}`, SERVICE, ['--http', '--hub-port']);
    const exposed = exposer.lines.find((l) => typeof l === 'object' && l.type === 'exposed') as { service: { hubPort?: number } } | undefined;
    const hubPort = exposed?.service.hubPort;
    assert.ok(hubPort, `the service got no hub TCP port: ${JSON.stringify(exposed)}`);
    const reach = await reaching.reach(SERVICE, ['--port', '0']);
    reacher = reach.proc;
    const made = exposing.run(['link', SERVICE, '--expires', '1h']);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    const link = made.json() as CreatedLink;
    targets.link = { way: 'link', port: hub.port, prefix: new URL(link.url).pathname.replace(/\/$/, '') };
    targets['link-host'] = { way: 'link-host', port: hub.port, prefix: '', host: `${link.token}.${LINK_DOMAIN}` };
    targets.reach = { way: 'reach', port: reach.port, prefix: '' };
    targets['hub-port'] = { way: 'hub-port', port: hubPort, prefix: '' };
  });

  after(async () => {
    await reacher?.stop();
    await exposer?.stop();
    await hub?.stop();
    await app?.close();
    await removeDirs(hub?.dataDir, exposing?.home, reaching?.home);
  });

  const alive = () => hub.proc.child.exitCode === null && hub.proc.child.signalCode === null;

  /** connect_streams_open now; a value that is not a whole number is a problem of its own. */
  async function streamGauge(tally: Tally, when: string): Promise<number> {
    const value = (await hub.metrics()).get('connect_streams_open') ?? NaN;
    if (!Number.isInteger(value) && tally.fractional.count++ === 0) tally.fractional.first = `${when}: ${value}`;
    tally.gaugeMax = Math.max(tally.gaugeMax, value);
    return value;
  }

  /** The service's open streams, as GET /v1/services reports them. */
  async function serviceStreams(): Promise<number> {
    const res = await fetch(`${hub.url}/v1/services`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
    const { services } = (await res.json()) as { services: Array<{ name: string; streams?: number }> };
    return services.find((s) => s.name === SERVICE)?.streams ?? NaN;
  }

  /** Open local connections of an agent's expose or reach process, as `connect status --json` shows them (-1: not shown). */
  function agentOpen(home: AgentHome, proc: Proc): number {
    const status = home.run(['status']);
    if (status.code !== 0) return -1;
    const mine = (status.json() as { services: Array<{ pid?: number; traffic?: { open: number } }> }).services.filter((s) => s.pid === proc.child.pid && s.traffic);
    return mine.length === 0 ? -1 : mine.reduce((n, s) => n + s.traffic!.open, 0);
  }

  /** With every client gone: the hub's streams, then the agents' connections, must be back to 0. Resolves with the hub's time to 0. */
  async function settle(tally: Tally, when: string): Promise<number> {
    const started = Date.now();
    for (;;) {
      const [gauge, service] = [await streamGauge(tally, when), await serviceStreams()];
      if (gauge === 0 && service === 0) break;
      if (Date.now() - started > SETTLE_MS) {
        tally.problems.push(`${when}: ${SETTLE_MS / 1000} s after the clients left, connect_streams_open is ${gauge} and /v1/services counts ${service} open streams of ${SERVICE}`);
        break;
      }
      await sleep(200);
    }
    const hubMs = Date.now() - started;
    const agents: Array<[string, AgentHome, Proc]> = [['exposing', exposing, exposer], ['reaching', reaching, reacher]];
    let open = agents.map(([, home, proc]) => agentOpen(home, proc));
    while (open.some((n) => n !== 0) && Date.now() - started < SETTLE_MS + 5_000) {
      await sleep(500);
      open = agents.map(([, home, proc]) => agentOpen(home, proc));
    }
    open.forEach((n, i) => {
      if (n !== 0) tally.problems.push(`${when}: the ${agents[i]![0]} agent shows ${n < 0 ? 'no traffic in connect status' : `${n} open connection(s)`} with every client gone`);
    });
    if (!alive()) tally.problems.push(`${when}: the hub process exited (${hub.proc.child.exitCode ?? hub.proc.child.signalCode})`);
    return hubMs;
  }

  /** Counts the outcome of a request made through `way`. */
  const recorder = (tally: Tally, phase: string, way: Way) => (call: HttpCall, outcome: CallOutcome) => {
    tally.requests[way]++;
    if (outcome.ms > tally.slowest[way].ms) tally.slowest[way] = { ms: outcome.ms, call: call.name };
    if (outcome.ok) return;
    tally.failed[way]++;
    if (tally.failureLines.length < MAX_FAILURE_LINES) tally.failureLines.push(`${phase}, ${way}, ${call.name}: ${outcome.reason} (after ${Math.round(outcome.ms)} ms)`);
  };

  /** One load phase through `way`, plus the idling link clients and the abrupt clients; resolves once all stopped. */
  async function phase(tally: Tally, rng: Rng, label: string, way: Way, ms: number): Promise<void> {
    const running: Running[] = [
      startLoad(targets[way], { connections: CONNECTIONS, next: () => nextSoakCall(rng), deadlineMs: DEADLINE_MS, onOutcome: recorder(tally, label, way) }),
      ...(['link', 'link-host'] as const).map((idler) =>
        startLoad(targets[idler], {
          connections: 1,
          // GET only: a request that meets the app's idle close on the way may be sent again by a proxy only when it
          // is idempotent (a POST then rightly gets 502, as from nginx), and these clients meet it on purpose.
          next: () => (rng.chance(0.8) ? SOAK_CALLS.fast : SOAK_CALLS.slow),
          pauseMs: () => rng.int(APP_IDLE_CLOSE_MS - 400, APP_IDLE_CLOSE_MS + 500),
          deadlineMs: DEADLINE_MS,
          onOutcome: recorder(tally, label, idler),
        }),
      ),
      startAbruptClients(targets[way], {
        clients: ABRUPT_CLIENTS,
        routes: { fast: SOAK_CALLS.fast, slow: SOAK_CALLS.slow.path, large: SOAK_CALLS.large.path, post: '/echo' },
        rng,
        deadlineMs: DEADLINE_MS,
        onClose: (kind) => tally.abrupt[kind]++,
        onOutcome: recorder(tally, label, way),
      }),
    ];
    const end = Date.now() + ms;
    while (Date.now() < end && alive()) {
      await sleep(Math.min(500, end - Date.now()));
      await streamGauge(tally, `during ${label}`).catch(() => undefined);
    }
    await Promise.all(running.map((r) => r.stop()));
  }

  /** The hub's RSS and JS heap now. */
  async function memory(): Promise<{ rss: number; heap: number }> {
    const metrics = await hub.metrics();
    return { rss: metrics.get('process_resident_memory_bytes') ?? NaN, heap: metrics.get('nodejs_heap_size_used_bytes') ?? NaN };
  }

  /** After the last phase: each way answers new clients (all at once, so that a stall costs the deadline once). */
  async function finalRequests(tally: Tally): Promise<void> {
    const calls = [SOAK_CALLS.fast, SOAK_CALLS.large, SOAK_CALLS.echo.at(-1)!];
    await Promise.all(
      WAYS.flatMap((way) =>
        calls.map(async (call) => {
          const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
          recorder(tally, 'the end', way)(call, await httpCall(targets[way], agent, call, DEADLINE_MS));
          agent.destroy();
        }),
      ),
    );
  }

  test('every request is answered, and at rest after every phase no stream is left in the hub or the agents', async (t) => {
    const rng = createRng(SEED);
    const tally = emptyTally();
    const started = Date.now();
    for (let n = 0; alive(); n++) {
      const left = SECONDS * 1000 - (Date.now() - started);
      if (left < PHASE_MS / 2) break;
      const way = CYCLE[n % CYCLE.length]!;
      const label = `phase ${n + 1} (${way})`;
      const before = { ...tally.requests };
      const abruptBefore = ABRUPT_KINDS.reduce((sum, k) => sum + tally.abrupt[k], 0);
      await phase(tally, rng, label, way, Math.min(PHASE_MS, left));
      const settledMs = await settle(tally, `after ${label}`);
      tally.settleMaxMs = Math.max(tally.settleMaxMs, settledMs);
      tally.rest.push(await memory());
      const made = WAYS.map((w) => `${w} ${tally.requests[w] - before[w]}`).join(', ');
      const abrupt = ABRUPT_KINDS.reduce((sum, k) => sum + tally.abrupt[k], 0) - abruptBefore;
      tally.phases.push(`${label}: ${made}; ${abrupt} abrupt; streams at 0 after ${(settledMs / 1000).toFixed(1)} s; hub RSS ${mib(tally.rest.at(-1)!.rss)}`);
      // Every other phase: no client at all for longer than the app keeps an idle connection.
      if (n % 2 === 1) await sleep(IDLE_GAP_MS);
    }
    if (alive()) {
      await finalRequests(tally);
      await settle(tally, 'at the end');
      tally.rest.push(await memory());
    }

    const failed = WAYS.reduce((sum, w) => sum + tally.failed[w], 0);
    const first = tally.rest[0] ?? { rss: NaN, heap: NaN };
    const last = tally.rest.at(-1) ?? { rss: NaN, heap: NaN };
    t.diagnostic(`link soak: ${((Date.now() - started) / 1000).toFixed(0)} s, ${tally.phases.length} phases of ${PHASE_MS / 1000} s with ${CONNECTIONS} connections, seed ${SEED}`);
    t.diagnostic(`requests: ${WAYS.map((w) => `${w} ${tally.requests[w]} (${tally.failed[w]} failed)`).join(', ')}`);
    t.diagnostic(`slowest: ${WAYS.map((w) => `${w} ${(tally.slowest[w].ms / 1000).toFixed(2)} s (${tally.slowest[w].call})`).join(', ')}`);
    t.diagnostic(`abrupt closes: ${ABRUPT_KINDS.map((k) => `${k} ${tally.abrupt[k]}`).join(', ')}`);
    t.diagnostic(`streams: at most ${tally.gaugeMax} open; back to 0 at worst ${(tally.settleMaxMs / 1000).toFixed(1)} s after the clients left`);
    t.diagnostic(`hub at rest: RSS ${mib(first.rss)} first, ${mib(last.rss)} last; JS heap ${mib(first.heap)} first, ${mib(last.heap)} last`);
    for (const line of tally.phases) t.diagnostic(line);
    for (const line of [...tally.problems, ...tally.failureLines]) t.diagnostic(`FAILED ${line}`);

    const broken = [
      ...(tally.fractional.count > 0 ? [`connect_streams_open was not a whole number of streams in ${tally.fractional.count} sample(s), first ${tally.fractional.first}`] : []),
      ...tally.problems,
      ...(failed > 0 ? [`${failed} request(s) of well-behaved clients not answered as expected (seed ${SEED}); the first:\n  ${tally.failureLines.join('\n  ')}`] : []),
      ...WAYS.filter((w) => tally.requests[w] === 0).map((w) => `no request went through ${w}`),
      ...ABRUPT_KINDS.filter((k) => tally.abrupt[k] === 0).map((k) => `no ${k} client ran`),
      ...(!(last.rss <= first.rss + RSS_MARGIN) ? [`the hub's RSS at rest grew from ${mib(first.rss)} to ${mib(last.rss)}`] : []),
      ...(!(last.heap <= first.heap + HEAP_MARGIN) ? [`the hub's JS heap at rest grew from ${mib(first.heap)} to ${mib(last.heap)}`] : []),
    ];
    assert.deepEqual(broken, [], broken.join('\n'));
  });
});
