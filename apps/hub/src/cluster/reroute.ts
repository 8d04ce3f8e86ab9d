/**
 * Opens caught by the death of another hub. An open sent over the link to a hub that went away before answering,
 * or sent to a service whose hub just went away, does not fail: its agent is expected back on a hub that is up
 * (agents given several hubs move at once), so the open waits on a placeholder for the service's next route and is
 * opened there. When none comes within REROUTE_WAIT_MS of the open, it is refused HUB_GONE, which says what
 * happened (not PEER_GONE: no agent left the stream).
 *
 * While it waits, the opener's end is linked to a placeholder end: a RESET from the opener, or the end of its
 * connection, reaches the placeholder (the relay functions forward to it as to any peer) and ends the wait.
 */

import { ConnectError, FrameType, INITIAL_STREAM_WINDOW, type OpenNotice } from '@private-connect/protocol';
import { EarlyFrames } from '../relay/early-frames.js';
import type { RelayStats } from '../relay/relay-stats.js';
import type { StreamTarget } from '../relay/router.js';
import { refuseOpen, type RelayPeer, type StreamEnd, type StreamTag } from '../relay/streams.js';

/** How long after it was sent an open caught by a hub's death waits for its service's next route. */
export const REROUTE_WAIT_MS = 10_000;
/** How often a waiting open looks for the next route. */
const REROUTE_POLL_MS = 50;

/** What an open to another hub needs to be sent again elsewhere. */
export interface RemoteOpenInfo {
  workspaceId: string;
  notice: OpenNotice;
  tag?: StreamTag;
}

/**
 * A peer that holds the other end of a waiting open: the opener's early DATA and CLOSE wait here for the stream to
 * open; anything else it sends (RESET) ends the wait.
 */
class WaitingPeer implements RelayPeer {
  readonly streams = new Map<number, StreamEnd>();
  readonly early = new EarlyFrames();
  cancelled = false;
  send(frame: Buffer, written?: () => void): void {
    if (!this.cancelled && (frame[0] === FrameType.DATA || frame[0] === FrameType.CLOSE)) return this.early.hold(0, frame, written ? { written } : {});
    this.cancelled = true;
    this.early.drop();
    written?.();
  }
}

export interface RerouteDeps {
  stats: RelayStats;
  /** The service's route now, if any (the gone hub's placeholders included: they are skipped). */
  find(workspaceId: string, name: string): StreamTarget | undefined;
}

/** The refusal of an open whose service's hub went away and did not come back on another hub in time. */
export const hubGone = (service: string): ConnectError =>
  new ConnectError('HUB_GONE', `the hub of the agent exposing "${service}" went away, and the agent did not come back on another hub within ${REROUTE_WAIT_MS / 1000} s`);

/**
 * Holds `opener`'s open `openerId` until `open.notice.service` has a route that is not on `goneHub`, then opens it
 * there; refuses it HUB_GONE at `deadline` (performance.now() ms).
 */
export function awaitNextRoute(
  deps: RerouteDeps,
  opener: RelayPeer,
  openerId: number,
  open: RemoteOpenInfo,
  goneHub: string,
  deadline: number,
  /** Early frames the opener sent to the gone hub (already counted and given back to its window): sent again first. */
  sentBefore: Buffer[] = [],
): void {
  const waiting = new WaitingPeer();
  for (const raw of sentBefore) waiting.early.hold(openerId, raw);
  const end = { conn: opener, id: openerId, role: 'opener', state: 'opening', credit: INITIAL_STREAM_WINDOW, closedByAgent: false, tag: open.tag } as StreamEnd;
  end.window = opener.windowFor?.(waiting);
  const placeholder = { conn: waiting, id: 0, role: 'target', state: 'opening', credit: INITIAL_STREAM_WINDOW, closedByAgent: false, peer: end } as StreamEnd;
  end.peer = placeholder;
  opener.streams.set(openerId, end);
  waiting.streams.set(0, placeholder);
  const service = open.notice.service;
  const tick = (): void => {
    if (waiting.cancelled || opener.streams.get(openerId) !== end) return;
    const target = deps.find(open.workspaceId, service);
    const elsewhere = target && target.state === 'open' && !('hubId' in target && target.hubId === goneHub);
    if (elsewhere || performance.now() >= deadline) {
      opener.streams.delete(openerId);
      const refused = elsewhere ? target.acceptStream(opener, openerId, open.notice, open.tag) : hubGone(service);
      if (refused) {
        waiting.early.drop();
        return refuseOpen({ conn: opener, id: openerId }, refused.code, refused.message, deps.stats);
      }
      const opened = opener.streams.get(openerId);
      if (opened) waiting.early.replay(opened, deps.stats);
      return;
    }
    setTimeout(tick, REROUTE_POLL_MS).unref();
  };
  tick();
}

/**
 * The link end `linkEnd` of an open sent to `goneHub`, which went away before answering: the open waits for the
 * service's next route (awaitNextRoute), within REROUTE_WAIT_MS of when it was sent. False when it cannot (the
 * opener already gave up), and the caller ends it as usual.
 */
export function reopenElsewhere(deps: RerouteDeps, linkEnd: StreamEnd, open: RemoteOpenInfo | undefined, goneHub: string): boolean {
  const opener = linkEnd.peer;
  if (!open || opener.state !== 'opening' || opener.conn.streams.get(opener.id) !== opener) return false;
  // Early data went to the gone hub: it goes again, from the copies, to the next route (none kept: it cannot).
  if (opener.early && !opener.earlyCopies) return false;
  clearTimeout(opener.openTimer);
  opener.conn.streams.delete(opener.id);
  awaitNextRoute(deps, opener.conn, opener.id, open, goneHub, (opener.openedAt ?? performance.now()) + REROUTE_WAIT_MS, opener.earlyCopies);
  return true;
}
