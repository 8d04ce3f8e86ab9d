/**
 * The exposing agent's side of one stream open, on whichever connection it came (the hub's, or a direct one): the
 * end-to-end decision and the offer taken (stream-handshake.ts), then the open handed to the agent, which connects
 * its target and accepts, or refuses.
 */

import { ConnectError, FrameType, encodeFrame, encodeJsonFrame, type OpenNotice } from '@private-connect/protocol';
import type { TunnelStream } from '@private-connect/tunnel';
import type { StreamHandshakes } from './stream-handshake.js';

/** An incoming stream request: accept() once the local target is connected, or refuse(). */
export interface IncomingOpen {
  notice: OpenNotice;
  stream: TunnelStream;
  /** The connection it came on: 'hub' (relayed), or 'direct' (the agent's direct port). */
  path: 'hub' | 'direct';
  accept(): void;
  refuse(code: ConnectError['code'], message: string): void;
}

/** What serveOpen needs from the connection the open came on. */
export interface OpenConnection {
  readonly handshakes: StreamHandshakes;
  /** Its streams by id: an accepted stream is added here. */
  readonly streams: Map<number, TunnelStream>;
  send(frame: Buffer): void;
  /** Whether the connection is still the one the open came on (an answer after it went away is dropped). */
  alive(): boolean;
  /** An offer that did not hold (a forged handshake, a replayed open...): the agent logs it. */
  rejected(notice: OpenNotice, error: ConnectError): void;
}

/** Serves the open of stream `stream` (its id on `conn`) described by `notice`. */
export function serveOpen(
  conn: OpenConnection,
  stream: TunnelStream,
  notice: OpenNotice,
  path: IncomingOpen['path'],
  handler: ((open: IncomingOpen) => void) | undefined,
): void {
  const id = stream.id;
  const refuse = (code: ConnectError['code'], message: string) => conn.send(encodeJsonFrame(FrameType.OPEN_ERROR, id, { code, message }));
  if (!handler) return refuse('SERVICE_NOT_FOUND', `Service not found: ${notice.service}`);
  const decided = conn.handshakes.decide(notice);
  if (decided instanceof ConnectError) {
    conn.rejected(notice, decided);
    return refuse(decided.code, decided.message);
  }
  let plan: ReturnType<StreamHandshakes['take']> | undefined;
  if (decided.encrypt) {
    try {
      plan = conn.handshakes.take(notice);
    } catch (err) {
      // An offer that does not verify (a forged handshake, a replayed stream number, a session ended here) fails
      // this stream only: it is refused before the local target is even connected.
      const error = err instanceof ConnectError ? err : new ConnectError('E2E_HANDSHAKE_FAILED', String(err));
      conn.rejected(notice, error);
      return refuse(error.code, error.message);
    }
  }
  if (plan?.kind === 'stream') {
    // A stream of a session: the opener may have sent records behind OPEN; they are opened and kept until attach.
    stream.session = plan.session;
    conn.streams.set(id, stream);
  }
  let answered = false;
  handler({
    notice,
    stream,
    path,
    accept: () => {
      if (answered || !conn.alive()) return;
      answered = true;
      if (!plan) {
        conn.streams.set(id, stream);
        return conn.send(encodeFrame(FrameType.OPEN_OK, id));
      }
      if (plan.kind === 'stream') return conn.send(encodeJsonFrame(FrameType.OPEN_OK, id, { e2e: plan.answer }));
      const { session, answer } = plan.accept();
      stream.session = session;
      conn.streams.set(id, stream);
      conn.send(encodeJsonFrame(FrameType.OPEN_OK, id, { e2e: answer }));
    },
    refuse: (code, message) => {
      if (answered || !conn.alive()) return;
      answered = true;
      if (conn.streams.get(id) === stream) stream.abort();
      refuse(code, message);
    },
  });
}
