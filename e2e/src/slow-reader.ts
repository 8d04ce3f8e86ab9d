/** Test servers and clients for flow control: a server that reads nothing until told, a writer that counts what left. */

import { createHash } from 'node:crypto';
import net from 'node:net';
import { chunks, drained } from './tcp.js';

/** A server whose connections start paused (nothing read) until `resume()`; hashes what it then reads. */
export interface SlowReader {
  port: number;
  /** Resolves with the first connection once it arrived. */
  connection: Promise<net.Socket>;
  /** Resolves with the byte count and SHA-256 of everything the first connection sent, once it half-closed. */
  received: Promise<{ bytes: number; digest: string }>;
  close(): Promise<void>;
}

export async function slowReader(): Promise<SlowReader> {
  let gotConnection!: (s: net.Socket) => void;
  let gotAll!: (r: { bytes: number; digest: string }) => void;
  const connection = new Promise<net.Socket>((r) => (gotConnection = r));
  const received = new Promise<{ bytes: number; digest: string }>((r) => (gotAll = r));
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    socket.pause(); // adding a 'data' listener would otherwise start the flow
    socket.once('end', () => {
      gotAll({ bytes, digest: hash.digest('hex') });
      socket.end();
    });
    gotConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connection,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Writes `total` deterministic bytes (writeStream's blocks) honouring backpressure, counting in `flushed` the bytes
 * the socket handed to the kernel (write callbacks), i.e. what left the client.
 */
export function countingWriter(socket: net.Socket, total: number, seed: number) {
  const state = { flushed: 0, done: undefined as unknown as Promise<void> };
  state.done = (async () => {
    for (const chunk of chunks(total, seed)) {
      const ok = socket.write(chunk, (err) => {
        if (!err) state.flushed += chunk.length;
      });
      if (!ok) await drained(socket, () => `${state.flushed} of ${total} bytes`);
    }
    socket.end();
  })();
  return state;
}
