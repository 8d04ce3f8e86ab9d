/** Loopback servers the bench measures against: the same server is reached directly and through the hub. */

import net from 'node:net';

export interface BenchServer {
  port: number;
  close(): Promise<void>;
}

function listen(server: net.Server): Promise<BenchServer> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}

/**
 * Bulk sink: the client sends an 8-byte big-endian length N, then N bytes; the server discards them and answers
 * with one byte once all N arrived. No hashing or copying, so the sink costs next to nothing per byte.
 */
export function sinkServer(): Promise<BenchServer> {
  return listen(
    net.createServer((socket) => {
      socket.on('error', () => undefined);
      let header: Buffer | undefined = Buffer.alloc(0);
      let remaining = 0;
      socket.on('data', (chunk: Buffer) => {
        if (header) {
          header = Buffer.concat([header, chunk]);
          if (header.length < 8) return;
          remaining = Number(header.readBigUInt64BE(0));
          chunk = header.subarray(8);
          header = undefined;
        }
        remaining -= chunk.length;
        if (remaining === 0) socket.write(Buffer.from([1]));
        else if (remaining < 0) socket.destroy();
      });
    }),
  );
}

/** Echo: every byte back at once; ends its side when the client ends. No Nagle on either side. */
export function echoServer(): Promise<BenchServer> {
  return listen(
    net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    }),
  );
}
