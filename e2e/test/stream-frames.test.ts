/**
 * How the hub applies the stream frames an agent sends (relay/agent-connection.ts hands each one to relayStreamFrame
 * in relay/streams.ts): a frame that arrives after its stream ended is dropped without closing the connection, and a
 * late DATA frame's bytes come back to its sender as connection credit; WINDOW on stream 0 is the hub's alone to send.
 * Two raw agents on an in-process hub: a sink that exposes a service and accepts every OPEN, and an opener.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CONNECTION_WINDOW_UPDATE_THRESHOLD,
  FrameType,
  encodeFrame,
  encodeJsonFrame,
  encodeWindow,
  readWindowIncrement,
} from '@private-connect/protocol';
import { connectRawAgent, enrolViaApi, removeDirs, startInProcessHub, type InProcessHub, type RawAgent } from '../src/index.js';

describe('stream frames an agent sends', () => {
  let inproc: InProcessHub;

  before(async () => {
    inproc = await startInProcessHub();
  });

  after(async () => {
    await inproc?.stop();
    await removeDirs(inproc?.dataDir);
  });

  /** A sink exposing `name` that answers every OPEN with OPEN_OK, and an opener; both past their handshake. */
  async function sinkAndOpener(name: string): Promise<{ sink: RawAgent; opener: RawAgent }> {
    const [sinkAgent, openerAgent] = await Promise.all([enrolViaApi(inproc.url, inproc.apiKey, `${name}-sink`), enrolViaApi(inproc.url, inproc.apiKey, `${name}-opener`)]);
    const sink = await connectRawAgent(inproc.url, sinkAgent.token);
    const opener = await connectRawAgent(inproc.url, openerAgent.token);
    await Promise.all([sink.handshake(), opener.handshake()]);
    const exposed = await sink.request('expose', { name, target: '127.0.0.1:9' });
    assert.equal(exposed.ok, true, JSON.stringify(exposed));
    sink.ws.on('message', (data: Buffer) => {
      if (data[0] === FrameType.OPEN) sink.send(encodeFrame(FrameType.OPEN_OK, data.readUInt32BE(2)));
    });
    return { sink, opener };
  }

  test('drops DATA, CLOSE and RESET that arrive after their stream ended, and gives the late DATA back as connection credit', async () => {
    const { sink, opener } = await sinkAndOpener('late-frames');
    try {
      assert.equal((await opener.open(1, 'late-frames')).type, FrameType.OPEN_OK);
      const sinkId = (await sink.waitFrame((f) => f.type === FrameType.OPEN, 'OPEN at the sink')).streamId;
      opener.send(encodeJsonFrame(FrameType.RESET, 1, { code: 'STREAM_CLOSED', message: 'done' }));
      await sink.waitFrame((f) => f.type === FrameType.RESET && f.streamId === sinkId, 'RESET at the sink');

      // Late: the stream ended on the hub. The DATA counts against the opener's connection window until dropped,
      // and dropping it gives the bytes back (one threshold's worth: the hub grants them at once).
      opener.send(encodeFrame(FrameType.DATA, 1, Buffer.alloc(CONNECTION_WINDOW_UPDATE_THRESHOLD, 0x6c)));
      opener.send(encodeFrame(FrameType.CLOSE, 1));
      opener.send(encodeJsonFrame(FrameType.RESET, 1, { code: 'STREAM_CLOSED', message: 'again' }));
      const grant = await opener.waitFrame((f) => f.type === FrameType.WINDOW && f.streamId === 0, 'connection credit for the late DATA');
      assert.equal(readWindowIncrement(grant), CONNECTION_WINDOW_UPDATE_THRESHOLD);

      // Both connections are still up, and the sink got nothing of the late frames: its PONG comes after anything
      // the hub forwarded before it.
      assert.equal((await opener.request('list', {})).ok, true);
      sink.send(encodeFrame(FrameType.PING, 0, Buffer.from('12345678')));
      await sink.waitFrame((f) => f.type === FrameType.PONG, 'PONG at the sink');
      assert.deepEqual(
        sink.frames.filter((f) => f.streamId === sinkId).map((f) => f.type),
        [FrameType.OPEN, FrameType.RESET],
      );
    } finally {
      opener.ws.terminate();
      sink.ws.terminate();
    }
  });

  test('closes with PROTOCOL_ERROR an agent that sends WINDOW on stream 0 (connection credit is granted by the hub)', async () => {
    const { sink, opener } = await sinkAndOpener('window-zero');
    try {
      assert.equal((await opener.open(1, 'window-zero')).type, FrameType.OPEN_OK);
      sink.send(encodeWindow(0, 1024));
      const closed = await Promise.race([sink.closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000).unref())]);
      assert.ok(closed, 'the hub kept a connection that sent WINDOW on stream 0');
      assert.equal(closed.error?.code, 'PROTOCOL_ERROR', `closed with ${closed.code} ${closed.reason}`);
      assert.match(closed.error.message, /WINDOW on stream 0/);
      // The opener's stream to the sink ends with it; the opener's connection stays.
      const reset = await opener.waitFrame((f) => f.type === FrameType.RESET && f.streamId === 1, 'RESET of the stream to the closed sink');
      assert.equal(reset.streamId, 1);
      assert.equal((await opener.request('list', {})).ok, true);
    } finally {
      opener.ws.terminate();
      sink.ws.terminate();
    }
  });
});
