/**
 * HTTP/1.1 spoken by hand over one TCP connection, as an attacker does: write any bytes (pipelined requests, an
 * Upgrade the app may ignore), then read the responses one by one in order. Bodies are framed by Content-Length or
 * chunked encoding; a response without either ends with the connection.
 */

import net from 'node:net';

/** One response read off the connection. */
export interface WireResponse {
  status: number;
  /** Header names in lower case (a repeated header keeps its last value). */
  headers: Record<string, string>;
  body: string;
}

/** Reads the first whole response in `text`, or undefined while it is incomplete (`ended`: no more bytes will come). */
export function parseHttpResponse(text: string, ended = false): { response: WireResponse; rest: string } | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
  let at = end + 4;
  let body = '';
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(text.slice(at, lineEnd), 16);
      if (text.length < lineEnd + 2 + size + 2) return undefined;
      at = lineEnd + 2;
      if (size === 0) {
        at += 2;
        break;
      }
      body += text.slice(at, at + size);
      at += size + 2;
    }
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (text.length < at + length) return undefined;
    body = text.slice(at, at + length);
    at += length;
  } else if (status === 101 || status === 204 || status === 304) {
    // No body.
  } else {
    if (!ended) return undefined;
    body = text.slice(at);
    at = text.length;
  }
  return { response: { status, headers, body }, rest: text.slice(at) };
}

/** A raw client connection to 127.0.0.1:`port`. */
export interface RawHttpClient {
  write(bytes: string): void;
  /** The next response in order; undefined when the connection ended before one came. */
  next(timeoutMs?: number): Promise<WireResponse | undefined>;
  close(): void;
}

/** Opens a connection for `RawHttpClient`; resolves once it is connected. */
export async function rawHttpClient(port: number): Promise<RawHttpClient> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  let ended = false;
  let wake: (() => void) | undefined;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    wake?.();
  });
  const finish = () => {
    ended = true;
    wake?.();
  };
  socket.on('end', finish).on('close', finish).on('error', finish);
  return {
    write: (bytes) => void socket.write(bytes),
    async next(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const parsed = parseHttpResponse(text, ended);
        if (parsed) {
          text = parsed.rest;
          return parsed.response;
        }
        if (ended) return undefined;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no whole response within ${timeoutMs} ms; read so far: ${JSON.stringify(text.slice(0, 300))}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    close: () => void socket.destroy(),
  };
}
