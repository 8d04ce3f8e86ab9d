/**
 * Early frames of an open that has no target yet: the DATA and CLOSE an opener sends right behind its OPEN (early
 * data, streams.ts relayData) while the hub still looks the target up (a share's checks, a service waiting for its
 * next route after a hub died). They are held here in order, within the stream's initial credit and counted against
 * the sender's connection window, then relayed on the stream once it opens, or dropped with a refusal.
 */

import { FRAME_HEADER_SIZE, FrameType, INITIAL_STREAM_WINDOW, ProtocolError, type ConnectionCredit, type Frame } from '@private-connect/protocol';
import type { RelayStats } from './relay-stats.js';
import { relayClose, relayData, writtenOnce, type StreamEnd } from './streams.js';

interface Held {
  raw: Buffer;
  /** Gives the frame's bytes back to its sender's window (DATA only). */
  written?: () => void;
}

export class EarlyFrames {
  private readonly held: Held[] = [];
  private bytes = 0;
  private closed = false;
  /** The opener reset the stream before it opened: it is not opened at all. */
  cancelled = false;

  /**
   * Holds one DATA or CLOSE frame of stream `id`. `window`: count its DATA against that connection window now (an
   * agent's frame); without it the bytes were counted already and `written` gives them back.
   */
  hold(id: number, raw: Buffer, { window, written }: { window?: ConnectionCredit; written?: () => void } = {}): void {
    const frame = headerOf(raw);
    const name = frame.type === FrameType.CLOSE ? 'CLOSE' : 'DATA';
    if (this.closed) throw new ProtocolError('PROTOCOL_ERROR', `${name} on stream ${id} after CLOSE`);
    if (frame.type === FrameType.CLOSE) {
      this.closed = true;
      this.held.push({ raw });
      return;
    }
    const length = frame.payload.length;
    if (this.bytes + length > INITIAL_STREAM_WINDOW) {
      throw new ProtocolError('FLOW_CONTROL', `stream ${id} sent ${this.bytes + length} bytes before OPEN_OK with ${INITIAL_STREAM_WINDOW} bytes of credit`);
    }
    window?.receive(length);
    this.bytes += length;
    this.held.push({ raw, written: window ? writtenOnce(window, length) : written });
  }

  /** Relays the held frames on `end`, the opener's end of the stream that just opened, in the order they came. */
  replay(end: StreamEnd, stats: RelayStats): void {
    const held = this.held.splice(0);
    for (const { raw, written } of held) {
      const frame = headerOf(raw);
      if (frame.type === FrameType.DATA) relayData(end, frame, raw, stats, written);
      else relayClose(end, raw);
    }
  }

  /** The open failed: the held bytes go back to their sender's window and are dropped. */
  drop(): void {
    for (const { written } of this.held.splice(0)) written?.();
  }
}

/**
 * The frame of a held buffer, read from its header only: it was decoded when it arrived, and the relay may have
 * rewritten its stream id since (to 0, on the placeholder of a waiting open), which decodeFrame would refuse.
 */
function headerOf(raw: Buffer): Frame {
  return { type: raw[0] as FrameType, flags: raw[1]!, streamId: raw.readUInt32BE(2), payload: raw.subarray(FRAME_HEADER_SIZE) };
}
