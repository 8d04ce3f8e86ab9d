/**
 * Relayed streams: two ends, each on a peer (an agent connection, or the hub's own LocalPeer for public links
 * and hub ports), linked to each other. The functions here apply one frame sent by the peer of `end` and forward
 * it to the other end: credit accounting, open/close/reset bookkeeping. The hub reads frame headers only; DATA
 * payloads are forwarded as the same buffer with the stream id rewritten.
 *
 * Two credits bound what the hub holds. A stream's credit (end to end, granted by the receiving agent) bounds one
 * stream direction. The connection window (ConnectionCredit, hop by hop) bounds all the DATA one sender has in the
 * hub: a DATA frame counts against its sender's window until the receiver's socket took it (the `written` callback
 * of RelayPeer.send), and only then is the credit granted back. So a receiver that stops reading holds back the
 * senders that feed it instead of filling the hub, one window per sender at most, whatever the number of streams.
 *
 * Head of line: an agent's window is one for all its streams, as in HTTP/2, so a frozen receiver that holds it
 * also holds back that agent's streams to other agents. Splitting it per receiver would need the agent to know
 * which receiver each stream goes to (a wire change for every stream) and would multiply the memory bound by the
 * number of receivers; instead the hold is bounded in time: a receiver that takes nothing for
 * WRITE_STALL_TIMEOUT_MS is closed (agent-connection.ts), which writes its frames off and gives the credit back.
 * The hub's own streams (LocalPeer) do have a window per receiver: they are in-process, so it costs no wire
 * change, and one frozen agent must not stall every public link and hub port of the hub.
 */

import {
  ConnectionCredit,
  FrameType,
  INITIAL_STREAM_WINDOW,
  MAX_SMALL_JSON,
  MAX_WINDOW,
  OPEN_TIMEOUT_MS,
  ProtocolError,
  encodeJsonFrame,
  frameTypeName,
  readWindowIncrement,
  setStreamId,
  type ErrorCode,
  type Frame,
  type OpenNotice,
} from '@private-connect/protocol';
import type { RelayStats } from './relay-stats.js';
import type { ServiceCounter } from './service-traffic.js';

/** Anything that holds ends of relayed streams and takes frames for them. */
export interface RelayPeer {
  /** This peer's ends by its stream ids. */
  readonly streams: Map<number, StreamEnd>;
  /**
   * Delivers an encoded frame to the peer. `written`, given with relayed DATA, must be called exactly once when the
   * peer has taken the bytes (written to its socket), or at once when they are dropped or the peer is in-process.
   */
  send(frame: Buffer, written?: () => void): void;
  /** The connection window that this peer's DATA towards `receiver` counts against; none: unbounded. */
  windowFor?(receiver: RelayPeer): ConnectionCredit | undefined;
}

/** Why a stream exists beyond "an agent reached a service": what revoking a share or link must cut. */
export interface StreamTag {
  shareId?: string;
  linkId?: string;
  hubPort?: number;
}

/** One side of a relayed stream: the stream id on one peer, linked to the other side. */
export interface StreamEnd {
  conn: RelayPeer;
  id: number;
  peer: StreamEnd;
  /** 'opener' sent OPEN; 'target' received it from the hub. */
  role: 'opener' | 'target';
  state: 'opening' | 'open';
  /** DATA bytes this side's peer may still send, granted by the other side's WINDOW frames. */
  credit: number;
  /** This side's peer sent CLOSE (no more DATA from it). */
  closedByAgent: boolean;
  openTimer?: NodeJS.Timeout;
  /** performance.now() when the opener's OPEN was sent on to the target (stream open latency). */
  openedAt?: number;
  tag?: StreamTag;
  /** The two agents agreed on end-to-end encryption (OPEN_OK carried a handshake answer); set on both ends. */
  encrypted?: boolean;
  /** The target service's counters, shared by both ends; cleared (and the stream uncounted) when the pair is forgotten. */
  traffic?: ServiceCounter;
  /** The connection window this side's DATA counts against (its peer's, towards the other side's peer). */
  window?: ConnectionCredit | undefined;
  /** The opener sent DATA or CLOSE before OPEN_OK (early data): the open cannot be sent to another target any more. */
  early?: boolean;
  /**
   * Copies of the opener's early frames, kept until OPEN_OK on an open sent to another hub (cluster/remote-streams):
   * if that hub goes away before it answers, the open goes to the service's next route with them (cluster/reroute).
   * At most the stream's initial credit.
   */
  earlyCopies?: Buffer[];
}

/** Creates the two ends of a stream from `opener` (its id `openerId`) to `target` (its id `targetId`), sends the
 *  OPEN notice to the target and starts the open timer. The answer arrives through `relayOpenAnswer`.
 *  `traffic`: the counters of the target's service (ServiceTraffic), which count this stream and its bytes. */
export function openPair(
  opener: RelayPeer,
  openerId: number,
  target: RelayPeer,
  targetId: number,
  notice: OpenNotice,
  stats: RelayStats,
  tag?: StreamTag,
  traffic?: ServiceCounter,
): StreamEnd {
  const first = { conn: opener, id: openerId, role: 'opener', state: 'opening', credit: INITIAL_STREAM_WINDOW, closedByAgent: false, tag, traffic, openedAt: performance.now() } as StreamEnd;
  const second = { conn: target, id: targetId, role: 'target', state: 'opening', credit: INITIAL_STREAM_WINDOW, closedByAgent: false, tag, traffic } as StreamEnd;
  if (traffic) traffic.streams++;
  first.window = opener.windowFor?.(target);
  second.window = target.windowFor?.(opener);
  first.peer = second;
  second.peer = first;
  opener.streams.set(openerId, first);
  target.streams.set(targetId, second);
  first.openTimer = setTimeout(() => {
    if (first.state !== 'opening') return;
    refuseOpen(first, 'OPEN_TIMEOUT', `the agent exposing "${notice.service}" did not answer within ${OPEN_TIMEOUT_MS} ms`, stats);
    target.send(encodeJsonFrame(FrameType.RESET, targetId, { code: 'OPEN_TIMEOUT', message: 'stream open timed out' }));
    dropPair(first);
  }, OPEN_TIMEOUT_MS);
  target.send(encodeJsonFrame(FrameType.OPEN, targetId, notice));
  return first;
}

/** Answers an opener's OPEN with OPEN_ERROR (the pair, if any, is dropped by the caller). */
export function refuseOpen(end: { conn: RelayPeer; id: number }, code: ErrorCode, message: string, stats: RelayStats): void {
  stats.streamOpenFailures++;
  end.conn.send(encodeJsonFrame(FrameType.OPEN_ERROR, end.id, { code, message }));
}

/**
 * Relays one DATA frame. The opener may send DATA before OPEN_OK (early data, within the stream's credit): the
 * target got the OPEN first on the same ordered path, and the bytes are dropped with the pair if the open fails.
 * `charged`: the frame was held while its open was looked up (early-frames.ts) and already counted against its
 * sender's window; the callback gives it back once written.
 */
export function relayData(end: StreamEnd, frame: Frame, raw: Buffer, stats: RelayStats, charged?: () => void): void {
  if (end.state !== 'open' && end.role !== 'opener') throw new ProtocolError('PROTOCOL_ERROR', `DATA on stream ${end.id} before OPEN_OK`);
  if (end.closedByAgent) throw new ProtocolError('PROTOCOL_ERROR', `DATA on stream ${end.id} after CLOSE`);
  const length = frame.payload.length;
  if (length > end.credit) {
    throw new ProtocolError('FLOW_CONTROL', `stream ${end.id} sent ${length} bytes with ${end.credit} bytes of credit`);
  }
  if (end.state === 'opening') {
    end.early = true;
    end.earlyCopies?.push(Buffer.from(raw));
  }
  const window = charged ? undefined : end.window;
  window?.receive(length);
  end.credit -= length;
  stats.bytesRelayed += length;
  if (end.role === 'opener') stats.bytesToService += length;
  else stats.bytesFromService += length;
  stats.framesRelayed++;
  const traffic = end.traffic;
  if (traffic) {
    if (end.role === 'opener') traffic.bytesIn += length;
    else traffic.bytesOut += length;
  }
  // Without a window the callback still tells the receiver (its write stall check) that its socket holds the bytes.
  forward(end, raw, charged ?? (window ? writtenOnce(window, length) : noop));
}

const noop = (): void => undefined;

/** The `written` callback of one relayed DATA frame: gives its bytes back to the sender's window, once. */
export function writtenOnce(window: ConnectionCredit, length: number): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    window.release(length);
  };
}

export function relayWindow(end: StreamEnd, frame: Frame, raw: Buffer): void {
  const increment = readWindowIncrement(frame);
  const peer = end.peer;
  if (peer.credit + increment > MAX_WINDOW) {
    throw new ProtocolError('FLOW_CONTROL', `WINDOW on stream ${end.id} grows the window beyond ${MAX_WINDOW}`);
  }
  peer.credit += increment;
  forward(end, raw);
}

export function relayOpenAnswer(end: StreamEnd, frame: Frame, raw: Buffer, stats: RelayStats): void {
  if (end.role !== 'target' || end.state !== 'opening') {
    throw new ProtocolError('PROTOCOL_ERROR', `${frameTypeName(frame.type)} on stream ${end.id}, which is not waiting for an answer`);
  }
  const opener = end.peer;
  clearTimeout(opener.openTimer);
  if (frame.type === FrameType.OPEN_OK) {
    end.state = 'open';
    opener.state = 'open';
    opener.earlyCopies = undefined;
    stats.streamsOpened++;
    if (frame.payload.length > 0) {
      // The payload is the handshake answer: opaque to the hub, it only tells the stream is encrypted.
      end.encrypted = opener.encrypted = true;
      stats.streamsEncrypted++;
      if (end.traffic) end.traffic.encryptedStreams++;
    }
    if (opener.openedAt !== undefined) stats.openLatency.observe((performance.now() - opener.openedAt) / 1000);
    forward(end, raw);
  } else {
    if (frame.payload.length > MAX_SMALL_JSON) throw new ProtocolError('BAD_MESSAGE', 'OPEN_ERROR payload is too large');
    stats.streamOpenFailures++;
    forward(end, raw);
    dropPair(end);
  }
}

/** Relays CLOSE; the opener may send it before OPEN_OK, behind its early data (see relayData). */
export function relayClose(end: StreamEnd, raw: Buffer): void {
  if (end.state !== 'open' && end.role !== 'opener') throw new ProtocolError('PROTOCOL_ERROR', `CLOSE on stream ${end.id} before OPEN_OK`);
  if (end.closedByAgent) return;
  if (end.state === 'opening') {
    end.early = true;
    end.earlyCopies?.push(Buffer.from(raw));
  }
  end.closedByAgent = true;
  forward(end, raw);
  if (end.peer.closedByAgent) dropPair(end);
}

export function relayReset(end: StreamEnd, frame: Frame, raw: Buffer): void {
  if (frame.payload.length > MAX_SMALL_JSON) throw new ProtocolError('BAD_MESSAGE', 'RESET payload is too large');
  clearTimeout(end.openTimer ?? end.peer.openTimer);
  if (end.peer.state === 'opening' && end.peer.role === 'opener') {
    // The target refused after all: the opener waits for OPEN_ERROR, not RESET.
    end.peer.conn.send(encodeJsonFrame(FrameType.OPEN_ERROR, end.peer.id, { code: 'TARGET_UNREACHABLE', message: 'the exposing agent reset the stream' }));
  } else {
    forward(end, raw);
  }
  dropPair(end);
}

/** Ends a stream from the hub's side: both peers get RESET (or OPEN_ERROR, for an opener still waiting). */
export function abortPair(end: StreamEnd, code: ErrorCode, message: string): void {
  clearTimeout(end.openTimer ?? end.peer.openTimer);
  for (const side of [end, end.peer]) {
    const type = side.state === 'opening' && side.role === 'opener' ? FrameType.OPEN_ERROR : FrameType.RESET;
    side.conn.send(encodeJsonFrame(type, side.id, { code, message }));
  }
  dropPair(end);
}

/** The peer of `end` is gone: tell the other side (PEER_GONE, or why it went), forget the pair. */
export function peerGone(end: StreamEnd, code: ErrorCode = 'PEER_GONE', message = 'the other agent of this stream disconnected'): void {
  clearTimeout(end.openTimer ?? end.peer.openTimer);
  const peer = end.peer;
  uncount(end);
  peer.conn.streams.delete(peer.id);
  const type = peer.state === 'opening' && peer.role === 'opener' ? FrameType.OPEN_ERROR : FrameType.RESET;
  peer.conn.send(encodeJsonFrame(type, peer.id, { code, message }));
}

/**
 * Applies one stream frame that `end`'s peer sent (an agent connection, a hub link, or the hub's own opener): the
 * relay function of its type. The one dispatch of stream frames. Throws ProtocolError for a type that has no place
 * on a stream.
 */
export function relayStreamFrame(end: StreamEnd, frame: Frame, raw: Buffer, stats: RelayStats): void {
  switch (frame.type) {
    case FrameType.DATA:
      return relayData(end, frame, raw, stats);
    case FrameType.WINDOW:
      return relayWindow(end, frame, raw);
    case FrameType.OPEN_OK:
    case FrameType.OPEN_ERROR:
      return relayOpenAnswer(end, frame, raw, stats);
    case FrameType.CLOSE:
      return relayClose(end, raw);
    case FrameType.RESET:
      return relayReset(end, frame, raw);
    default:
      throw new ProtocolError('PROTOCOL_ERROR', `${frameTypeName(frame.type)} has no place on stream ${end.id}`);
  }
}

/** Rewrites the frame's stream id to the peer's and sends the same buffer there. */
export function forward(end: StreamEnd, raw: Buffer, written?: () => void): void {
  setStreamId(raw, end.peer.id);
  end.peer.conn.send(raw, written);
}

/**
 * Streams open among `peers`, each counted once: by its opener's end. Both ends of a pair live on this hub's peers
 * (agent connections, the hub's own LocalPeer, links to other hubs), so halving a count of ends over the agent
 * connections alone would count a public link's or hub port's stream as half of one.
 */
export function openPairs(peers: Iterable<RelayPeer>): number {
  let n = 0;
  for (const peer of peers) for (const end of peer.streams.values()) if (end.role === 'opener') n++;
  return n;
}

export function dropPair(end: StreamEnd): void {
  uncount(end);
  end.conn.streams.delete(end.id);
  end.peer.conn.streams.delete(end.peer.id);
}

/** The pair is being forgotten: it no longer counts as an open stream of its service (once, whoever calls). */
function uncount(end: StreamEnd): void {
  if (!end.traffic) return;
  end.traffic.streams--;
  if (end.encrypted) end.traffic.encryptedStreams--;
  end.traffic = undefined;
  end.peer.traffic = undefined;
}
