/**
 * Early data (DATA and CLOSE sent before OPEN_OK) on an open caught by another hub's death (cluster/reroute.ts): held
 * in order while the open waits for its service's next route and relayed there, given back to the sender's window
 * when the open is refused, and never sent to another route once some of it went to the hub that died.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectError, ConnectionCredit, FrameType, decodeFrame, encodeFrame, encodeJsonFrame, frameTypeName, type OpenNotice } from '@private-connect/protocol';
import { awaitNextRoute, reopenElsewhere, type RerouteDeps } from '../src/cluster/reroute.js';
import { createRelayStats } from '../src/relay/relay-stats.js';
import type { StreamTarget } from '../src/relay/router.js';
import { openPair, relayStreamFrame, type RelayPeer, type StreamEnd } from '../src/relay/streams.js';
import { eventually } from './support/test-hub.js';

/** An in-process peer that records what it is sent and takes relayed bytes at once. */
class RecordingPeer implements RelayPeer {
  readonly streams = new Map<number, StreamEnd>();
  readonly frames: Buffer[] = [];
  readonly credit = new ConnectionCredit(() => undefined);
  send(frame: Buffer, written?: () => void): void {
    this.frames.push(Buffer.from(frame));
    written?.();
  }
  windowFor(): ConnectionCredit {
    return this.credit;
  }
  types(): string[] {
    return this.frames.map((f) => frameTypeName(decodeFrame(f).type));
  }
}

const notice: OpenNotice = { service: 'db', from: { agentId: 'opener', label: 'opener' } };

/** The opener's peer sends `frame` on its end of stream `id`, as an agent connection does. */
function fromOpener(opener: RelayPeer, id: number, frame: Buffer, deps: RerouteDeps): void {
  relayStreamFrame(opener.streams.get(id)!, decodeFrame(frame), frame, deps.stats);
}

/** A route whose acceptStream opens the stream to `target` (or refuses with `refusal`). */
function routeTo(target: RecordingPeer, refusal?: ConnectError): StreamTarget {
  return {
    state: 'open',
    agentId: 'exposer',
    label: 'exposer',
    acceptsPlaintext: false,
    acceptStream(opener, openerId, n, tag) {
      if (refusal) return refusal;
      openPair(opener, openerId, target, 2, n, createRelayStats(), tag);
      return undefined;
    },
  };
}

describe('early data of an open waiting for the next route', () => {
  test('is held in order while the open waits, then relayed to the next route behind the OPEN', async () => {
    const opener = new RecordingPeer();
    const target = new RecordingPeer();
    let route: StreamTarget | undefined;
    const deps: RerouteDeps = { stats: createRelayStats(), find: () => route };
    awaitNextRoute(deps, opener, 1, { workspaceId: 'w', notice }, 'gone-hub', performance.now() + 60_000);
    fromOpener(opener, 1, encodeFrame(FrameType.DATA, 1, Buffer.from('first ')), deps);
    fromOpener(opener, 1, encodeFrame(FrameType.DATA, 1, Buffer.from('bytes')), deps);
    fromOpener(opener, 1, encodeFrame(FrameType.CLOSE, 1), deps);
    // Held: counted against the opener's window, sent nowhere.
    assert.equal(opener.credit.held, 11);
    assert.deepEqual(opener.frames, []);
    route = routeTo(target);
    await eventually(async () => target.frames.length === 4);
    assert.deepEqual(target.types(), ['OPEN', 'DATA', 'DATA', 'CLOSE']);
    assert.equal(Buffer.concat(target.frames.slice(1, 3).map((f) => decodeFrame(f).payload)).toString(), 'first bytes');
    assert.ok(target.frames.every((f) => decodeFrame(f).streamId === 2));
    assert.equal(opener.credit.held, 0);
    // The target answers: the opener's end is open, and its pair holds no open timer any more.
    const targetEnd = target.streams.get(2)!;
    relayStreamFrame(targetEnd, decodeFrame(encodeJsonFrame(FrameType.OPEN_OK, 2, {})), encodeJsonFrame(FrameType.OPEN_OK, 2, {}), deps.stats);
    assert.equal(opener.streams.get(1)?.state, 'open');
  });

  test('is dropped, its bytes given back, when the next route refuses the open', async () => {
    const opener = new RecordingPeer();
    let route: StreamTarget | undefined;
    const deps: RerouteDeps = { stats: createRelayStats(), find: () => route };
    awaitNextRoute(deps, opener, 1, { workspaceId: 'w', notice }, 'gone-hub', performance.now() + 60_000);
    fromOpener(opener, 1, encodeFrame(FrameType.DATA, 1, Buffer.from('lost')), deps);
    assert.equal(opener.credit.held, 4);
    route = routeTo(new RecordingPeer(), new ConnectError('TOO_MANY_STREAMS', 'full'));
    await eventually(async () => opener.frames.length === 1);
    assert.deepEqual(opener.types(), ['OPEN_ERROR']);
    assert.equal(opener.credit.held, 0);
    assert.equal(opener.streams.size, 0);
  });

  test('an open whose early data already went to the hub that died is not sent elsewhere', () => {
    const deps: RerouteDeps = { stats: createRelayStats(), find: () => undefined };
    const info = { workspaceId: 'w', notice };
    for (const early of [false, true]) {
      const opener = new RecordingPeer();
      const link = new RecordingPeer();
      const openerEnd = openPair(opener, 1, link, 7, notice, deps.stats);
      if (early) fromOpener(opener, 1, encodeFrame(FrameType.DATA, 1, Buffer.from('gone')), deps);
      clearTimeout(openerEnd.openTimer);
      assert.equal(reopenElsewhere(deps, openerEnd.peer, info, 'gone-hub'), !early);
      // The open that waits for a route now ends as its opener gives up, with a RESET.
      if (!early) fromOpener(opener, 1, encodeJsonFrame(FrameType.RESET, 1, { code: 'STREAM_CLOSED', message: 'done' }), deps);
    }
  });
});
