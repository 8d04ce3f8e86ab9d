/**
 * The socket of an Upgrade request that is not switched goes back to its server (link-upgrade.ts), on plain HTTP and
 * on HTTPS (where the server parses the TLS socket it made): the requests pipelined after it are parsed and answered
 * by the server's own request handler, in order, and the connection then lives by the server's keep-alive rules.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { exchangeOnSocket } from '../src/sharing/link-upgrade.js';

/** A server that answers Upgrade requests with 200 through exchangeOnSocket, and other requests with their target. */
function withUpgradeAnswer(server: http.Server | https.Server): http.Server | https.Server {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => res.end(`request ${req.method} ${req.url}`));
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    void exchangeOnSocket(req, socket, head).then((exchange) => exchange?.res.end(`not switched ${req.url}`));
  });
  return server;
}

/** Writes `bytes` on `socket` and resolves with all it reads until the server closes the connection. */
function readAll(socket: net.Socket, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    socket.setEncoding('latin1').on('data', (c: string) => (out += c));
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.write(bytes);
  });
}

const pipelined = [
  'GET /first HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'GET /second HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /again HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'DELETE /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
].join('');

const expected = ['not switched /first', 'request GET /second', 'not switched /again', 'request DELETE /last'];

/** The bodies of the responses in `wire`, in order. */
function bodies(wire: string): string[] {
  return [...wire.matchAll(/\r\n\r\n(.*?)(?=HTTP\/1\.1 |$)/gs)].map((m) => m[1]!);
}

describe('an Upgrade request answered without 101 hands its connection back to the server', () => {
  let dir: string;
  let key: Buffer;
  let cert: Buffer;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pc-upgrade-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    key = readFileSync(join(dir, 'key.pem'));
    cert = readFileSync(join(dir, 'cert.pem'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('plain HTTP: every pipelined request after it is answered by the server, in order', async () => {
    const server = withUpgradeAnswer(http.createServer());
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    try {
      const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      assert.deepEqual(bodies(await readAll(socket, pipelined)), expected);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('HTTPS: the TLS socket goes back to the https server', async () => {
    const server = withUpgradeAnswer(https.createServer({ key, cert }));
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    try {
      // A self-signed certificate made by this test for 127.0.0.1: nothing else to trust.
      const socket = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: cert, servername: undefined, checkServerIdentity: () => undefined });
      await new Promise<void>((ready, fail) => socket.once('secureConnect', ready).once('error', fail));
      assert.deepEqual(bodies(await readAll(socket, pipelined)), expected);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
