/** Real targets for the diagnostics tests: HTTP and HTTPS servers, a self-signed certificate made by openssl, a closed port. */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Running {
  port: number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<Running> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A certificate for `localhost` signed by its own key, made with the openssl CLI in a temp folder (removed). */
export async function selfSignedCert(days = 30): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-cert-'));
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', String(days), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    return { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An HTTP server answering every request with `status`. */
export function httpServer(status: number, handler?: RequestListener): Promise<Running> {
  return listen(createHttpServer(handler ?? ((_req, res) => res.writeHead(status, { 'content-type': 'text/plain' }).end(`status ${status}\n`))) as unknown as Server);
}

/** An HTTPS server (TLS 1.2+) with `cert`, answering every request with `status`. */
export function httpsServer(tls: { cert: string; key: string }, status = 200): Promise<Running> {
  const server = createHttpsServer({ ...tls, minVersion: 'TLSv1.2' }, (_req, res) => res.writeHead(status).end('ok\n'));
  return listen(server as unknown as Server);
}

/** A TCP server that stays silent and keeps connections open (a database waiting for its client). */
export function silentServer(): Promise<Running> {
  return listen(createNetServer((socket) => socket.on('error', () => undefined)));
}

/** A TCP server that speaks first, like SSH. */
export function bannerServer(banner = 'SSH-2.0-OpenSSH_9.6\r\n'): Promise<Running> {
  return listen(
    createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.write(banner);
    }),
  );
}

/** Echoes every byte back. */
export function echoServer(): Promise<Running> {
  return listen(
    createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    }),
  );
}

/** A port on 127.0.0.1 that nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const running = await listen(createNetServer());
  await running.close();
  return running.port;
}
