/**
 * Real static HTTP backends that read a request path in different ways, for tests of path limits (shares and public
 * links): Python's `http.server` percent-decodes the whole path (%2f included) and then resolves `..` with normpath;
 * the Node server below is written the usual Node way (WHATWG URL parsing, which resolves `..` and `%2e%2e` and reads
 * `\` as `/`, then decodeURIComponent and path.join, which resolve `..` once more). Both serve a folder made by
 * `staticTree`, and neither ever serves a file outside it.
 */

import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import type { WebSocketServer } from 'ws';
import { tempDir } from './harness.js';

/**
 * Stops a test app: its WebSocket clients (if it has a WebSocket server) and its kept-alive connections are cut, and
 * the promise resolves once the server has closed.
 */
export function closeHttpServer(server: http.Server, wss?: WebSocketServer): Promise<void> {
  return new Promise<void>((done) => {
    for (const client of wss?.clients ?? []) client.terminate();
    wss?.close();
    server.closeAllConnections();
    server.close(() => done());
  });
}

export interface HttpBackend {
  /** What it is, for test names and failure messages. */
  name: string;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

/** A temp folder holding `files` (relative path → content); resolves with its absolute path. */
export async function staticTree(files: Record<string, string>): Promise<string> {
  const root = await tempDir('static');
  for (const [path, content] of Object.entries(files)) {
    const file = join(root, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  return root;
}

/** `python3 -m http.server` serving `root` on 127.0.0.1 (a free port), resolved once it listens. */
export async function startPythonStatic(root: string): Promise<HttpBackend> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-20_000)));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const port = await new Promise<number>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`python3 -m http.server did not say it listens within 15 s:\n${stderr}`)), 15_000);
    void exited.then(() => fail(new Error(`python3 -m http.server exited before it listened:\n${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^Serving HTTP on \S+ port (\d+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      ready(Number(m[1]));
    });
  });
  return {
    name: 'python3 -m http.server',
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A Node static file server the way it is usually written: `new URL(req.url)`, `decodeURIComponent(pathname)`,
 * `path.join(root, …)`. A path that resolves outside `root` is answered 403, so the test never serves other files.
 */
export async function startNodeStatic(root: string): Promise<HttpBackend> {
  const base = resolve(root);
  const server = http.createServer((req, res) => {
    void (async () => {
      let file: string;
      try {
        file = join(base, decodeURIComponent(new URL(req.url ?? '/', 'http://backend').pathname));
      } catch {
        return void res.writeHead(400).end('bad path\n');
      }
      if (file !== base && !file.startsWith(base + sep)) return void res.writeHead(403).end('outside the served folder\n');
      try {
        if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
        const body = await readFile(file);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
      } catch {
        res.writeHead(404).end('not found\n');
      }
    })();
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const port = (server.address() as AddressInfo).port;
  return {
    name: 'node:http static server',
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => closeHttpServer(server),
  };
}
