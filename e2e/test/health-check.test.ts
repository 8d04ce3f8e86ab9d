/**
 * `connect reach <name> --check` with real processes: a hub, agent A exposing real targets (an open port, a closed
 * one, HTTPS with a self-signed certificate made by openssl, HTTP answering 500), agent B checking them through the
 * tunnel. A's periodic reports land in the hub's diagnostics.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { ServiceDiagnostics } from '@private-connect/api';
import { CONNECT_MAIN, enrolAgent, removeDirs, startHubProcess, type AgentHome, type HubProcess, type Proc } from '../src/index.js';

const run = promisify(execFile);

interface Report {
  service: string;
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string; hint?: string; ms?: number }>;
}

/** Sockets of the test's servers, destroyed at the end (HTTP keep-alive would hold `close()` open). */
const sockets = new Set<Socket>();

async function listen(server: Server): Promise<number> {
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

/** `connect ... ` as a child process without blocking this one (the targets live in this process). */
async function connect(agent: AgentHome, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CONNECT_MAIN, ...args], {
      env: { ...process.env, CONNECT_HOME: agent.home, NO_COLOR: '1' },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function check(agent: AgentHome, name: string): Promise<{ code: number; report: Report }> {
  const result = await connect(agent, ['--json', 'reach', name, '--check']);
  let report: Report;
  try {
    report = JSON.parse(result.stdout) as Report;
  } catch {
    throw new Error(`not one JSON object (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, report };
}

const get = (report: Report, name: string) => report.checks.find((c) => c.name === name);

describe('connect reach --check', () => {
  let hub: HubProcess;
  let a: AgentHome;
  let b: AgentHome;
  let certDir: string;
  const servers: Server[] = [];
  const procs: Proc[] = [];
  const ports = { open: 0, closed: 0, https: 0, http500: 0 };

  before(async () => {
    certDir = await mkdtemp(join(tmpdir(), 'pc-e2e-cert-'));
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'),
      '-days', '90', '-subj', '/CN=localhost',
    ]);
    const tls = { cert: await readFile(join(certDir, 'cert.pem')), key: await readFile(join(certDir, 'key.pem')) };
    const open = createNetServer((s) => s.on('error', () => undefined));
    const https = createHttpsServer(tls, (_req, res) => res.writeHead(200).end('ok'));
    const http500 = createHttpServer((_req, res) => res.writeHead(500).end('boom'));
    const closed = createNetServer();
    servers.push(open, https as unknown as Server, http500 as unknown as Server);
    ports.open = await listen(open);
    ports.https = await listen(https as unknown as Server);
    ports.http500 = await listen(http500 as unknown as Server);
    ports.closed = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    hub = await startHubProcess();
    [a, b] = await Promise.all([enrolAgent(hub, { label: 'server-a' }), enrolAgent(hub, { label: 'laptop-b' })]);
    const expose = async (target: string, name: string, extra: string[] = []) => procs.push(await a.expose(target, name, ['--check-interval', '1', ...extra]));
    await expose(`127.0.0.1:${ports.open}`, 'open-port');
    await expose(`127.0.0.1:${ports.closed}`, 'closed-port');
    await expose(`localhost:${ports.https}`, 'secure-web');
    await expose(`127.0.0.1:${ports.http500}`, 'broken-web', ['--http']);
  });

  after(async () => {
    for (const proc of procs) await proc.stop();
    for (const socket of sockets) socket.destroy();
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
    await hub?.stop();
    await removeDirs(hub?.dataDir, a?.home, b?.home, certDir);
  });

  test('an open port: DNS, TCP and latency pass and the exit code is 0', async () => {
    const { code, report } = await check(b, 'open-port');
    assert.equal(code, 0, JSON.stringify(report, null, 2));
    assert.deepEqual(report.checks.map((c) => [c.name, c.ok]), [['dns', true], ['tcp', true], ['latency', true]]);
    assert.equal(report.service, 'open-port');
    assert.equal(report.ok, true);
    assert.match(get(report, 'tcp')!.detail, new RegExp(`open-port → 127\\.0\\.0\\.1:${ports.open} on server-a accepts connections`));
    assert.match(get(report, 'latency')!.detail, /ms median of 5 opens/);
    assert.equal(typeof get(report, 'latency')!.ms, 'number');
  });

  test('a closed port: TCP fails with the reason and what to do, and the exit code is 1', async () => {
    const { code, report } = await check(b, 'closed-port');
    assert.equal(code, 1);
    assert.equal(report.ok, false);
    const tcp = get(report, 'tcp')!;
    assert.equal(tcp.ok, false);
    assert.match(tcp.detail, /could not connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
    assert.match(tcp.hint!, /nothing accepts connections on 127\.0\.0\.1:\d+ on "server-a"/);
  });

  test('HTTPS with a self-signed certificate: the TLS line shows version and expiry and flags it; HTTP 200', async () => {
    const { code, report } = await check(b, 'secure-web');
    assert.equal(code, 0, JSON.stringify(report, null, 2));
    const tls = get(report, 'tls')!;
    assert.equal(tls.ok, true);
    assert.match(tls.detail, /^TLSv1\.3 · CN=localhost · self-signed · expires \d{4}-\d\d-\d\d \((89|90) days left\)$/);
    assert.match(tls.hint!, /self-signed/);
    assert.match(get(report, 'http')!.detail, /^HTTPS HEAD \/ → 200/);
    // The target is localhost: its DNS is the exposing agent's to check, and it reported it.
    assert.match(get(report, 'dns')!.detail, /target localhost → .* on server-a/);
  });

  test('HTTP answering 500: the HTTP check fails with the status', async () => {
    const { code, report } = await check(b, 'broken-web');
    assert.equal(code, 1);
    const http = get(report, 'http')!;
    assert.equal(http.ok, false);
    assert.equal(http.detail, 'HTTP HEAD / → 500 Internal Server Error');
    assert.ok(http.hint);
    assert.deepEqual(report.checks.filter((c) => !c.ok).map((c) => c.name), ['http']);
  });

  test('without --json: one line per check with ✓ or ✗ and the hint under a failure', async () => {
    const result = await connect(b, ['reach', 'closed-port', '--check']);
    assert.equal(result.code, 1);
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^✓ DNS +hub 127\.0\.0\.1 \(an IP address\)/);
    assert.match(lines[1]!, /^✗ TCP +the agent exposing "closed-port" could not connect/);
    assert.match(lines[2]!, /^ +→ nothing accepts connections/);
    assert.equal(lines.at(-1), 'closed-port: 1 of 2 checks failed');
    assert.ok(!result.stdout.includes('\x1b['), 'no colours without a terminal');
    const good = await connect(b, ['reach', 'open-port', '--check']);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^✓ Latency +[\d.]+ ms median of 5 opens/m);
  });

  test('an unknown service: TCP fails with a hint to list the services', async () => {
    const { code, report } = await check(b, 'no-such-service');
    assert.equal(code, 1);
    assert.equal(get(report, 'tcp')!.detail, 'Service not found: no-such-service');
    assert.match(get(report, 'tcp')!.hint!, /connect ls/);
  });

  test("the exposing agent reports its targets' health to the hub, with history", async () => {
    const services = (await (await fetch(`${hub.url}/v1/services`, { headers: { authorization: `Bearer ${hub.apiKey}` } })).json()) as {
      services: Array<{ id: string; name: string; health?: { ok: boolean; checks: Array<{ name: string; ok: boolean }> } }>;
    };
    const byName = new Map(services.services.map((s) => [s.name, s]));
    assert.equal(byName.get('open-port')!.health?.ok, true);
    assert.equal(byName.get('closed-port')!.health?.ok, false);
    assert.deepEqual(byName.get('closed-port')!.health!.checks.map((c) => [c.name, c.ok]), [['dns', true], ['tcp', false]]);
    assert.equal(byName.get('broken-web')!.health!.checks.find((c) => c.name === 'http')?.ok, false);
    // --check-interval 1: more reports come every second, newest first.
    const id = byName.get('open-port')!.id;
    let body: ServiceDiagnostics | undefined;
    for (let i = 0; i < 50 && (body?.history.length ?? 0) < 2; i++) {
      body = (await (await fetch(`${hub.url}/v1/services/${id}/diagnostics?limit=5`, { headers: { authorization: `Bearer ${hub.apiKey}` } })).json()) as ServiceDiagnostics;
      if (body.history.length < 2) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(body && body.history.length >= 2, JSON.stringify(body));
    assert.deepEqual(body.latest, body.history[0]);
    assert.ok(body.history[0]!.checkedAt >= body.history[1]!.checkedAt);
  });
});
