/**
 * TLS end to end with real processes: a hub serving HTTPS/WSS with a certificate from a private CA (made here with
 * the openssl CLI), agents that trust it with --ca, CONNECT_CA_FILE or NODE_EXTRA_CA_CERTS, an echo round trip
 * through the tunnel; and the refusals: no CA, TLS 1.1, bad certificate files, plain http:// to a remote hub.
 */

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { writeConfig } from '@private-connect/sdk';
import {
  CONNECT_MAIN,
  HUB_MAIN,
  echoServer,
  newApiKey,
  removeDirs,
  roundTrip,
  startExpose,
  startHubProcess,
  startProcess,
  startReach,
  tempDir,
  type HubProcess,
  type Proc,
  type TcpServer,
} from '../src/index.js';
import { startProbeApp } from '../src/probe-app.js';

const run = promisify(execFile);

interface Certs {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate it signed, for 127.0.0.1 and localhost; `name` keeps several apart. */
async function makeCerts(dir: string, name = 'server'): Promise<Certs> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  if (name === 'server') await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=Private Connect test CA');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await openssl('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', cert, '-days', '2', '-extfile', ext);
  return { dir, ca, cert, key };
}

/** An agent config folder driven through the real `connect` CLI, with `global` options before every command. */
function cliAgent(home: string, global: string[], env: NodeJS.ProcessEnv = {}) {
  const baseEnv = { CONNECT_HOME: home, CONNECT_RECONNECT_MAX_MS: '500', NO_COLOR: '1', ...env };
  const agent = {
    run(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
      const result = spawnSync(process.execPath, [CONNECT_MAIN, ...global, ...args], { env: { ...process.env, ...baseEnv, ...extraEnv }, encoding: 'utf8', timeout: 30_000 });
      return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
    },
    start: (args: string[]): Proc => startProcess(process.execPath, [CONNECT_MAIN, '--json', ...global, ...args], baseEnv, `connect ${args.join(' ')}`),
  };
  return agent;
}

/** Asserts that a failed CLI run printed exactly one line to stderr and no stack trace; returns that line. */
function oneLine(result: { code: number; stdout: string; stderr: string }): string {
  assert.notEqual(result.code, 0, `expected a failure, got 0: ${result.stdout}`);
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  return lines[0]!;
}

function peerCertificate(port: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('a hub serving HTTPS and WSS itself (TLS_CERT, TLS_KEY)', () => {
  let dir: string;
  let certs: Certs;
  let caPem: string;
  let hub: HubProcess;
  let url: string;
  let echo: TcpServer;
  const homes: string[] = [];
  const procs: Proc[] = [];

  before(async () => {
    dir = await tempDir('tls');
    certs = await makeCerts(dir);
    caPem = await readFile(certs.ca, 'utf8');
    hub = await startHubProcess({ env: { TLS_CERT: certs.cert, TLS_KEY: certs.key } });
    url = `https://127.0.0.1:${hub.port}`;
    echo = await echoServer();
  });

  after(async () => {
    for (const proc of procs) await proc.stop();
    await echo?.close();
    await hub?.stop();
    await removeDirs(dir, hub?.dataDir, ...homes);
  });

  const home = async () => {
    const path = await tempDir('tls-agent');
    homes.push(path);
    return path;
  };

  test('expose and reach over wss with --ca: an echo round trip through the tunnel', async () => {
    const a = cliAgent(await home(), ['--ca', certs.ca]);
    const b = cliAgent(await home(), ['--ca', certs.ca]);
    for (const [agent, label] of [[a, 'tls-server'], [b, 'tls-laptop']] as const) {
      const up = agent.run(['up', '--hub', url, '--api-key', hub.apiKey, '--label', label]);
      assert.equal(up.code, 0, up.stderr);
    }
    procs.push(await startExpose(a.start, `127.0.0.1:${echo.port}`, 'echo-ca'));
    const reach = await startReach(b.start, 'echo-ca', ['--port', '0']);
    procs.push(reach.proc);
    assert.equal((await roundTrip(reach.port, 'hello over wss\n')).toString(), 'hello over wss\n');
  });

  test('a public link over the hub\'s own TLS: three link requests, then an API request, on one kept-alive TLS connection', async () => {
    const app = await startProbeApp();
    try {
      const a = cliAgent(await home(), ['--ca', certs.ca]);
      assert.equal(a.run(['up', '--hub', url, '--api-key', hub.apiKey, '--label', 'tls-web']).code, 0);
      procs.push(await startExpose(a.start, `127.0.0.1:${app.port}`, 'web-tls', ['--http']));
      const made = a.run(['--json', 'link', 'web-tls', '--expires', '1h']);
      assert.equal(made.code, 0, made.stderr);
      const link = JSON.parse(made.stdout) as { url: string };
      assert.ok(link.url.startsWith(`${url}/l/`), link.url);
      // One curl, one TLS connection: three link requests, then the hub's own /healthz.
      const { stdout } = await run('curl', ['-sS', '--cacert', certs.ca, '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n', `${link.url}app/fast`, '-o', '/dev/null', `${link.url}app/fast`, '-o', '/dev/null', `${link.url}app/fast`, '-o', '/dev/null', `${url}/healthz`]);
      assert.deepEqual(stdout.trim().split('\n'), ['200 1', '200 0', '200 0', '200 0']);
      assert.equal(app.seen.filter((s) => s.endsWith('/app/fast')).length, 3);
    } finally {
      await app.close();
    }
  });

  test('expose and reach with NODE_EXTRA_CA_CERTS (and CONNECT_CA_FILE for connect up)', async () => {
    const env = { NODE_EXTRA_CA_CERTS: certs.ca };
    const a = cliAgent(await home(), [], env);
    const b = cliAgent(await home(), [], env);
    assert.equal(a.run(['up', '--hub', url, '--api-key', hub.apiKey, '--label', 'extra-server']).code, 0);
    const up = b.run(['up', '--hub', url, '--api-key', hub.apiKey, '--label', 'extra-laptop'], { NODE_EXTRA_CA_CERTS: '', CONNECT_CA_FILE: certs.ca });
    assert.equal(up.code, 0, up.stderr);
    procs.push(await startExpose(a.start, `127.0.0.1:${echo.port}`, 'echo-extra'));
    const reach = await startReach(b.start, 'echo-extra', ['--port', '0']);
    procs.push(reach.proc);
    assert.equal((await roundTrip(reach.port, 'trusted by NODE_EXTRA_CA_CERTS\n')).toString(), 'trusted by NODE_EXTRA_CA_CERTS\n');
  });

  test('CONNECT_HUB_URL names the hub for connect up and for the API commands, as the self-hosting guide says', async () => {
    const agent = cliAgent(await home(), ['--ca', certs.ca], { CONNECT_HUB_URL: url });
    const up = agent.run(['up', '--api-key', hub.apiKey, '--label', 'env-hub']);
    assert.equal(up.code, 0, up.stderr);
    const config = JSON.parse(await readFile(join(homes.at(-1)!, 'config.json'), 'utf8')) as { hubUrl: string };
    assert.equal(config.hubUrl.replace(/\/$/, ''), url);
    const audit = agent.run(['--json', 'audit', '--limit', '5', '--api-key', hub.apiKey]);
    assert.equal(audit.code, 0, audit.stderr);
    // A wrong CONNECT_HUB_URL is where connect up goes: it fails there, in one line.
    const wrong = cliAgent(await home(), ['--ca', certs.ca], { CONNECT_HUB_URL: 'https://127.0.0.1:1' });
    oneLine(wrong.run(['up', '--api-key', hub.apiKey]));
  });

  test('without the CA, connect up fails with one line about the certificate', async () => {
    const agent = cliAgent(await home(), []);
    const line = oneLine(agent.run(['up', '--hub', url, '--api-key', hub.apiKey]));
    assert.match(line, /certificate of the hub at https:\/\/127\.0\.0\.1:\d+ is not signed by a CA this machine trusts/);
    assert.match(line, /--ca <file>/);
    assert.match(line, /\(HUB_CERTIFICATE\)$/);
  });

  test('without the CA, connect expose stops at once with one line about the certificate (the WSS path)', async () => {
    const path = await home();
    const enrolled = cliAgent(path, ['--ca', certs.ca]);
    assert.equal(enrolled.run(['up', '--hub', url, '--api-key', hub.apiKey, '--label', 'no-ca']).code, 0);
    const line = oneLine(cliAgent(path, []).run(['expose', `127.0.0.1:${echo.port}`, '--name', 'never']));
    assert.match(line, /certificate of the hub at https:\/\/127\.0\.0\.1:\d+ is not signed by a CA this machine trusts/);
    assert.match(line, /\(HUB_CERTIFICATE\)$/);
  });

  test('refuses a TLS 1.1 client; TLS 1.2 and 1.3 clients get in', async () => {
    const attempt = (version: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve) => {
        // SECLEVEL=0 lets this client offer TLS 1.1 at all, so the refusal is the hub's.
        const socket = tlsConnect({ port: hub.port, host: '127.0.0.1', ca: caPem, minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
          resolve(socket.getProtocol() ?? 'unknown');
          socket.end();
        });
        socket.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      });
    assert.equal(await attempt('TLSv1.1'), 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    assert.equal(await attempt('TLSv1.2'), 'TLSv1.2');
    assert.equal(await attempt('TLSv1.3'), 'TLSv1.3');
  });

  test('the web port serves HTTPS with the same certificate', async () => {
    const webPort = Number(new URL(hub.webUrl!).port);
    const status = await new Promise<number>((resolve, reject) => {
      httpsGet({ host: '127.0.0.1', port: webPort, path: '/healthz', ca: caPem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(status, 200);
  });

  test('SIGHUP loads a renewed certificate for new connections', async () => {
    const before = await peerCertificate(hub.port, caPem);
    const renewed = await makeCerts(dir, 'renewed');
    // The hub reads the files named by TLS_CERT / TLS_KEY again: replace their contents.
    await writeFile(certs.cert, await readFile(renewed.cert));
    await writeFile(certs.key, await readFile(renewed.key));
    hub.proc.child.kill('SIGHUP');
    await hub.proc.waitFor((l) => l.msg === 'TLS certificate reloaded', 10_000, '"TLS certificate reloaded" log line');
    const after = await peerCertificate(hub.port, caPem);
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.equal(after.subject.CN, 'renewed');
  });
});

describe('bad TLS settings stop the hub at start with one line naming the variable', () => {
  let dir: string;
  let certs: Certs;
  before(async () => {
    dir = await tempDir('tls-bad');
    certs = await makeCerts(dir);
    await makeCerts(dir, 'other');
  });
  after(() => removeDirs(dir));

  const cases: Array<[string, () => NodeJS.ProcessEnv, RegExp]> = [
    ['a missing certificate file', () => ({ TLS_CERT: join(dir, 'missing.pem'), TLS_KEY: certs.key }), /^connect-hub: invalid configuration: TLS_CERT: cannot read .*missing\.pem \(ENOENT\)$/],
    ['a key file that is not a key', () => ({ TLS_CERT: certs.cert, TLS_KEY: certs.ca }), /^connect-hub: invalid configuration: TLS_KEY: .* holds no PEM private key$/],
    ['a key of another certificate', () => ({ TLS_CERT: certs.cert, TLS_KEY: join(dir, 'other.key') }), /^connect-hub: invalid configuration: TLS_KEY: .*other\.key does not go with the certificate in .*server\.pem/],
    ['TLS_CERT without TLS_KEY', () => ({ TLS_CERT: certs.cert }), /^connect-hub: invalid configuration: TLS_KEY: TLS_CERT and TLS_KEY go together/],
  ];
  for (const [what, env, expected] of cases) {
    test(`${what}`, async () => {
      const dataDir = await tempDir('tls-bad-hub');
      try {
        const proc = startProcess(process.execPath, [HUB_MAIN], { HUB_PORT: '0', WEB_PORT: 'off', HUB_HOST: '127.0.0.1', HUB_DATA_DIR: dataDir, TLS_CERT: '', TLS_KEY: '', HUB_BOOTSTRAP_API_KEY: newApiKey(), ...env() }, 'hub');
        assert.equal(await proc.exited, 2);
        const lines = proc.stderr().split('\n').filter(Boolean);
        assert.equal(lines.length, 1, proc.stderr());
        assert.match(lines[0]!, expected);
      } finally {
        await removeDirs(dataDir);
      }
    });
  }
});

describe('plain http:// to a hub that is not on loopback', () => {
  /** A non-loopback address of this machine; a name under .invalid when it has none (refused before any lookup). */
  const remote = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? 'hub.example.invalid';
  let home: string;
  before(async () => {
    home = await tempDir('insecure');
  });
  after(() => removeDirs(home));

  test('connect up refuses it in one line, exit code 1, no stack trace', () => {
    const line = oneLine(cliAgent(home, []).run(['up', '--hub', `http://${remote}:3001`, '--api-key', newApiKey()]));
    assert.equal(line, `error: refusing plain http:// to ${remote}: use https://, or set CONNECT_ALLOW_INSECURE=true for local development only (INSECURE_HUB)`);
  });

  test('connect expose refuses it in one line when the config names such a hub', async () => {
    await writeConfig(home, { hubUrl: `http://${remote}:3001`, agentId: 'a', workspaceId: 'w', label: 'x', token: 'f'.repeat(64), tokenExpiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    const result = cliAgent(home, []).run(['expose', '127.0.0.1:9', '--name', 'never']);
    assert.equal(result.code, 1);
    assert.match(oneLine(result), /^error: refusing plain http:\/\/ to .*\(INSECURE_HUB\)$/);
  });
});
