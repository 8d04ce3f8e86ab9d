/** Plain TCP helpers for tests and benchmarks: an echo server, a sink/source, and a client that collects bytes. */

import { createHash } from 'node:crypto';
import net from 'node:net';

export interface TcpServer {
  server: net.Server;
  port: number;
  close(): Promise<void>;
}

async function listen(server: net.Server, port = 0): Promise<TcpServer> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echoes every byte back; half-closes when the client does. */
export function echoServer(port = 0): Promise<TcpServer> {
  return listen(
    net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    }),
    port,
  );
}

/**
 * A server speaking a tiny protocol for bulk tests: the client sends an 8-byte big-endian length N followed by N
 * bytes of its own; the server answers with the 32-byte SHA-256 of what it received, then N pseudo-random bytes
 * (seeded), then closes. Lets a test check integrity in both directions without holding the data.
 */
export function hashServer(port = 0): Promise<TcpServer> {
  return listen(
    net.createServer((socket) => {
      socket.on('error', () => undefined);
      let header = Buffer.alloc(0);
      let remaining = -1;
      let total = 0;
      const hash = createHash('sha256');
      socket.on('data', (chunk: Buffer) => {
        if (remaining < 0) {
          header = Buffer.concat([header, chunk]);
          if (header.length < 8) return;
          total = Number(header.readBigUInt64BE(0));
          remaining = total;
          chunk = header.subarray(8);
        }
        const take = chunk.subarray(0, remaining);
        hash.update(take);
        remaining -= take.length;
        if (remaining === 0) {
          remaining = -2;
          socket.write(hash.digest());
          void writeStream(socket, total, 7).then(() => socket.end());
        }
      });
    }),
    port,
  );
}

/** Deterministic bytes: block i of 64 KiB is SHA-256 chains of (seed, i); cheap and reproducible. */
export function block(seed: number, index: number, size = 64 * 1024): Buffer {
  const out = Buffer.allocUnsafe(size);
  let h = createHash('sha256').update(`${seed}:${index}`).digest();
  for (let off = 0; off < size; off += 32) {
    h.copy(out, off, 0, Math.min(32, size - off));
    if (off % 4096 === 0) h = createHash('sha256').update(h).digest();
  }
  return out;
}

/** The deterministic chunks writeStream(total, seed) sends, in order. */
export function* chunks(total: number, seed: number): Generator<Buffer> {
  for (let sent = 0, index = 0; sent < total; index++) {
    const chunk = block(seed, index).subarray(0, Math.min(64 * 1024, total - sent));
    sent += chunk.length;
    yield chunk;
  }
}

/** Resolves on 'drain'; rejects if the socket closes first (`what` names the progress for the message). */
export function drained(socket: net.Socket, what: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      reject(new Error(`socket closed after ${what()}`));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** Writes `total` deterministic bytes to a socket honouring backpressure; resolves with their SHA-256. */
export async function writeStream(socket: net.Socket, total: number, seed: number): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  for (const chunk of chunks(total, seed)) {
    hash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await drained(socket, () => `${sent} of ${total} bytes`);
  }
  return hash.digest('hex');
}

/** The SHA-256 that writeStream(total, seed) produces, computed without a socket. */
export function expectedDigest(total: number, seed: number): string {
  const hash = createHash('sha256');
  for (const chunk of chunks(total, seed)) hash.update(chunk);
  return hash.digest('hex');
}

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Sends `payload`, half-closes, and resolves with everything the server sent back before closing. */
export async function roundTrip(port: number, payload: Buffer | string, timeoutMs = 15_000, host = '127.0.0.1'): Promise<Buffer> {
  const socket = await connect(port, host);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer on port ${port} within ${timeoutMs} ms (got ${Buffer.concat(chunks).length} bytes)`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.end(payload);
  });
}

/** Retries `fn` until it succeeds or the deadline passes (for "works again once X is back"). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 20_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

/** What the client of a hashServer exchange saw: the server's digest of our upload, and the digest of the download. */
export interface HashExchange {
  uploadDigest: string;
  serverDigestOfUpload: string;
  downloadBytes: number;
  downloadDigest: string;
}

/**
 * Speaks hashServer's protocol over `socket`: 8-byte length, `total` bytes of seed `uploadSeed`, then reads the
 * server's 32-byte digest and the `total` bytes it sends back, hashing them as they arrive.
 */
export function hashExchange(socket: net.Socket, total: number, uploadSeed: number): Promise<HashExchange> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let serverDigestOfUpload: string | undefined;
    let downloadBytes = 0;
    const download = createHash('sha256');
    let uploadDigest: string | undefined;
    let closed = false;
    const finish = () => {
      if (!closed || uploadDigest === undefined) return;
      if (serverDigestOfUpload === undefined) return reject(new Error(`the connection closed before the server's digest (${head.length} bytes)`));
      resolve({ uploadDigest, serverDigestOfUpload, downloadBytes, downloadDigest: download.digest('hex') });
    };
    socket.on('data', (chunk: Buffer) => {
      if (serverDigestOfUpload === undefined) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 32) return;
        serverDigestOfUpload = head.subarray(0, 32).toString('hex');
        chunk = head.subarray(32);
      }
      downloadBytes += chunk.length;
      download.update(chunk);
    });
    socket.once('error', reject);
    socket.once('close', () => {
      closed = true;
      finish();
    });
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(total));
    socket.write(header);
    writeStream(socket, total, uploadSeed).then((digest) => {
      uploadDigest = digest;
      finish();
    }, reject);
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a program or server that must be told which port to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * `count` consecutive ports on 127.0.0.1 that are free now, the first picked at random in [from, from + span): test
 * files that need a range (hub TCP ports) each keep to their own stretch.
 */
export async function freePortRange(count: number, from: number, span: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = from + Math.floor(Math.random() * span);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => isFree(first + i)));
    if (free.every(Boolean)) return first;
  }
  throw new Error(`no ${count} free consecutive ports found from ${from}`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
