/**
 * HTTP/1.1 on one raw TCP connection, for tests of what a server does with several requests on a connection
 * (keep-alive, pipelining, an Upgrade that is answered 200): send bytes as they are, read the answers back in order.
 */

import net from 'node:net';

/** One response read off the wire: status, headers (lower-case names; repeats joined with ", " but set-cookie kept apart), body. */
export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  setCookie: string[];
  body: string;
}

/**
 * Sends `bytes` on a new connection to 127.0.0.1:`port` and resolves with every byte received until the server
 * closes the connection (or `timeoutMs` passes: then it rejects with what came so far).
 */
export function exchange(port: number, bytes: string | Buffer, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${timeoutMs} ms; got:\n${Buffer.concat(chunks).toString('latin1')}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(bytes);
  });
}

/**
 * Splits the bytes of a connection into its responses (Content-Length or chunked bodies; a response with neither
 * runs to the end, as after a 101). Interim 1xx answers other than 101 are skipped. `headRequests` lists the
 * indexes of responses to HEAD requests, which have no body whatever their headers say.
 */
export function parseResponses(data: Buffer, headRequests: number[] = []): WireResponse[] {
  const out: WireResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) throw new Error(`an incomplete response head at byte ${at}: ${data.subarray(at).toString('latin1').slice(0, 200)}`);
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    at = end + 4;
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    if (!status) throw new Error(`not a status line: ${lines[0]}`);
    const headers: Record<string, string> = {};
    const setCookie: string[] = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'set-cookie') setCookie.push(value);
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    if (status >= 100 && status < 200 && status !== 101) continue;
    let body: Buffer;
    if (headRequests.includes(out.length) || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at);
        const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
        at = lineEnd + 2;
        if (size === 0) {
          at = data.indexOf('\r\n', at) + 2; // no trailers expected: the empty line
          break;
        }
        parts.push(data.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined && status !== 101) {
      const length = Number(headers['content-length']);
      body = data.subarray(at, at + length);
      at += length;
    } else {
      body = data.subarray(at);
      at = data.length;
    }
    out.push({ status, headers, setCookie, body: body.toString('utf8') });
  }
  return out;
}
