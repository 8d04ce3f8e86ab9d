/**
 * HTTP/1.1 spoken by hand over one TCP connection, as an attacker does, for tests of what a server does with several
 * requests on a connection (keep-alive, pipelining, an Upgrade that is answered 200) and when it closes one: send
 * bytes as they are, read the answers back in order, all at once (`exchange` + `parseResponses`) or one by one
 * (`rawHttpClient`, which also half-closes, or keeps its side open after the server ended its own).
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
 * Reads the first whole response in `text` (bytes as latin1), or undefined while it is incomplete (`ended`: no more
 * bytes will come, so a body framed by neither Content-Length nor chunked ends here). Bodies are framed by
 * Content-Length or chunked encoding; a response to HEAD (`head`), 101, 204 and 304 have none, and interim 1xx
 * answers other than 101 are skipped.
 */
export function parseHttpResponse(text: string, ended = false, head = false): { response: WireResponse; rest: string } | undefined {
  for (;;) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) {
      if (ended && text.length > 0) throw new Error(`an incomplete response head: ${text.slice(0, 200)}`);
      return undefined;
    }
    const lines = text.slice(0, end).split('\r\n');
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
    let at = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      text = text.slice(at);
      continue;
    }
    let body = '';
    if (head || status === 101 || status === 204 || status === 304) {
      // No body.
    } else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', at);
        if (lineEnd < 0) return undefined;
        const size = parseInt(text.slice(at, lineEnd), 16);
        if (text.length < lineEnd + 2 + size + 2) return undefined;
        at = lineEnd + 2;
        if (size === 0) {
          at += 2; // no trailers expected: the empty line
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
    } else {
      if (!ended) return undefined;
      body = text.slice(at);
      at = text.length;
    }
    return { response: { status, headers, setCookie, body: Buffer.from(body, 'latin1').toString('utf8') }, rest: text.slice(at) };
  }
}

/**
 * Splits the bytes of a whole connection into its responses. After a 101 the rest is the upgraded protocol's, kept
 * as that response's body. `headRequests` lists the indexes of responses to HEAD requests.
 */
export function parseResponses(data: Buffer, headRequests: number[] = []): WireResponse[] {
  const out: WireResponse[] = [];
  let text = data.toString('latin1');
  while (text.length > 0) {
    const parsed = parseHttpResponse(text, true, headRequests.includes(out.length));
    if (!parsed) break;
    if (parsed.response.status === 101) parsed.response.body = Buffer.from(parsed.rest, 'latin1').toString('utf8');
    out.push(parsed.response);
    text = parsed.response.status === 101 ? '' : parsed.rest;
  }
  return out;
}

/** A raw client connection to 127.0.0.1:`port`: write any bytes, read the responses one by one in order. */
export interface RawHttpClient {
  write(bytes: string | Buffer): void;
  /** Half-closes the connection: the server reads the end of input, and may still answer. */
  end(): void;
  /**
   * The next response in order; undefined when the connection ended before one came. `head`: it answers a HEAD
   * request (no body, whatever its headers say).
   */
  next(timeoutMs?: number, head?: boolean): Promise<WireResponse | undefined>;
  /** Resolves once the server has ended its side of the connection (or reset it); rejects after `timeoutMs`. */
  closed(timeoutMs?: number): Promise<void>;
  /**
   * Waits until `enough(unread)` holds: true then, false when the connection ended or `timeoutMs` passed first (for
   * a client that leaves in the middle of an answer).
   */
  until(enough: (unread: string) => boolean, timeoutMs?: number): Promise<boolean>;
  /** Whether the server has ended its side of the connection (or reset it). */
  readonly ended: boolean;
  /** Bytes received (as latin1) and not read as a response yet: after a 101, the upgraded protocol's. */
  readonly unread: string;
  /** The connection's error, if any: ECONNRESET or EPIPE once the server has let go of a connection it ended. */
  readonly error: (Error & { code?: string }) | undefined;
  /** Closes the connection (a FIN: to the server, the same as `end`). */
  close(): void;
  /** Resets the connection (an RST: the server learns at once that the client is gone). */
  reset(): void;
}

export interface RawHttpOptions {
  /**
   * Keep our side open when the server ends its side (no FIN back, as a client that never closes does): the
   * connection is then gone only once the server lets go of it.
   */
  keepOpen?: boolean;
}

/** Opens a connection for `RawHttpClient`; resolves once it is connected. */
export async function rawHttpClient(port: number, options: RawHttpOptions = {}): Promise<RawHttpClient> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.keepOpen ?? false });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  let ended = false;
  let error: Error | undefined;
  let wake: (() => void) | undefined;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    wake?.();
  });
  const finish = () => {
    ended = true;
    wake?.();
  };
  socket.on('end', finish).on('close', finish).on('error', (err) => {
    error = err;
    finish();
  });
  /** Waits for more bytes or the end of the connection; throws `late()` once the deadline has passed. */
  const waitFor = async (deadline: number, late: () => string) => {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(late());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  };
  return {
    write: (bytes) => void socket.write(bytes),
    end: () => void socket.end(),
    async next(timeoutMs = 20_000, head = false) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const parsed = parseHttpResponse(text, ended, head);
        if (parsed) {
          text = parsed.rest;
          return parsed.response;
        }
        if (ended) return undefined;
        await waitFor(deadline, () => `no whole response within ${timeoutMs} ms; read so far: ${JSON.stringify(text.slice(0, 300))}`);
      }
    },
    async closed(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!ended) await waitFor(deadline, () => `the server did not close the connection within ${timeoutMs} ms; unread: ${JSON.stringify(text.slice(0, 300))}`);
    },
    async until(enough, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!enough(text)) {
        if (ended || Date.now() >= deadline) return false;
        await waitFor(deadline, () => '').catch(() => undefined);
      }
      return true;
    },
    get ended() {
      return ended;
    },
    get unread() {
      return text;
    },
    get error() {
      return error;
    },
    close: () => void socket.destroy(),
    reset: () => void socket.resetAndDestroy(),
  };
}
