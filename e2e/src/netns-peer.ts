/**
 * Servers and clients the direct-path tests run inside network namespaces (`ip netns exec <ns> node netns-peer.js`),
 * where the test process cannot open sockets itself. Each prints JSON lines on stdout, with times from Date.now()
 * (one clock for every process of the machine):
 *
 *   echo <host> <port>                 echo server                     {type:'listening', port}, {type:'connection'}
 *   hash-server <host> <port>          u64 up, u64 down, then `up` bytes; answers their SHA-256 (32 bytes), then
 *                                      `down` random bytes, and ends   {type:'received'|'sent', bytes, sha256}
 *   hash <port> <up> <down>            client of hash-server on 127.0.0.1:port, random bytes
 *                                                                      {type:'hash', sent, sentSha256, serverSha256,
 *                                                                       received, receivedSha256, ms}
 *   once <port> <bytes>                one connection: `bytes` random bytes echoed back whole
 *                                                                      {type:'once', ok, ms, error?}
 *   probe <port> <everyMs>             a new connection every everyMs, each one echo of a line
 *                                                                      {type:'probe', i, start, end, ok, error?}
 *   hold <port>                        one connection, echoed once, then held open
 *                                                                      {type:'open', at}  {type:'closed', at, error?}
 *   pipe-out <path> <port>             (run outside the namespaces) each connection to unix socket `path` is piped
 *                                      to 127.0.0.1:port; exits when its parent is gone  {type:'listening'}
 */

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

const print = (line: Record<string, unknown>) => process.stdout.write(JSON.stringify(line) + '\n');
const CHUNK = 256 * 1024;

function listen(server: net.Server, host: string, port: number): void {
  server.listen(port, host, () => print({ type: 'listening', port: (server.address() as net.AddressInfo).port }));
}

function echo(host: string, port: number): void {
  listen(
    net.createServer({ allowHalfOpen: true }, (socket) => {
      print({ type: 'connection', at: Date.now() });
      socket.on('error', () => undefined);
      socket.pipe(socket);
    }),
    host,
    port,
  );
}

/** Writes `total` random bytes with backpressure; resolves with their SHA-256. */
async function sendRandom(socket: net.Socket, total: number): Promise<string> {
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; ) {
    const chunk = randomBytes(Math.min(CHUNK, total - sent));
    hash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Error(`the socket closed after ${sent} of ${total} bytes`));
        socket.once('close', onClose);
        socket.once('drain', () => {
          socket.off('close', onClose);
          resolve();
        });
      });
    }
  }
  return hash.digest('hex');
}

function hashServer(host: string, port: number): void {
  listen(
    net.createServer((socket) => {
      socket.on('error', (err) => print({ type: 'error', message: err.message }));
      let head = Buffer.alloc(0);
      let up = -1;
      let down = 0;
      let received = 0;
      let done = false;
      const hash = createHash('sha256');
      socket.on('data', (chunk: Buffer) => {
        if (done) return; // anything past `up` bytes is ignored
        if (up < 0) {
          head = Buffer.concat([head, chunk]);
          if (head.length < 16) return;
          up = Number(head.readBigUInt64BE(0));
          down = Number(head.readBigUInt64BE(8));
          chunk = head.subarray(16);
        }
        const take = chunk.subarray(0, up - received);
        hash.update(take);
        received += take.length;
        if (received === up) {
          done = true;
          const digest = hash.digest();
          print({ type: 'received', bytes: received, sha256: digest.toString('hex') });
          socket.write(digest);
          void sendRandom(socket, down).then((sha256) => {
            print({ type: 'sent', bytes: down, sha256 });
            socket.end();
          });
        }
      });
    }),
    host,
    port,
  );
}

async function hashClient(port: number, up: number, down: number): Promise<void> {
  const started = Date.now();
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', (err) => {
    print({ type: 'error', message: err.message });
    process.exit(1);
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  let head = Buffer.alloc(0);
  let serverSha256: string | undefined;
  let received = 0;
  const hash = createHash('sha256');
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => {
    if (serverSha256 === undefined) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 32) return;
      serverSha256 = head.subarray(0, 32).toString('hex');
      chunk = head.subarray(32);
    }
    received += chunk.length;
    hash.update(chunk);
  });
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(BigInt(up), 0);
  header.writeBigUInt64BE(BigInt(down), 8);
  socket.write(header);
  const sentSha256 = await sendRandom(socket, up);
  await ended;
  print({ type: 'hash', sent: up, sentSha256, serverSha256, received, receivedSha256: hash.digest('hex'), ms: Date.now() - started });
}

/** One connection that sends a line and resolves once the same line came back. */
function echoOnce(port: number, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no echo within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed after ${got.length} bytes`));
    });
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString();
      if (got === text) {
        clearTimeout(timer);
        socket.removeAllListeners('close');
        socket.destroy();
        resolve();
      }
    });
    socket.write(text);
  });
}

function once(port: number, bytes: number): void {
  const start = Date.now();
  const text = randomBytes(Math.ceil(bytes / 2)).toString('hex').slice(0, bytes);
  echoOnce(port, text, 10_000).then(
    () => print({ type: 'once', ok: true, ms: Date.now() - start }),
    (err: Error) => print({ type: 'once', ok: false, ms: Date.now() - start, error: err.message }),
  );
}

function probe(port: number, everyMs: number): void {
  let i = 0;
  setInterval(() => {
    const n = ++i;
    const start = Date.now();
    echoOnce(port, `probe ${n}\n`, 5000).then(
      () => print({ type: 'probe', i: n, start, end: Date.now(), ok: true }),
      (err: Error) => print({ type: 'probe', i: n, start, end: Date.now(), ok: false, error: err.message }),
    );
  }, everyMs);
}

function hold(port: number): void {
  const socket = net.connect({ port, host: '127.0.0.1' });
  let error: string | undefined;
  let open = false;
  socket.on('error', (err) => (error = err.message));
  socket.on('close', () => {
    print({ type: 'closed', at: Date.now(), open, ...(error ? { error } : {}) });
    process.exit(0);
  });
  socket.once('data', () => {
    open = true;
    print({ type: 'open', at: Date.now() });
  });
  socket.write('held\n');
}

function pipeOut(path: string, port: number): void {
  const parent = process.ppid;
  const server = net.createServer((client) => {
    const target = net.connect({ port, host: '127.0.0.1' });
    for (const [a, b] of [[client, target], [target, client]] as const) {
      a.on('error', () => b.destroy());
      a.pipe(b);
    }
  });
  server.listen(path, () => print({ type: 'listening', path }));
  // Its test process was killed: nothing else would stop this one.
  setInterval(() => process.ppid !== parent && process.exit(0), 1000);
}

const [command, ...args] = process.argv.slice(2);
process.on('SIGTERM', () => process.exit(0));
switch (command) {
  case 'echo':
    echo(args[0]!, Number(args[1]));
    break;
  case 'hash-server':
    hashServer(args[0]!, Number(args[1]));
    break;
  case 'hash':
    void hashClient(Number(args[0]), Number(args[1]), Number(args[2]));
    break;
  case 'once':
    once(Number(args[0]), Number(args[1]));
    break;
  case 'probe':
    probe(Number(args[0]), Number(args[1]));
    break;
  case 'pipe-out':
    pipeOut(args[0]!, Number(args[1]));
    break;
  case 'hold':
    hold(Number(args[0]));
    break;
  default:
    process.stderr.write(`netns-peer: unknown command ${command}\n`);
    process.exit(2);
}
