/**
 * Health checks of a target over real sockets: an open port, a closed one, HTTPS with a self-signed certificate
 * (made by openssl), HTTP 500, servers that speak first or echo, and the periodic monitor.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthCheck } from '@private-connect/protocol';
import { checkTarget, probeTls, startHealthMonitor, tlsCheck } from '../src/index.js';
import { connect } from 'node:net';
import { bannerServer, closedPort, echoServer, httpServer, httpsServer, selfSignedCert, silentServer, type Running } from './support/targets.js';

const byName = (checks: HealthCheck[]) => Object.fromEntries(checks.map((c) => [c.name, c]));
const target = (port: number, host = '127.0.0.1') => ({ host, port });

describe('checkTarget', () => {
  const servers: Running[] = [];
  let tls: { cert: string; key: string };
  before(async () => {
    tls = await selfSignedCert(30);
  });
  after(async () => {
    for (const server of servers) await server.close();
  });
  const start = async (running: Promise<Running>) => {
    const server = await running;
    servers.push(server);
    return server;
  };

  test('an open TCP port passes DNS, TCP and latency; TLS and HTTP do not apply to a silent server', async () => {
    const server = await start(silentServer());
    const checks = await checkTarget(target(server.port), { timeoutMs: 500 });
    assert.deepEqual(checks.map((c) => [c.name, c.ok]), [['dns', true], ['tcp', true], ['latency', true]]);
    const { dns, tcp, latency } = byName(checks);
    assert.match(dns!.detail, /127\.0\.0\.1 \(an IP address\)/);
    assert.match(tcp!.detail, new RegExp(`127\\.0\\.0\\.1:${server.port} accepts connections`));
    assert.match(latency!.detail, /ms median of 3 opens/);
    assert.equal(typeof latency!.ms, 'number');
  });

  test('a closed port fails TCP with the reason and what to do, and skips the rest', async () => {
    const port = await closedPort();
    const checks = await checkTarget(target(port));
    assert.deepEqual(checks.map((c) => [c.name, c.ok]), [['dns', true], ['tcp', false]]);
    assert.match(checks[1]!.detail, /does not accept connections \(ECONNREFUSED\)/);
    assert.match(checks[1]!.hint!, /start the service/);
  });

  test('a host that does not resolve fails DNS with a hint', async () => {
    const checks = await checkTarget(target(80, 'no-such-host.invalid'));
    assert.deepEqual(checks.map((c) => [c.name, c.ok]), [['dns', false]]);
    assert.match(checks[0]!.detail, /no-such-host\.invalid does not resolve/);
    assert.ok(checks[0]!.hint);
  });

  test('HTTPS with a self-signed certificate: TLS shows version, subject, expiry and flags self-signed; HTTP 200', async () => {
    const server = await start(httpsServer(tls));
    const { tls: t, http } = byName(await checkTarget(target(server.port, 'localhost')));
    assert.ok(t, 'a TLS check');
    assert.equal(t.ok, true, t.detail);
    assert.match(t.detail, /^TLSv1\.3 · CN=localhost · self-signed · expires \d{4}-\d\d-\d\d \((29|30) days left\)$/);
    assert.match(t.hint!, /self-signed/);
    assert.equal(http?.ok, true);
    assert.match(http!.detail, /^HTTPS HEAD \/ → 200/);
  });

  test('an expired certificate fails TLS', async () => {
    const server = await start(httpsServer(tls));
    const probe = await probeTls(connect(server.port, '127.0.0.1'), { host: 'localhost', timeoutMs: 2000 });
    assert.equal(probe.kind, 'tls');
    const later = new Date(Date.now() + 40 * 24 * 60 * 60 * 1000);
    const check = tlsCheck(probe, later, 1)!;
    assert.equal(check.ok, false);
    assert.match(check.detail, /EXPIRED on \d{4}-\d\d-\d\d \(\d+ days ago\)/);
    assert.match(check.hint!, /renew/);
    const soon = tlsCheck(probe, new Date(Date.now() + 25 * 24 * 60 * 60 * 1000), 1)!;
    assert.equal(soon.ok, true);
    assert.match(soon.hint!, /renew the certificate soon/);
  });

  test('an HTTP server answering 500 fails HTTP with the status', async () => {
    const server = await start(httpServer(500));
    const checks = await checkTarget(target(server.port));
    assert.deepEqual(checks.map((c) => [c.name, c.ok]), [['dns', true], ['tcp', true], ['http', false], ['latency', true]]);
    assert.equal(byName(checks).http!.detail, 'HTTP HEAD / → 500 Internal Server Error');
    assert.match(byName(checks).http!.hint!, /logs/);
  });

  test('a 404 at / still passes (the server answers), and a server without HEAD is asked with GET', async () => {
    const notFound = await start(httpServer(404));
    assert.equal(byName(await checkTarget(target(notFound.port))).http!.ok, true);
    const noHead = await start(httpServer(0, (req, res) => res.writeHead(req.method === 'HEAD' ? 405 : 204).end()));
    assert.equal(byName(await checkTarget(target(noHead.port))).http!.detail, 'HTTP GET / → 204 No Content');
  });

  test('a server that speaks first (SSH) is neither probed for TLS nor HTTP; its greeting is shown', async () => {
    const server = await start(bannerServer());
    const checks = await checkTarget(target(server.port));
    assert.deepEqual(checks.map((c) => c.name), ['dns', 'tcp', 'latency']);
    assert.match(byName(checks).tcp!.detail, /greets with "SSH-2\.0-OpenSSH_9\.6"/);
  });

  test('an echo server is not mistaken for TLS or HTTP', async () => {
    const server = await start(echoServer());
    const checks = await checkTarget(target(server.port), { timeoutMs: 1000 });
    assert.deepEqual(checks.map((c) => [c.name, c.ok]), [['dns', true], ['tcp', true], ['latency', true]]);
  });

  test('a service exposed as HTTP that does not answer HTTP fails the HTTP check', async () => {
    const server = await start(echoServer());
    const http = byName(await checkTarget(target(server.port), { protocol: 'http', timeoutMs: 1000 })).http;
    assert.equal(http?.ok, false);
    assert.match(http!.detail, /exposed as HTTP, but the target answered something that is not HTTP/);
  });
});

describe('startHealthMonitor', () => {
  test('checks at once and then every interval, never two at once, and stops', async () => {
    let running = 0;
    let most = 0;
    const reports: number[] = [];
    let n = 0;
    const monitor = startHealthMonitor({
      intervalMs: 20,
      check: async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 50));
        running--;
        return ++n;
      },
      report: async (value) => void reports.push(value),
    });
    await new Promise((r) => setTimeout(r, 300));
    monitor.stop();
    const count = reports.length;
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(count >= 3, `reports: ${reports.join(',')}`);
    assert.equal(most, 1, 'checks never overlap');
    assert.equal(reports[0], 1);
    assert.ok(reports.length <= count + 1, 'at most the check in flight reports after stop');
  });

  test('goes on after a check fails', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const monitor = startHealthMonitor({
      intervalMs: 10,
      check: async () => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return calls;
      },
      report: async () => undefined,
      onError: (err) => errors.push(err),
    });
    await new Promise((r) => setTimeout(r, 80));
    monitor.stop();
    assert.equal(errors.length, 1);
    assert.ok(calls >= 3);
  });
});
