/**
 * The streams between this hub and one other hub of the cluster. A link is a RelayPeer like an agent connection:
 * the relay functions of streams.ts apply to it unchanged, so credit accounting runs on both hubs and per-stream
 * flow control holds end to end. Frames cross as NATS messages on `<ns>.f.<to>.<from>`, one frame per message, in
 * publish order; only OPEN differs: its payload carries the workspace and tag besides the notice (RemoteOpen).
 *
 * Stream ids on a link are chosen by the hub that opens the stream, odd by the hub whose id sorts first and even by
 * the other, so that the two never pick the same id.
 *
 * NATS delivers at most once: a hub that loses its NATS connection, or is cut off as a slow consumer, loses frames,
 * and may send others it had queued once it is back. Each message carries the sending link's epoch (random, new for
 * every HubLink) and sequence number in its subject, `<ns>.f.<to>.<from>.<epoch>.<seq>`. A gap in the sequence ends
 * every stream of the link (a stream with a hole in it must not go on: without end-to-end encryption nobody else
 * would notice), and so does a new epoch from the other hub (it started over, its streams are gone).
 *
 * The connection window (streams.ts) holds across the link: a hub acknowledges the link's DATA with WINDOW s=0 as
 * it writes it out to its agents (the link's ConnectionCredit, without a limit of its own), and the hub that sent it
 * gives its senders their credit back only then (`unacked`, oldest first). So what a hub holds for streams from
 * another hub is bounded by the windows of the senders on that hub, as for its own agents. The acknowledgements are
 * byte counts for the whole link, so they may give credit back to a sender other than the one whose bytes were
 * written out: the total, and so the memory bound, is exact; fairness between the senders of one link is not.
 */

import { randomInt } from 'node:crypto';
import {
  ConnectionCredit,
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_STREAM_ID,
  decodeFrame,
  encodeJsonFrame,
  encodeWindow,
  readWindowIncrement,
  type ErrorCode,
  type OpenNotice,
} from '@private-connect/protocol';
import type { Logger } from '../logger.js';
import type { RelayStats } from '../relay/relay-stats.js';
import {
  abortPair,
  peerGone,
  relayStreamFrame,
  type RelayPeer,
  type StreamEnd,
  type StreamTag,
} from '../relay/streams.js';

/** The payload of OPEN between hubs. */
export interface RemoteOpen {
  workspaceId: string;
  notice: OpenNotice;
  tag?: StreamTag;
}

export interface LinkIo {
  /** Publishes one frame to the other hub as message `seq` of `epoch`; false when it cannot go (NATS closed). */
  publish(frame: Buffer, epoch: number, seq: number): boolean;
  /** The largest message NATS takes. */
  maxPayload(): number;
}

export class HubLink implements RelayPeer {
  readonly streams = new Map<number, StreamEnd>();
  /** Workspace and tag of the streams this hub is opening over the link, until their OPEN went out. */
  private readonly opening = new Map<number, { workspaceId: string; tag?: StreamTag }>();
  private nextId: number;
  /** This link's epoch: the other hub tells our messages from those of an earlier HubLink by it. */
  readonly epoch = randomInt(1, 2 ** 47);
  private seqOut = 0;
  /** The other hub's epoch and its last sequence number received; undefined until its first message. */
  private peerEpoch: number | undefined;
  private seqIn = 0;
  /** Epochs of the other hub that ended here (a gap, or it started over): their late messages are dropped. */
  private readonly deadEpochs = new Set<number>();
  framesIn = 0;
  framesOut = 0;
  /**
   * The other hub's DATA relayed here, acknowledged with WINDOW s=0 as it is written out. No limit here: each of the
   * other hub's senders holds at most its own window (the other hub releases it only on these acknowledgements).
   */
  readonly credit = new ConnectionCredit((increment) => this.publish(encodeWindow(0, increment)), Number.POSITIVE_INFINITY);
  /** DATA published to the other hub and not yet acknowledged, oldest first; emptied by WINDOW s=0 and by forgetAll. */
  private readonly unacked: Array<{ bytes: number; written: () => void }> = [];
  /** Acknowledged bytes not yet matched to a whole entry of `unacked`. */
  private acked = 0;

  constructor(
    readonly hubId: string,
    selfId: string,
    private readonly io: LinkIo,
    private readonly stats: RelayStats,
    private readonly log: Logger,
  ) {
    this.nextId = selfId < hubId ? 1 : 2;
  }

  /** An id for a stream this hub opens over the link, and what its OPEN must carry. */
  allocate(workspaceId: string, tag?: StreamTag): number {
    const id = this.nextId;
    this.nextId = this.nextId + 2 > MAX_STREAM_ID ? (this.nextId % 2 === 1 ? 1 : 2) : this.nextId + 2;
    this.opening.set(id, tag ? { workspaceId, tag } : { workspaceId });
    return id;
  }

  /**
   * A frame for the other hub, from the relay (the stream id is already the link's). Relayed DATA counts as written
   * (`written`) once the other hub acknowledges it, or at once when it cannot be published.
   */
  send(raw: Buffer, written?: () => void): void {
    let frame = raw;
    if (raw[0] === FrameType.OPEN) {
      const id = raw.readUInt32BE(2);
      const meta = this.opening.get(id);
      this.opening.delete(id);
      if (!meta) return;
      const notice = JSON.parse(raw.subarray(FRAME_HEADER_SIZE).toString('utf8')) as OpenNotice;
      frame = encodeJsonFrame(FrameType.OPEN, id, { ...meta, notice } satisfies RemoteOpen);
    }
    if (frame.length > this.io.maxPayload()) {
      // Our own agents send records far below NATS's limit; another client's largest frames cannot cross.
      const id = raw.readUInt32BE(2);
      queueMicrotask(() => this.abort(id, 'FRAME_TOO_LARGE', `a frame of ${frame.length} bytes is larger than the hubs can pass to each other (${this.io.maxPayload()})`));
      return written?.();
    }
    if (!this.publish(frame)) return written?.();
    if (written) this.unacked.push({ bytes: frame.length - FRAME_HEADER_SIZE, written });
  }

  private publish(frame: Buffer): boolean {
    const sent = this.io.publish(frame, this.epoch, ++this.seqOut);
    if (sent) this.framesOut++;
    return sent;
  }

  /** The other hub wrote `increment` more bytes of our DATA out: the senders of the oldest ones get their credit. */
  private onAck(increment: number): void {
    this.acked += increment;
    while (this.unacked.length > 0 && this.unacked[0]!.bytes <= this.acked) {
      const entry = this.unacked.shift()!;
      this.acked -= entry.bytes;
      entry.written();
    }
  }

  /**
   * Whether message `seq` of the other hub's `epoch` may be applied: 'ok'; 'stale' for an epoch that ended here
   * (dropped); 'gap' when messages were lost (every stream of the link has just ended; the other hub must start a
   * new epoch, see remote-streams.ts). A new epoch ends the streams of the previous one and is then taken up.
   */
  sequence(epoch: number, seq: number): 'ok' | 'stale' | 'gap' {
    if (this.deadEpochs.has(epoch)) return 'stale';
    if (this.peerEpoch === undefined || epoch !== this.peerEpoch) {
      if (this.peerEpoch !== undefined) {
        // The other hub started over (lost NATS, or was told of a gap): none of the streams it had is alive.
        this.deadEpochs.add(this.peerEpoch);
        this.endAll('PEER_GONE', 'the other hub of this stream lost its connection to the cluster');
      }
      this.peerEpoch = epoch;
      this.seqIn = seq;
      return 'ok';
    }
    if (seq === this.seqIn + 1) {
      this.seqIn = seq;
      return 'ok';
    }
    this.deadEpochs.add(epoch);
    this.peerEpoch = undefined;
    this.endAll('PEER_GONE', 'frames between the hubs of this stream were lost');
    return 'gap';
  }

  /** Ends every stream of the link while the other hub is there: the local side is told, the other hub gets RESET for each. */
  private endAll(code: ErrorCode, message: string): void {
    const ends = this.forgetAll();
    for (const end of ends) this.io.publish(encodeJsonFrame(FrameType.RESET, end.id, { code, message }), this.epoch, ++this.seqOut);
    if (ends.length > 0) this.log.warn({ hub: this.hubId, streams: ends.length, reason: message }, 'streams to another hub ended');
  }

  /**
   * Forgets every stream of the link, telling each one's other side `code` (PEER_GONE unless told); an open not
   * answered yet goes to `reopen` first, which may take it elsewhere instead (true). Returns the ends forgotten.
   */
  private forgetAll(reopen?: (end: StreamEnd) => boolean, code?: ErrorCode, message?: string): StreamEnd[] {
    const ends = [...this.streams.values()];
    for (const end of ends) {
      if (reopen && end.state === 'opening' && end.role === 'target' && reopen(end)) continue;
      peerGone(end, code, message);
    }
    this.streams.clear();
    this.opening.clear();
    // What the other hub held of ours is gone with its streams: the senders get their credit back.
    const unacked = this.unacked.splice(0);
    this.acked = 0;
    for (const entry of unacked) entry.written();
    return ends;
  }

  /** A frame from the other hub. Its OPEN goes to `onOpen`; the rest to the relay functions of its stream. */
  receive(raw: Buffer, onOpen: (id: number, open: RemoteOpen) => void): void {
    this.framesIn++;
    const frame = decodeFrame(raw);
    if (frame.type === FrameType.OPEN) {
      let open: Partial<RemoteOpen> | undefined;
      try {
        open = JSON.parse(frame.payload.toString('utf8')) as Partial<RemoteOpen>;
      } catch {
        open = undefined;
      }
      if (typeof open?.workspaceId !== 'string' || typeof open.notice?.service !== 'string' || typeof open.notice.from?.agentId !== 'string') {
        return this.refuse(frame.streamId, 'BAD_MESSAGE', 'an OPEN between hubs without workspace and notice');
      }
      return onOpen(frame.streamId, open as RemoteOpen);
    }
    if (frame.type === FrameType.WINDOW && frame.streamId === 0) return this.onAck(readWindowIncrement(frame));
    const end = this.streams.get(frame.streamId);
    // A stream that already ended here: its DATA is written off (and acknowledged, so that its sender gets the credit).
    if (!end) return this.writeOff(frame.type, frame.payload.length);
    try {
      relayStreamFrame(end, frame, raw, this.stats);
    } catch (err) {
      this.log.warn({ err, hub: this.hubId, stream: frame.streamId }, 'a stream between hubs broke the protocol');
      this.writeOff(frame.type, frame.payload.length); // a refused frame was not counted
      if (this.streams.get(frame.streamId) === end) abortPair(end, 'PROTOCOL_ERROR', 'the stream broke the protocol between hubs');
    }
  }

  /** Acknowledges DATA that was dropped instead of relayed. */
  private writeOff(type: number, length: number): void {
    if (type !== FrameType.DATA) return;
    this.credit.receive(length);
    this.credit.release(length);
  }

  /** The other hub's DATA relayed here is acknowledged as it is written out (see `credit`). */
  windowFor(): ConnectionCredit {
    return this.credit;
  }

  /** Refuses the other hub's OPEN `id` (nothing here took it). */
  refuse(id: number, code: ErrorCode, message: string): void {
    this.stats.streamOpenFailures++;
    this.io.publish(encodeJsonFrame(FrameType.OPEN_ERROR, id, { code, message }), this.epoch, ++this.seqOut);
  }

  private abort(id: number, code: ErrorCode, message: string): void {
    const end = this.streams.get(id);
    if (end) abortPair(end, code, message);
  }

  /**
   * The other hub is gone: every stream through it ends, its other side told PEER_GONE, or `gone.code` when the
   * hub died; opens it had not answered go to `gone.reopen`, which may send them to the service's next route.
   */
  drop(gone?: { reopen(end: StreamEnd): boolean; code: ErrorCode; message: string }): number {
    return this.forgetAll(gone?.reopen, gone?.code, gone?.message).length;
  }
}
