/**
 * TunnelStream against a real local socket and a recording transport: how a stream ends (clean, reset, cut short)
 * as the local application sees it, and the record layer of an encrypted stream.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  E2E_TAG_BYTES,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  INITIAL_STREAM_WINDOW,
  decodeFrame,
  deriveStreamSession,
  type E2ESession,
  type Frame,
} from '@private-connect/protocol';
import { RECORD_BYTES, TunnelStream, type StreamTransport } from '../src/index.js';

/** Records what the stream sends to the hub. */
class Recorder implements StreamTransport {
  frames: Frame[] = [];
  ended = false;
  send(frame: Buffer): void {
    this.frames.push(decodeFrame(Buffer.from(frame)));
  }
  streamEnded(): void {
    this.ended = true;
  }
  types(): string[] {
    return this.frames.map((f) => Object.entries(FrameType).find(([, v]) => v === f.type)![0]);
  }
}

/** What the local application saw: the bytes, and whether the connection ended cleanly or was reset. */
interface LocalView {
  data: Buffer;
  ending: 'end' | 'reset' | 'open';
}

describe('TunnelStream', () => {
  let server: net.Server;
  let port: number;
  const accepted: net.Socket[] = [];
  /** Every socket of the file, both sides, destroyed at the end so the server can close. */
  const sockets: net.Socket[] = [];

  before(async () => {
    server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      accepted.push(socket);
      sockets.push(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });

  /** A stream attached to the server side of a fresh connection; `app` is the local application's side. */
  async function attached(
    session?: E2ESession,
  ): Promise<{ stream: TunnelStream; hub: Recorder; app: net.Socket; view: Promise<LocalView>; received: (n: number) => Promise<void> }> {
    const hub = new Recorder();
    const app = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(app);
    await new Promise((resolve) => app.once('connect', resolve));
    while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const local = accepted.shift()!;
    const stream = new TunnelStream(1, hub, 'svc');
    stream.session = session;
    stream.attach(local);
    const chunks: Buffer[] = [];
    // The application has read n bytes: frames arrive one by one in real life, not all in one tick.
    const received = (n: number) => waitUntil(() => Buffer.concat(chunks).length >= n);
    const view = new Promise<LocalView>((resolve) => {
      app.on('data', (c: Buffer) => chunks.push(c));
      app.on('end', () => resolve({ data: Buffer.concat(chunks), ending: 'end' }));
      app.on('error', (err: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(chunks), ending: err.code === 'ECONNRESET' ? 'reset' : 'open' }));
    });
    return { stream, hub, app, view, received };
  }

  test('the last bytes waiting for credit still go out, then CLOSE, when the local side ends and closes', async () => {
    const { stream, hub, app } = await attached();
    stream.onClose(); // the peer is done sending
    const payload = Buffer.alloc(INITIAL_STREAM_WINDOW + 1000, 1);
    app.end(payload); // more than the window: the tail waits for credit while the local socket ends and closes
    await waitUntil(() => hub.frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0) === INITIAL_STREAM_WINDOW);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(!hub.types().includes('RESET'), hub.types().join(','));
    stream.onWindow(INITIAL_STREAM_WINDOW);
    await waitUntil(() => hub.types().includes('CLOSE'));
    const data = hub.frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    assert.equal(data, payload.length);
    assert.equal(hub.types().at(-1), 'CLOSE');
    assert.ok(!hub.types().includes('RESET'));
  });

  test('reads of one event-loop turn leave as one record, never larger than RECORD_BYTES; a lone small read is sent at once', async () => {
    const { hub, app } = await attached();
    const dataFrames = () => hub.frames.filter((f) => f.type === FrameType.DATA);
    app.write('ping');
    await waitUntil(() => dataFrames().length === 1);
    assert.equal(dataFrames()[0]!.payload.toString(), 'ping');

    // 3 × RECORD_BYTES in one write: the local socket delivers it as many reads of at most 64 KiB.
    const bulk = Buffer.alloc(3 * RECORD_BYTES);
    for (let i = 0; i < bulk.length; i++) bulk[i] = i % 251;
    app.write(bulk);
    await waitUntil(() => dataFrames().reduce((n, f) => n + f.payload.length, 0) === 4 + bulk.length);
    const records = dataFrames().slice(1);
    assert.deepEqual(Buffer.concat(records.map((f) => f.payload)), bulk);
    assert.ok(records.every((f) => f.payload.length <= RECORD_BYTES));
    // Gathered: fewer records than the 64 KiB reads the bytes arrived in.
    assert.ok(records.length < bulk.length / 65536, `${records.length} records for ${bulk.length / 65536} reads`);
  });

  test('a reset from the peer reaches the local application as a TCP reset, a closed peer as a clean end', async () => {
    const cut = await attached();
    cut.stream.onData(Buffer.from('partial'));
    await cut.received(7);
    cut.stream.onReset({ code: 'PEER_GONE', message: 'the other agent disconnected' });
    assert.deepEqual(await cut.view, { data: Buffer.from('partial'), ending: 'reset' });

    const closed = await attached();
    closed.stream.onReset({ code: 'STREAM_CLOSED', message: 'the local connection closed' });
    assert.equal((await closed.view).ending, 'end');
  });

  describe('encrypted', () => {
    /** The two ends of stream 1 of a session (its roots as a Noise handshake's split would give them). */
    function sessions(): { ours: E2ESession; peer: E2ESession } {
      const [a, b, sid] = [randomBytes(32), randomBytes(32), randomBytes(16)];
      return { ours: deriveStreamSession(a, b, sid, 1, 'svc'), peer: deriveStreamSession(b, a, sid, 1, 'svc') };
    }
    const seal = (session: E2ESession, text: string) => {
      const plain = Buffer.from(text);
      const out = Buffer.alloc(plain.length + E2E_TAG_BYTES);
      session.sealInto([plain], out, 0);
      return out;
    };

    test('sends sealed records with the flag, counts credit on the wire, and an end marker before CLOSE', async () => {
      const { ours, peer } = sessions();
      const { stream, hub, app } = await attached(ours);
      app.end('hello');
      await waitUntil(() => hub.types().includes('CLOSE'));
      const [data, marker, close] = hub.frames;
      assert.equal(data!.flags & FrameFlag.ENCRYPTED, FrameFlag.ENCRYPTED);
      assert.equal(data!.payload.length, 5 + E2E_TAG_BYTES);
      assert.equal(peer.open(data!.payload).toString(), 'hello');
      assert.equal(peer.open(marker!.payload).length, 0, 'the end marker is an empty record');
      assert.equal(close!.type, FrameType.CLOSE);
      assert.equal(stream.bytesOut, 5);
    });

    test('opens the peer\'s records for the local application; the end marker then CLOSE end it cleanly', async () => {
      const { ours, peer } = sessions();
      const { stream, hub, view } = await attached(ours);
      stream.onData(seal(peer, 'reply'), FrameFlag.ENCRYPTED);
      stream.onData(seal(peer, ''), FrameFlag.ENCRYPTED);
      stream.onClose();
      assert.deepEqual(await view, { data: Buffer.from('reply'), ending: 'end' });
      assert.ok(!hub.types().includes('RESET'));
    });

    test('CLOSE without the end marker is a cut stream: RESET E2E_TRUNCATED, and a TCP reset locally', async () => {
      const { ours, peer } = sessions();
      const { stream, hub, view, received } = await attached(ours);
      stream.onData(seal(peer, 'first half'), FrameFlag.ENCRYPTED);
      await received(10);
      stream.onClose();
      assert.equal((await view).ending, 'reset');
      assert.match(resetBody(hub), /E2E_TRUNCATED/);
    });

    test('a plaintext DATA frame on an encrypted stream, or a record that does not open, resets it', async () => {
      const plain = await attached(sessions().ours);
      plain.stream.onData(Buffer.from('not sealed'));
      assert.equal((await plain.view).ending, 'reset');
      assert.match(resetBody(plain.hub), /E2E_REQUIRED/);

      const { ours, peer } = sessions();
      const forged = await attached(ours);
      const record = seal(peer, 'tampered');
      record[0]! ^= 1;
      forged.stream.onData(record, FrameFlag.ENCRYPTED);
      assert.equal((await forged.view).ending, 'reset');
      assert.match(resetBody(forged.hub), /E2E_DECRYPT_FAILED/);
    });

    test('credit includes the tag: records never exceed what the peer granted', async () => {
      const { ours } = sessions();
      const { hub, app } = await attached(ours);
      app.write(Buffer.alloc(INITIAL_STREAM_WINDOW, 2));
      await waitUntil(() => hub.frames.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const wire = hub.frames.reduce((n, f) => n + f.payload.length, 0);
      assert.ok(wire <= INITIAL_STREAM_WINDOW, `${wire} bytes on the wire with ${INITIAL_STREAM_WINDOW} of credit`);
      assert.ok(hub.frames.every((f) => f.payload.length + FRAME_HEADER_SIZE > E2E_TAG_BYTES));
      app.destroy();
    });
  });

  describe('first bytes with the open', () => {
    /** The two ends of stream `n` of one session. */
    function pair(n: number): { ours: E2ESession; peer: E2ESession; roots: [Buffer, Buffer, Buffer] } {
      const roots: [Buffer, Buffer, Buffer] = [randomBytes(32), randomBytes(32), randomBytes(16)];
      return { ours: deriveStreamSession(roots[0], roots[1], roots[2], n, 'svc'), peer: deriveStreamSession(roots[1], roots[0], roots[2], n, 'svc'), roots };
    }
    const opened = (session: E2ESession, hub: Recorder, from = 0) =>
      Buffer.concat(hub.frames.slice(from).filter((f) => f.type === FrameType.DATA).map((f) => session.open(f.payload)));

    test('a refused open that is retried sends what went early again, first, under the new keys, then the rest', async () => {
      const first = pair(1);
      const { stream, hub, app } = await attached(first.ours);
      stream.sendBeforeConfirmed();
      app.write('early bytes ');
      await waitUntil(() => hub.types().includes('DATA'));
      assert.equal(opened(first.peer, hub).toString(), 'early bytes ');
      // E2E_SESSION_UNKNOWN: the open moves to stream 3 and waits for its handshake; the client keeps writing.
      stream.retryAs(3);
      const sentBefore = hub.frames.length;
      app.write('and more');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(hub.frames.length, sentBefore, 'nothing is sent while the new open waits for its answer');
      const second = pair(0);
      stream.release(second.ours);
      await waitUntil(() => hub.frames.length > sentBefore);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const again = hub.frames.slice(sentBefore);
      assert.ok(again.every((f) => f.streamId === 3), 'the retry goes out on the new stream id');
      assert.equal(opened(second.peer, hub, sentBefore).toString(), 'early bytes and more');
      assert.equal(stream.bytesOut, 'early bytes and more'.length, 'bytes sent twice are counted once');
      app.destroy();
    });

    test('a confirmed open keeps nothing to send again; a refused one resets its client without sending anything', async () => {
      const confirmed = pair(1);
      const kept = await attached(confirmed.ours);
      kept.stream.sendBeforeConfirmed();
      kept.app.write('x');
      await waitUntil(() => kept.hub.types().includes('DATA'));
      kept.stream.confirmOpen();
      kept.stream.retryAs(5); // nothing was kept: nothing goes again
      kept.stream.release(pair(0).ours);
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(kept.hub.frames.filter((f) => f.streamId === 5).length, 0);
      kept.app.destroy();

      const refused = await attached(pair(1).ours);
      refused.stream.sendBeforeConfirmed();
      refused.stream.failOpen({ code: 'SERVICE_OFFLINE', message: 'the agent exposing this service is not connected' });
      assert.deepEqual(await refused.view, { data: Buffer.alloc(0), ending: 'reset' });
      assert.deepEqual(refused.hub.types(), [], 'a refused open sends nothing (the hub already dropped it)');
    });
  });
});

function resetBody(hub: Recorder): string {
  const reset = hub.frames.find((f) => f.type === FrameType.RESET);
  assert.ok(reset, `no RESET among ${hub.types().join(',')}`);
  return reset.payload.toString();
}

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
