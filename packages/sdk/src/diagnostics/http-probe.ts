/** Sends one HTTP/1.1 request over an open connection and reads the status line of the answer. */

import type { Duplex } from 'node:stream';

export type HttpProbeResult =
  | { kind: 'http'; status: number; reason: string }
  /** The target did not answer in HTTP (it speaks something else, closed, or stayed silent). */
  | { kind: 'not-http'; reason: string };

/** Most that is read looking for the status line. */
const MAX_STATUS_LINE = 8 * 1024;

/** Requests `method /` with `Host: host`; the connection is destroyed when this resolves. */
export function probeHttp(socket: Duplex, options: { method: 'HEAD' | 'GET'; host: string; timeoutMs: number; userAgent: string }): Promise<HttpProbeResult> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (result: HttpProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ kind: 'not-http', reason: received.length === 0 ? `no answer within ${options.timeoutMs / 1000} s` : 'no complete status line in time' }),
      options.timeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const prefix = received.subarray(0, 5).toString('latin1');
      if (!'HTTP/'.startsWith(prefix)) return finish({ kind: 'not-http', reason: 'answered something that is not HTTP' });
      const end = received.indexOf('\r\n');
      if (end < 0) {
        if (received.length > MAX_STATUS_LINE) finish({ kind: 'not-http', reason: 'the status line is too long' });
        return;
      }
      const match = /^HTTP\/\d(?:\.\d)? (\d{3})(?: (.*))?$/.exec(received.subarray(0, end).toString('latin1'));
      if (!match) return finish({ kind: 'not-http', reason: 'the status line is not HTTP' });
      finish({ kind: 'http', status: Number(match[1]), reason: (match[2] ?? '').trim().slice(0, 80) });
    });
    socket.on('error', () => finish({ kind: 'not-http', reason: 'the connection failed before an answer' }));
    const closed = () => finish({ kind: 'not-http', reason: 'closed the connection without answering' });
    socket.on('end', closed);
    socket.on('close', closed);
    socket.write(
      `${options.method} / HTTP/1.1\r\nHost: ${options.host}\r\nUser-Agent: ${options.userAgent}\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
    );
  });
}
