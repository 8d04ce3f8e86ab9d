/**
 * Streams whose two agents sit on different hubs: one HubLink (hub-link.ts) per other hub, its frames on
 * `<ns>.f.<to>.<from>.<epoch>.<seq>`. Frames lost on the way (a gap in the sequence) end the streams of that link,
 * and the other hub is asked for a new one (`linkreset`). An open sent over a link and not answered soon asks
 * whether the other hub is still on NATS (liveness.ts); opens caught by a hub's death wait for their service's next
 * route (reroute.ts).
 */

import type { OpenNotice } from '@private-connect/protocol';
import type { Logger } from '../logger.js';
import type { RelayStats } from '../relay/relay-stats.js';
import type { ServiceRouter } from '../relay/router.js';
import { openPair, type RelayPeer, type StreamEnd, type StreamTag } from '../relay/streams.js';
import type { ClusterBus } from './bus.js';
import { HubLink, type RemoteOpen } from './hub-link.js';
import type { Liveness } from './liveness.js';
import type { PresenceMessage } from './messages.js';
import { reopenElsewhere, type RemoteOpenInfo, type RerouteDeps } from './reroute.js';

/** An open to another hub unanswered this long asks NATS whether that hub is still there, and again each PROBE_AGAIN_MS. */
const PROBE_AFTER_MS = 100;
const PROBE_AGAIN_MS = 500;

export interface RemoteStreams {
  /** Opens `opener`'s stream `openerId` to `notice.service`, exposed by an agent of hub `hub`, over the link to it. */
  open(hub: string, workspaceId: string, opener: RelayPeer, openerId: number, notice: OpenNotice, tag?: StreamTag): void;
  /**
   * Hub `other` went away: the streams through it end (HUB_GONE), and the opens it had not answered wait for their
   * service's next route. Returns the streams ended.
   */
  hubGone(other: string): number;
  /** Asks each of `peers` to end its link with this hub and start a new one (frames between them were lost). */
  askNewLinks(peers: Iterable<string>): void;
  /** Ends every link (this hub lost NATS: frames sent and received meanwhile are lost). Returns the streams ended. */
  dropAll(): number;
  /** Streams crossing to other hubs now, and frames sent and received over links so far. */
  stats(): { streams: number; framesOut: number; framesIn: number };
  /** The links, as holders of stream ends. */
  peers(): Iterable<RelayPeer>;
  /** `linkreset` from another hub: ends this hub's link with it, if the message is for this hub. */
  receive(m: Extract<PresenceMessage, { t: 'linkreset' }>): void;
}

export interface RemoteStreamsDeps {
  bus: ClusterBus;
  router: ServiceRouter;
  stats: RelayStats;
  liveness: Liveness;
  reroute: RerouteDeps;
  log: Logger;
}

export function createRemoteStreams(deps: RemoteStreamsDeps): RemoteStreams {
  const { bus, router, liveness, log } = deps;
  const hubId = bus.hubId;
  /** Other hub id → the link to it; deleted when that hub goes, when either side resets it, and on close. */
  const links = new Map<string, HubLink>();
  /** What each open sent over a link needs to be sent elsewhere, by its end on the link (gone with the end). */
  const opensSent = new WeakMap<StreamEnd, RemoteOpenInfo>();

  const linkTo = (other: string): HubLink => {
    let link = links.get(other);
    if (!link) {
      const subject = `f.${other}.${hubId}`;
      link = new HubLink(other, hubId, { publish: (frame, epoch, seq) => bus.sendBytes(`${subject}.${epoch}.${seq}`, frame), maxPayload: bus.maxPayload }, deps.stats, log);
      links.set(other, link);
    }
    return link;
  };
  const dropLink = (other: string): void => {
    const link = links.get(other);
    links.delete(other);
    link?.drop();
  };
  const askReset = (peer: string): void => void bus.send('presence', { t: 'linkreset', hub: hubId, ws: '', peer } satisfies PresenceMessage);

  /** An open sent to another hub over `link`: while it is not answered, that hub's presence on NATS is checked. */
  const watchOpen = (link: HubLink, end: StreamEnd): void => {
    const other = link.hubId;
    const check = (): void => {
      if (end.state !== 'opening' || link.streams.get(end.id) !== end || links.get(other) !== link || bus.isClosed()) return;
      void liveness.check(other).then((present) => {
        if (present) setTimeout(check, PROBE_AGAIN_MS).unref();
      });
    };
    setTimeout(check, PROBE_AFTER_MS).unref();
  };

  /** An open from another hub to a service exposed here. */
  const onOpen = (link: HubLink, id: number, open: RemoteOpen): void => {
    const target = router.getLocal(open.workspaceId, open.notice.service);
    if (!target || target.state !== 'open') {
      return link.refuse(id, 'SERVICE_OFFLINE', `the agent exposing "${open.notice.service}" is not connected right now`);
    }
    const refused = target.acceptStream(link, id, open.notice, open.tag);
    if (refused) link.refuse(id, refused.code, refused.message);
  };

  bus.listen(`f.${hubId}.*.*.*`, (_value, msg) => {
    // <ns>.f.<to>.<from>.<epoch>.<seq>: the last three tokens.
    const [from = '', epochText = '', seqText = ''] = msg.subject.split('.').slice(-3);
    const epoch = Number(epochText);
    const seq = Number(seqText);
    if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(seq) || from === hubId) {
      return log.warn({ subject: msg.subject }, 'a malformed frame from another hub was dropped');
    }
    if (!liveness.isUp(from)) liveness.heard(from);
    const link = linkTo(from);
    const order = link.sequence(epoch, seq);
    if (order === 'stale') return;
    if (order === 'gap') {
      log.warn({ peer: from, epoch, seq }, 'frames from another hub were lost: the streams with it ended, and it is asked for a new link');
      askReset(from);
      return;
    }
    const data = msg.data;
    const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      link.receive(raw, (id, open) => onOpen(link, id, open));
    } catch (err) {
      log.warn({ err, peer: from }, 'a malformed frame from another hub was dropped');
    }
  });

  return {
    open(hub, workspaceId, opener, openerId, notice, tag) {
      const link = linkTo(hub);
      // The exposing hub counts the stream and its bytes for the service; this one only relays.
      const first = openPair(opener, openerId, link, link.allocate(workspaceId, tag), notice, deps.stats, tag);
      // Early frames are kept until the answer: that hub may go away first, and the open then goes elsewhere.
      first.earlyCopies = [];
      const end = first.peer;
      opensSent.set(end, tag ? { workspaceId, notice, tag } : { workspaceId, notice });
      watchOpen(link, end);
    },
    hubGone(other) {
      const link = links.get(other);
      links.delete(other);
      return (
        link?.drop({
          reopen: (end) => reopenElsewhere(deps.reroute, end, opensSent.get(end), other),
          code: 'HUB_GONE',
          message: 'the hub of the other agent of this stream went away',
        }) ?? 0
      );
    },
    askNewLinks(peers) {
      for (const peer of peers) askReset(peer);
    },
    dropAll() {
      const cut = [...links.values()].reduce((n, link) => n + link.drop(), 0);
      links.clear();
      return cut;
    },
    stats() {
      let streams = 0;
      let framesOut = 0;
      let framesIn = 0;
      for (const link of links.values()) {
        streams += link.streams.size;
        framesOut += link.framesOut;
        framesIn += link.framesIn;
      }
      return { streams, framesOut, framesIn };
    },
    peers: () => links.values(),
    receive(m) {
      if (m.peer === hubId) dropLink(m.hub);
    },
  };
}
