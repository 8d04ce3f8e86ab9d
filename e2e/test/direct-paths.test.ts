/**
 * Direct paths (issue 25) across real networks: Linux network namespaces joined by veth pairs through a router
 * namespace, made and removed by this file (addresses 10.25.x.y inside them only; the host's own network is never
 * touched). The hub runs in one namespace, exposing agents in another (and one behind a NAT that takes no inbound
 * connections), reaching agents in a third and a fourth; every process is the real `connect-hub` or `connect` CLI.
 *
 *            hub 10.25.1.2            x 10.25.2.2 (exposing agents: echo, db, bulk, open-echo)
 *                        \            /
 *   y 10.25.3.2 ---- router r ---- nat 10.25.5.2 (masquerade, no inbound) ---- n 10.25.4.2 (exposing agent: natted)
 *   (reaching agent)     |
 *                   w 10.25.6.2 (reaching agents that get revoked)
 *
 * The test process itself is in none of them: it talks to the hub through a bridge (unix socket + socat), and runs
 * clients and servers inside the namespaces with netns-peer.ts. Needs root, iproute2, iptables and socat (.ci/run).
 */

import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AuditPage, CreatedShare } from '@private-connect/api';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  encodeFrame,
  encodeJsonFrame,
  generateIdentity,
  generateStaticKey,
  makeDirectHello,
  signDirectTicket,
  signStaticKey,
  type DirectAnswer,
  type DirectTicketClaims,
  type Frame,
  type Identity,
  type WelcomeMessage,
} from '@private-connect/protocol';
import {
  ADMIN_URL,
  connectRawAgent,
  enrolViaApi,
  eventually,
  newWorkspace,
  query,
  removeDirs,
  scratchDatabase,
  startReach,
  type AgentHome,
  type Proc,
  type RawAgent,
} from '../src/index.js';
import { enrolNetnsAgent, missingNetnsTools, netLab, netnsAgentHome, startNetnsHub, type NetLab, type NetnsHub } from '../src/netns.js';

const HUB = '10.25.1.2';
const X = '10.25.2.2';
const HUB_PORT = 8080;
/** The exposing agents in x: service, target port in x, direct port. */
const ECHO = { name: 'echo', target: 7001, direct: 7401 };
const DB = { name: 'db', target: 7003, direct: 7402 };
const BULK = { name: 'bulk', target: 7002, direct: 7403 };
const OPEN_ECHO = { name: 'open-echo', target: 7006, direct: 7404 };
const NATTED = { name: 'natted', target: 7001, direct: 7405 };
const BULK_BYTES = 256 * 1024 * 1024;
const DIRECT_ON = { CONNECT_DIRECT: 'on' };

/** Every line of a process that is an event of `type`. */
const events = (proc: Proc, type: string) => proc.lines.filter((l): l is Record<string, unknown> => typeof l === 'object' && l.type === type);

/** The next `path` event of `name` from the `after`-th on that matches `mode` (and `reason`, when given). */
function waitPath(proc: Proc, name: string, mode: 'direct' | 'relay', options: { after?: number; reason?: RegExp; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
  const from = options.after ?? 0;
  return proc.waitFor(
    (l) => l.type === 'path' && l.name === name && l.mode === mode && (!options.reason || options.reason.test(String(l.reason))) && events(proc, 'path').indexOf(l) >= from,
    options.timeoutMs ?? 20_000,
    `path ${mode} of ${name}`,
  );
}

/** A raw TCP client of a direct port (through a bridge into the namespace it connects from). */
interface DirectClient {
  /** Every byte received. */
  bytes: number;
  frames: Frame[];
  closed: Promise<void>;
  write(data: Buffer): void;
  waitFrame(match: (f: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame>;
  destroy(): void;
}

function directClient(port: number): Promise<DirectClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const decoder = new FrameDecoder();
    const waiters = new Set<() => void>();
    const client: DirectClient = {
      bytes: 0,
      frames: [],
      closed: new Promise((done) => socket.once('close', () => done())),
      write: (data) => void socket.write(data),
      waitFrame(match, what, timeoutMs = 5000) {
        return new Promise((found, fail) => {
          const check = () => {
            const frame = client.frames.find(match);
            if (!frame) return;
            waiters.delete(check);
            clearTimeout(timer);
            found(frame);
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            fail(new Error(`no ${what} within ${timeoutMs} ms (${client.bytes} bytes received)`));
          }, timeoutMs);
          waiters.add(check);
          check();
        });
      },
      destroy: () => socket.destroy(),
    };
    socket.on('data', (chunk: Buffer) => {
      client.bytes += chunk.length;
      try {
        client.frames.push(...decoder.push(chunk));
      } catch {
        // counted in bytes; the assertions say what was expected
      }
      for (const check of [...waiters]) check();
    });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(client));
    socket.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `data` to a new connection of the direct port: true when it was cut off having received no byte. */
async function cutOffSilently(port: number, data: Buffer): Promise<{ cut: boolean; bytes: number }> {
  const client = await directClient(port);
  client.write(data);
  const cut = await Promise.race([client.closed.then(() => true), sleep(7000).then(() => false)]);
  client.destroy();
  return { cut, bytes: client.bytes };
}

const claimsOf = (ticket: string) => JSON.parse(Buffer.from(ticket.slice(0, ticket.indexOf('.')), 'base64url').toString('utf8')) as DirectTicketClaims;
const control = (f: Frame) => JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>;

/** An agent speaking to the hub by hand, with the keys `connect` has, as a client of the direct ops. */
interface KeyedRawAgent {
  raw: RawAgent;
  identity: Identity;
  agentId: string;
  welcome: WelcomeMessage;
  direct(name: string): Promise<NonNullable<DirectAnswer['direct']>>;
}

async function keyedRawAgent(hubUrl: string, apiKey: string, label: string, plain: boolean): Promise<KeyedRawAgent> {
  const { token, agentId } = await enrolViaApi(hubUrl, apiKey, label);
  const raw = await connectRawAgent(hubUrl, token);
  const identity = generateIdentity();
  const staticKey = generateStaticKey();
  raw.send(
    encodeJsonFrame(FrameType.CONTROL, 0, {
      t: 'hello',
      v: PROTOCOL_VERSION,
      agent: { version: 'raw-test', label },
      identityKey: identity.publicKey.toString('base64'),
      staticKey: staticKey.publicKey.toString('base64'),
      staticSig: signStaticKey(identity, staticKey.publicKey),
      ...(plain ? { plain: true } : {}),
    }),
  );
  const welcome = control(await raw.waitFrame((f) => f.type === FrameType.CONTROL && control(f).t === 'welcome', 'welcome')) as unknown as WelcomeMessage;
  return {
    raw,
    identity,
    agentId,
    welcome,
    async direct(name) {
      const reply = await raw.request('direct', { name });
      assert.ok(reply.ok, JSON.stringify(reply));
      const answer = reply.result as DirectAnswer;
      assert.ok(answer.direct, JSON.stringify(answer));
      return answer.direct;
    },
  };
}

/**
 * Signs `email` in by the link the hub printed (the newest for that address, `login`: asked for first), as a person
 * would: their session cookie and user id.
 */
async function signIn(hub: NetnsHub, email: string, login = true): Promise<{ cookie: string; userId: string; workspaceId: string }> {
  const printed = () => hub.proc.stderr().split('\n').filter((l) => l.includes(` link for ${email}: `)).length;
  const seen = login ? printed() : 0;
  if (login) {
    const asked = await fetch(`${hub.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: hub.url }, body: JSON.stringify({ email }) });
    assert.equal(asked.status, 202);
  }
  const line = await eventually(async () => {
    const lines = hub.proc.stderr().split('\n').filter((l) => l.includes(` link for ${email}: `));
    assert.ok(lines.length > seen, `the hub printed a link for ${email}`);
    return lines.at(-1)!;
  });
  const token = new URL(line.trim().split(' ').pop()!).searchParams.get('token');
  const verified = await fetch(`${hub.url}/v1/auth/verify?token=${token}`, { method: 'POST', headers: { origin: hub.url } });
  assert.equal(verified.status, 200, await verified.clone().text());
  const { userId, workspaceId } = (await verified.json()) as { userId: string; workspaceId: string };
  return { cookie: verified.headers.getSetCookie()[0]!.split(';')[0]!, userId, workspaceId };
}

describe('direct paths between agents in network namespaces', { timeout: 240_000 }, () => {
  let lab: NetLab;
  let hub: NetnsHub;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let partner: { workspaceId: string; apiKey: string };
  /** The exposing agents by service: config folder and `connect expose` process. */
  const exposers = new Map<string, { home: AgentHome; proc: Proc }>();
  let y: AgentHome;
  const homes: string[] = [];
  let echoServer: Proc;
  let openEchoServer: Proc;
  let hashServer: Proc;
  const pg = new URL(ADMIN_URL);
  const started = Date.now();

  const relayed = async () => {
    const value = (await hub.metrics()).get('connect_relay_bytes_total');
    assert.ok(value !== undefined, 'the hub has the metric connect_relay_bytes_total');
    return value;
  };

  /** An agent of the lab (CONNECT_DIRECT=on: the test runner turns direct paths off for every other test). */
  const agent = async (role: string, label: string, apiKey = hub.apiKey) => {
    const home = await enrolNetnsAgent(lab, role, { url: hub.agentUrl, apiKey }, { label, env: DIRECT_ON });
    homes.push(home.home);
    return home;
  };

  before(async () => {
    const missing = missingNetnsTools();
    assert.deepEqual(missing, [], `these tests need ${missing.join(', ')} (apt-get install iproute2 iptables socat; .ci/run installs them)`);
    assert.equal(process.getuid?.(), 0, 'network namespaces need root');
    lab = netLab();
    for (const role of ['r', 'hub', 'x', 'y', 'w', 'nat', 'n']) lab.add(role);
    lab.exec('r', ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const [role, net] of [['hub', 1], ['x', 2], ['y', 3], ['nat', 5], ['w', 6]] as const) {
      lab.link({ role: 'r', dev: `to-${role}`, addr: `10.25.${net}.1/24` }, { role, dev: 'uplink', addr: `10.25.${net}.2/24` });
      lab.exec(role, ['ip', 'route', 'add', 'default', 'via', `10.25.${net}.1`]);
    }
    // n sits behind nat, which masquerades what n sends out and takes no inbound connection at all; the router knows
    // nothing of n's network and drops what is sent there without an answer, as the internet would a private address.
    lab.link({ role: 'nat', dev: 'lan', addr: '10.25.4.1/24' }, { role: 'n', dev: 'uplink', addr: '10.25.4.2/24' });
    lab.exec('n', ['ip', 'route', 'add', 'default', 'via', '10.25.4.1']);
    lab.exec('nat', ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const nat = (...rule: string[]) => lab.exec('nat', ['iptables', ...rule]);
    nat('-t', 'nat', '-A', 'POSTROUTING', '-o', 'uplink', '-j', 'MASQUERADE');
    for (const chain of ['FORWARD', 'INPUT']) {
      nat('-A', chain, '-i', 'uplink', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      nat('-A', chain, '-i', 'uplink', '-j', 'DROP');
    }
    lab.exec('r', ['ip', 'route', 'add', 'blackhole', '10.25.4.0/24']);

    // The hub's database is a scratch database of the test PostgreSQL, reached from the hub's namespace by a bridge.
    db = await scratchDatabase('direct_paths');
    const pgPort = Number(pg.port || 5432);
    await lab.bridgeOut('hub', pgPort, pgPort);
    hub = await startNetnsHub(lab, 'hub', { address: HUB, port: HUB_PORT, databaseUrl: db.url });
    partner = await newWorkspace(hub, 'partner@elsewhere.example');

    // x's targets: an echo server, a hash server, and PostgreSQL (the test's, through a bridge).
    echoServer = lab.peer('x', ['echo', '127.0.0.1', String(ECHO.target)]);
    openEchoServer = lab.peer('x', ['echo', '127.0.0.1', String(OPEN_ECHO.target)]);
    hashServer = lab.peer('x', ['hash-server', '127.0.0.1', String(BULK.target)]);
    await Promise.all([echoServer, openEchoServer, hashServer].map((p) => p.waitFor((l) => l.type === 'listening')));
    await lab.bridgeOut('x', DB.target, pgPort);
    lab.peer('n', ['echo', '127.0.0.1', String(NATTED.target)]);

    // One exposing agent per service, each its own config folder with its own direct port.
    for (const [service, role, extra] of [
      [ECHO, 'x', []],
      [DB, 'x', []],
      [BULK, 'x', []],
      // No health checks of its target: the battery counts the connections it gets.
      [OPEN_ECHO, 'x', ['--no-e2e', '--check-interval', '0']],
      [NATTED, 'n', []],
    ] as const) {
      const home = await agent(role, `${role}-${service.name}`);
      const proc = await home.expose(`127.0.0.1:${service.target}`, service.name, ['--direct-port', String(service.direct), ...extra]);
      exposers.set(service.name, { home, proc });
    }
    y = await agent('y', 'y-laptop');
    console.log(`# set-up: ${Date.now() - started} ms`);
  });

  after(async () => {
    const errors = hub?.proc.lines.filter((l) => typeof l === 'object' && Number(l.level) >= 50) ?? [];
    if (errors.length > 0) console.log(`# the hub logged ${errors.length} errors: ${JSON.stringify(errors.slice(0, 5))}`);
    await lab?.dispose();
    await hub?.stop().catch(() => undefined);
    await db?.drop().catch(() => undefined);
    await removeDirs(hub?.dataDir, ...homes);
    console.log(`# whole file: ${Date.now() - started} ms`);
  });

  test('a psql session and a 256 MiB transfer go direct: the hub relays no byte, connect status says direct, the audit log has the direct stream', async () => {
    const t = Date.now();
    const [dbReach, bulkReach] = [await y.reach(DB.name), await y.reach(BULK.name)];
    await waitPath(dbReach.proc, DB.name, 'direct');
    const bulkPath = await waitPath(bulkReach.proc, BULK.name, 'direct');
    assert.equal(bulkPath.via, `${X}:${BULK.direct}`);
    assert.equal(await relayed(), 0, 'nothing was relayed before');

    const sql = lab.execResult('y', [
      'psql', '-h', '127.0.0.1', '-p', String(dbReach.port), '-U', pg.username || 'postgres', '-d', pg.pathname.slice(1) || 'postgres', '-AtqX', '-v', 'ON_ERROR_STOP=1',
      '-c', 'create temp table t as select i, md5(i::text) as h from generate_series(1, 100000) i',
      '-c', 'select count(*), sum(i), min(h) from t',
      '-c', "select string_agg(h, '') from t where i <= 2000",
    ]);
    assert.equal(sql.code, 0, sql.stderr);
    const [counted, agg] = sql.stdout.trim().split('\n');
    assert.match(counted!, /^100000\|5000050000\|[0-9a-f]{32}$/);
    assert.equal(agg!.length, 2000 * 32, 'a 64 kB value came back whole');

    const client = lab.peer('y', ['hash', String(bulkReach.port), String(BULK_BYTES), String(BULK_BYTES)]);
    const result = await client.waitFor((l) => l.type === 'hash', 150_000, 'the end of the 256 MiB exchange');
    const received = await hashServer.waitFor((l) => l.type === 'received');
    const sent = await hashServer.waitFor((l) => l.type === 'sent');
    assert.equal(received.bytes, BULK_BYTES);
    assert.equal(result.sentSha256, received.sha256, 'what the client sent is what the server received');
    assert.equal(result.serverSha256, received.sha256);
    assert.equal(result.received, BULK_BYTES);
    assert.equal(result.receivedSha256, sent.sha256, 'what the server sent is what the client received');
    console.log(`# 256 MiB each way direct: ${result.ms} ms`);

    const story = () => JSON.stringify([dbReach.proc, bulkReach.proc, exposers.get(BULK.name)!.proc].map((p) => p.lines.filter((l) => typeof l === 'object' && l.type !== 'traffic')));
    assert.equal(await relayed(), 0, `the hub relayed no byte of psql or the transfer: ${story()}`);
    const status = await eventually(async () => {
      const out = y.run(['status']);
      const services = (out.json() as { services: Array<{ kind: string; name: string; path?: { mode: string; via?: string } }> }).services;
      const bulk = services.find((s) => s.kind === 'reach' && s.name === BULK.name);
      assert.equal(bulk?.path?.mode, 'direct', out.stdout);
      return services;
    });
    assert.deepEqual(status.find((s) => s.kind === 'reach' && s.name === DB.name)?.path, { name: DB.name, mode: 'direct', via: `${X}:${DB.direct}` });

    // The exposing agent reports its direct streams: the audit log has them, marked direct, with their bytes.
    await eventually(async () => {
      const audit = (await (await fetch(`${hub.url}/v1/audit?action=stream.direct`, { headers: { authorization: `Bearer ${hub.apiKey}` } })).json()) as AuditPage;
      const bulk = audit.events.find((e) => e.metadata?.service === BULK.name);
      assert.ok(bulk, JSON.stringify(audit));
      assert.equal(bulk.metadata?.direct, true);
      assert.ok(Number(bulk.metadata?.bytesIn) >= BULK_BYTES && Number(bulk.metadata?.bytesOut) >= BULK_BYTES, JSON.stringify(bulk.metadata));
    });
    await Promise.all([dbReach.proc.stop(), bulkReach.proc.stop()]);
    console.log(`# direct: ${Date.now() - t} ms`);
  });

  test('behind a NAT that takes no inbound connection everything goes through the hub, and connect status says why', async () => {
    const t = Date.now();
    const reach = await y.reach(NATTED.name);
    const path = await waitPath(reach.proc, NATTED.name, 'relay', { reason: /no address of the exposing agent answered/ });
    console.log(`# NAT reason: ${String(path.reason)}`);
    // The candidates were n's own address, which no one outside can route to, and the NAT's, which takes nothing in.
    assert.match(String(path.reason), /10\.25\.4\.2:7405/);
    assert.match(String(path.reason), /10\.25\.5\.2:7405/);
    const before = await relayed();
    const echo = lab.peer('y', ['once', String(reach.port), '65536']);
    const once = await echo.waitFor((l) => l.type === 'once', 15_000);
    assert.equal(once.ok, true, JSON.stringify(once));
    assert.ok((await relayed()) - before >= 2 * 65536, 'the bytes went through the hub');
    assert.equal(events(reach.proc, 'path').filter((p) => p.mode === 'direct').length, 0, 'it never claimed a direct path');
    await eventually(async () => {
      const services = (y.run(['status']).json() as { services: Array<{ kind: string; name: string; path?: { mode: string; reason?: string } }> }).services;
      const natted = services.find((s) => s.kind === 'reach' && s.name === NATTED.name);
      assert.equal(natted?.path?.mode, 'relay');
      assert.match(natted?.path?.reason ?? '', /no address of the exposing agent answered/);
    });
    await reach.proc.stop();
    console.log(`# NAT: ${Date.now() - t} ms`);
  });

  test('a firewall dropping the direct path mid-use: new connections work through the hub within a second, and go direct again once it is lifted', async () => {
    const t = Date.now();
    const reach = await y.reach(ECHO.name);
    await waitPath(reach.proc, ECHO.name, 'direct');
    const probe = lab.peer('y', ['probe', String(reach.port), '50']);
    await eventually(async () => assert.ok(events(probe, 'probe').filter((p) => p.ok).length >= 5), 10_000, 50);
    assert.equal(events(probe, 'probe').filter((p) => !p.ok).length, 0);
    const relayedBefore = await relayed();

    const pathsBefore = events(reach.proc, 'path').length;
    const rule = ['INPUT', '-p', 'tcp', '--dport', String(ECHO.direct), '-j', 'DROP'];
    const dropAt = Date.now();
    lab.exec('x', ['iptables', '-I', ...rule]);
    const inPlace = Date.now();
    const relay = await waitPath(reach.proc, ECHO.name, 'relay', { after: pathsBefore, timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 2500));
    const during = events(probe, 'probe').filter((p) => Number(p.start) >= inPlace);
    const failed = during.filter((p) => !p.ok);
    const firstOk = during.find((p) => p.ok);
    assert.ok(firstOk, `a new connection worked after the drop: ${JSON.stringify(during.slice(0, 5))}`);
    const failover = Number(firstOk.end) - dropAt;
    const slowest = Math.max(...during.map((p) => Number(p.end) - Number(p.start)));
    const relayAfter = Date.parse(String(relay.time)) - dropAt;
    console.log(`# failover: ${failover} ms from the rule to the first new connection's echo; the path said relay after ${relayAfter} ms (${String(relay.reason)}); slowest probe ${slowest} ms; ${during.length} probes`);
    assert.deepEqual(failed, [], 'no new connection failed');
    assert.ok(failover < 1500, `new connections worked again through the hub ${failover} ms after the drop`);
    assert.ok((await relayed()) > relayedBefore, 'they went through the hub');

    const pathsDropped = events(reach.proc, 'path').length;
    const liftAt = Date.now();
    lab.exec('x', ['iptables', '-D', ...rule]);
    await waitPath(reach.proc, ECHO.name, 'direct', { after: pathsDropped, timeoutMs: 30_000 });
    console.log(`# direct again ${Date.now() - liftAt} ms after the rule was lifted`);
    const backAt = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    const relayedBack = await relayed();
    await eventually(async () => assert.ok(events(probe, 'probe').filter((p) => p.ok && Number(p.start) > backAt + 300).length >= 10), 10_000, 50);
    assert.equal(await relayed(), relayedBack, 'new connections went direct again');
    await probe.stop();
    await reach.proc.stop();
    console.log(`# firewall: ${Date.now() - t} ms`);
  });

  test('the direct port refuses another workspace\'s ticket, a replayed hello, an expired ticket, one signed by another key and garbage with no byte back; another service\'s ticket opens nothing; legit streams go on', async () => {
    const t = Date.now();
    const exposer = exposers.get(OPEN_ECHO.name)!;
    const toPort = await lab.bridgeIn('y', X, OPEN_ECHO.direct);
    const port = toPort.port;
    const legit = await keyedRawAgent(hub.url, hub.apiKey, 'raw-y', true);
    const stranger = await keyedRawAgent(hub.url, partner.apiKey, 'raw-partner-laptop', true);
    const theirs = await keyedRawAgent(hub.url, partner.apiKey, 'raw-partner-server', true);
    const reach = await y.reach(ECHO.name);
    try {
      // The control: a ticket the hub gave this agent, a fresh hello, and an OPEN of the ticket's service.
      const ticket = await legit.direct(OPEN_ECHO.name);
      assert.ok(ticket.candidates.some((c) => c.host === X && c.port === OPEN_ECHO.direct), JSON.stringify(ticket.candidates));
      const openFrame = encodeJsonFrame(FrameType.OPEN, 1, { service: OPEN_ECHO.name, plain: true });
      const hello = makeDirectHello(legit.identity, ticket.ticket, Date.now());
      const helloFrame = encodeJsonFrame(FrameType.CONTROL, 0, hello);
      const served = async (helloBytes: Buffer) => {
        const client = await directClient(port);
        client.write(Buffer.concat([helloBytes, openFrame]));
        const welcome = await client.waitFrame((f) => f.type === FrameType.CONTROL, 'welcome');
        assert.equal(control(welcome).t, 'direct_welcome');
        const ok = await client.waitFrame((f) => f.streamId === 1 && f.type !== FrameType.WINDOW, 'answer to OPEN');
        assert.equal(ok.type, FrameType.OPEN_OK, ok.payload.toString());
        client.write(encodeFrame(FrameType.DATA, 1, Buffer.from('through the direct port')));
        const data = await client.waitFrame((f) => f.type === FrameType.DATA && f.streamId === 1, 'echo');
        assert.equal(data.payload.toString(), 'through the direct port');
        client.destroy();
      };
      const dialled = events(openEchoServer, 'connection').length;
      await served(helloFrame);

      const refusedBefore = events(exposer.proc, 'direct_refused').length;
      // Each control reached the target once (its line may come a moment after the echo).
      await eventually(async () => assert.equal(events(openEchoServer, 'connection').length, dialled + 1), 5000, 20);
      const key = createPrivateKey({ key: (await query<{ ticket_key: Buffer }>('select ticket_key from deployment', db!.url))[0]!.ticket_key, format: 'der', type: 'pkcs8' });
      const claims = claimsOf(ticket.ticket);
      const resigned = (change: Partial<DirectTicketClaims>, signer = key) => signDirectTicket({ ...claims, ...change, jti: randomBytes(16).toString('base64url') }, signer);
      const helloWith = (ticketText: string, identity = legit.identity) => encodeJsonFrame(FrameType.CONTROL, 0, makeDirectHello(identity, ticketText, Date.now()));
      // Our own signing with the hub's key is right: the same claims, signed again, are served.
      await served(helloWith(resigned({})));
      await eventually(async () => assert.equal(events(openEchoServer, 'connection').length, dialled + 2), 5000, 20);

      // Another workspace's agent with a valid ticket of its own workspace, for its own "open-echo", whose exposing
      // agent claims this very port.
      assert.ok((await theirs.raw.request('expose', { name: OPEN_ECHO.name, target: '127.0.0.1:9' })).ok);
      assert.ok((await theirs.raw.request('advertise', { port: OPEN_ECHO.direct, addrs: [X] })).ok);
      const foreign = await stranger.direct(OPEN_ECHO.name);
      assert.equal(claimsOf(foreign.ticket).ws, partner.workspaceId);
      const otherKey = generateKeyPairSync('ed25519').privateKey;
      const echoTicket = await legit.direct(ECHO.name);
      const cases: Array<[string, Buffer]> = [
        ["another workspace's agent with its own workspace's ticket", helloWith(foreign.ticket, stranger.identity)],
        ['the hello replayed byte for byte', helloFrame],
        ['an expired ticket', helloWith(resigned({ iat: Date.now() - 10 * 60_000, exp: Date.now() - 5 * 60_000 }))],
        ['a ticket signed by another key', helloWith(resigned({}, otherKey))],
        ['a ticket for this agent naming another workspace', helloWith(resigned({ ws: partner.workspaceId }))],
        ['a ticket for a service of another agent (echo)', helloWith(echoTicket.ticket)],
        ["a valid ticket with a hello signed by another identity", helloWith(resigned({}), stranger.identity)],
        ['HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
        ['random bytes', randomBytes(4096)],
        ['an OPEN without a hello', Buffer.alloc(0)],
        ["an agent's hub hello", encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'x' } })],
      ];
      for (const [what, bytes] of cases) {
        const result = await cutOffSilently(port, Buffer.concat([bytes, openFrame]));
        assert.deepEqual(result, { cut: true, bytes: 0 }, `${what}: cut off with no byte back`);
      }
      // Its log line may come a moment after the socket closed.
      await eventually(async () => assert.equal(events(exposer.proc, 'direct_refused').length - refusedBefore, cases.length, 'the exposing agent logged each refusal'), 5000, 20);
      console.log(`# refusals: ${events(exposer.proc, 'direct_refused').slice(refusedBefore).map((l) => String(l.reason)).join(' | ')}`);

      // A ticket for another service of this agent: the hello holds, but an OPEN of this service gets the same
      // answer as one of a service that does not exist, and nothing is dialled.
      const client = await directClient(port);
      client.write(helloWith(resigned({ svc: ECHO.name })));
      await client.waitFrame((f) => f.type === FrameType.CONTROL, 'welcome');
      client.write(openFrame);
      client.write(encodeJsonFrame(FrameType.OPEN, 3, { service: 'no-such-service', plain: true }));
      const [here, nowhere] = [await client.waitFrame((f) => f.streamId === 1, 'answer to OPEN 1'), await client.waitFrame((f) => f.streamId === 3, 'answer to OPEN 3')];
      assert.equal(here.type, FrameType.OPEN_ERROR);
      assert.deepEqual([nowhere.type, nowhere.payload.toString()], [here.type, here.payload.toString()], 'the existing service is answered as a made-up one');
      await sleep(200);
      assert.equal(client.frames.length, 3, 'nothing else came');
      client.destroy();
      assert.equal(events(openEchoServer, 'connection').length, dialled + 2, 'no refused stream reached the target');

      // Legit streams go on: the control again, and y's reach of echo, direct, relaying nothing.
      await served(helloWith(ticket.ticket));
      await waitPath(reach.proc, ECHO.name, 'direct');
      const relayedBefore = await relayed();
      const once = await lab.peer('y', ['once', String(reach.port), '4096']).waitFor((l) => l.type === 'once');
      assert.equal(once.ok, true);
      assert.equal(await relayed(), relayedBefore);
    } finally {
      await Promise.all([legit.raw.close(), stranger.raw.close(), theirs.raw.close(), toPort.close(), reach.proc.stop()]);
    }
    console.log(`# battery: ${Date.now() - t} ms`);
  });

  test('revoking the reaching agent, the share it reaches through, or the member who enrolled it cuts its open direct stream at once, though it no longer hears the hub', async () => {
    const t = Date.now();
    // Both ways: with only its packets to the hub dropped, w would still hear what the hub sends.
    const blocks = [['OUTPUT', '-d', HUB, '-j', 'DROP'], ['INPUT', '-s', HUB, '-j', 'DROP']];
    /** Holds a direct stream from w, cuts w off the hub, runs `revoke`, and returns how long until the stream closed. */
    const cutAfter = async (reacher: AgentHome, name: string, revoke: () => Promise<void>) => {
      const reach = await reacher.reach(name);
      await waitPath(reach.proc, name, 'direct');
      const before = await relayed();
      const hold = lab.peer('w', ['hold', String(reach.port)]);
      await hold.waitFor((l) => l.type === 'open');
      const lines = () => JSON.stringify([reach.proc, exposers.get(ECHO.name)!.proc].map((p) => p.lines.filter((l) => typeof l === 'object' && l.type !== 'traffic').slice(-12)));
      assert.equal(await relayed(), before, `the held stream is direct: ${lines()}`);
      // From here w hears nothing from the hub: only the exposing agent can end the stream.
      for (const rule of blocks) lab.exec('w', ['iptables', '-I', ...rule]);
      try {
        const at = Date.now();
        await revoke();
        const closed = await hold.waitFor((l) => l.type === 'closed', 10_000, 'the held stream closing');
        return Number(closed.at) - at;
      } finally {
        for (const rule of blocks) lab.exec('w', ['iptables', '-D', ...rule]);
        await reach.proc.stop();
      }
    };
    const api = (method: string, path: string) => fetch(`${hub.url}${path}`, { method, headers: { authorization: `Bearer ${hub.apiKey}` } });

    const z = await agent('w', 'w-laptop');
    const zId = (z.run(['status']).json() as { agentId: string }).agentId;
    const agentCut = await cutAfter(z, ECHO.name, async () => assert.equal((await api('DELETE', `/v1/agents/${zId}`)).status, 204));
    console.log(`# agent revoked: the direct stream closed ${agentCut} ms after DELETE /v1/agents/:id was sent`);
    assert.ok(agentCut < 1000, `cut ${agentCut} ms after the revocation`);

    const owner = exposers.get(ECHO.name)!.home;
    const shared = owner.run(['share', ECHO.name, '--name', 'partner-echo']);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    const { code, share } = shared.json() as CreatedShare;
    const v = await agent('w', 'w-partner', partner.apiKey);
    const joined = v.run(['join', code]);
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    const shareCut = await cutAfter(v, `partner-echo/${ECHO.name}`, async () => assert.equal((await api('DELETE', `/v1/shares/${share.id}`)).status, 204));
    console.log(`# share revoked: the direct stream closed ${shareCut} ms after DELETE /v1/shares/:id was sent`);
    assert.ok(shareCut < 1000, `cut ${shareCut} ms after the revocation`);

    // A member's agent, enrolled by device login and approved by the member: removing the member revokes it. Members
    // are managed by people, not API keys: the partner workspace's owner signs in, invites, and removes the member,
    // whose agent reaches a service of that workspace exposed in x.
    const partnerOwner = await signIn(hub, 'partner@elsewhere.example');
    const home = await agent('x', 'x-partner-echo', partner.apiKey);
    await home.expose(`127.0.0.1:${ECHO.target}`, 'member-echo', ['--direct-port', '7406']);
    const email = 'member@elsewhere.example';
    const invited = await fetch(`${hub.url}/v1/workspaces/${partner.workspaceId}/invites`, {
      method: 'POST',
      headers: { cookie: partnerOwner.cookie, origin: hub.url, 'content-type': 'application/json' },
      body: JSON.stringify({ email }),
    });
    assert.equal(invited.status, 202, await invited.text());
    const member = await signIn(hub, email, false);
    const m = await netnsAgentHome(lab, 'w', { label: 'w-member', env: DIRECT_ON });
    homes.push(m.home);
    const up = m.start(['up', '--hub', hub.agentUrl, '--label', 'w-member', '--device']);
    const shown = await up.waitFor((l) => l.type === 'device_code', 20_000, 'the device code');
    const approved = await fetch(`${hub.url}/v1/device/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: member.cookie, origin: hub.url },
      body: JSON.stringify({ user_code: shown.userCode, workspaceId: partner.workspaceId }),
    });
    assert.equal(approved.status, 200, await approved.text());
    assert.equal(await up.exited, 0, up.stderr());
    const remove = `/v1/workspaces/${partner.workspaceId}/members/${member.userId}`;
    const memberCut = await cutAfter(m, 'member-echo', async () => {
      const removed = await fetch(`${hub.url}${remove}`, { method: 'DELETE', headers: { cookie: partnerOwner.cookie, origin: hub.url, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(removed.status, 204, await removed.text());
    });
    console.log(`# member removed: the direct stream of the agent they enrolled closed ${memberCut} ms after DELETE /v1/workspaces/:id/members/:userId was sent`);
    assert.ok(memberCut < 1000, `cut ${memberCut} ms after the removal`);
    console.log(`# revocation: ${Date.now() - t} ms`);
  });

  test("a share's connection rate holds on the direct path: new connections over --rate are refused with RATE_LIMITED", async () => {
    const t = Date.now();
    const owner = exposers.get(ECHO.name)!.home;
    const shared = owner.run(['share', ECHO.name, '--name', 'partner-limited', '--rate', '3']);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    const u = await agent('w', 'w-partner-limited', partner.apiKey);
    const joined = u.run(['join', (shared.json() as CreatedShare).code]);
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    const name = `partner-limited/${ECHO.name}`;
    /** Eight new connections in a row through `reach`: how many echoed, and what the reach process said of the others. */
    const eight = async (reach: { proc: Proc; port: number }) => {
      let passed = 0;
      for (let i = 0; i < 8; i++) if ((await lab.peer('w', ['once', String(reach.port), '64']).waitFor((l) => l.type === 'once')).ok === true) passed++;
      return { passed, refused: events(reach.proc, 'stream_refused').map((e) => String(e.code)) };
    };
    // The control: the same share through the hub (this reach takes no direct path) lets 3 through.
    const relayedReach = await startReach((args) => u.start(args, { CONNECT_DIRECT: 'off' }), name);
    const viaHub = await eight(relayedReach).finally(() => relayedReach.proc.stop());
    assert.equal(viaHub.passed, 3, JSON.stringify(viaHub));
    assert.ok(viaHub.refused.includes('RATE_LIMITED'), JSON.stringify(viaHub));

    const reach = await u.reach(name);
    try {
      await waitPath(reach.proc, name, 'direct');
      const before = await relayed();
      const direct = await eight(reach);
      console.log(`# share --rate 3: ${viaHub.passed} of 8 new connections through the hub, ${direct.passed} of 8 direct (refused: ${JSON.stringify(direct.refused)}; relayed ${(await relayed()) - before} bytes)`);
      assert.ok(direct.passed <= 3, `${direct.passed} new connections within a minute went through a share allowing 3`);
      assert.ok(direct.refused.includes('RATE_LIMITED'), 'the reach process reports RATE_LIMITED');
    } finally {
      await reach.proc.stop();
    }
    console.log(`# share rate: ${Date.now() - t} ms`);
  });

  test('two expose processes of one config folder, each with its own --direct-port (docs/direct.md), both carry their streams direct', async () => {
    const home = await agent('x', 'x-two-processes');
    await home.expose(`127.0.0.1:${ECHO.target}`, 'echo-a', ['--direct-port', '7411']);
    await home.expose(`127.0.0.1:${ECHO.target}`, 'echo-b', ['--direct-port', '7412']);
    for (const [name, port] of [['echo-a', 7411], ['echo-b', 7412]] as const) {
      const reach = await y.reach(name);
      try {
        const path = await waitPath(reach.proc, name, 'direct');
        const before = await relayed();
        const once = await lab.peer('y', ['once', String(reach.port), '4096']).waitFor((l) => l.type === 'once');
        assert.equal(once.ok, true, `${name}: ${JSON.stringify(once)}; reach said ${JSON.stringify(reach.proc.lines.slice(-5))}`);
        assert.equal(path.via, `${X}:${port}`, `${name} goes to its own process's direct port`);
        assert.equal(await relayed(), before);
      } finally {
        await reach.proc.stop();
      }
    }
  });
});
