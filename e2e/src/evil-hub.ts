/**
 * A hub that has turned against its agents, for the end-to-end encryption tests: it sits in front of a real hub
 * (agents use its URL; it forwards each agent WebSocket to the real hub with the same credentials), records every
 * message it relays, and, when told, tampers with what it relays the way a modified hub build could:
 *
 *   honest           relays untouched (and records: what a hub sees is what an attacker on the hub sees)
 *   swap-keys        the `resolve` answer names the hub's own identity and static key, validly signed by that identity
 *   swap-static      the `resolve` answer keeps the agent's identity and signature, with the hub's static key
 *   swap-opener-key  the OPEN notice to the exposing agent names the hub's static key as the opener's (from.staticKey)
 *   flip-hs1         one bit of IK message 1 (the OPEN notice's e2e.hs) flipped on its way to the exposing agent
 *   flip-hs2         one bit of IK message 2 (OPEN_OK's e2e.hs) flipped on its way to the opener
 *   strip            OPEN_OK reaches the opener without its e2e answer, as if the exposing agent spoke plaintext
 *   replay           the first record of each stream towards the opener is sent twice
 *   reorder          the first two records of each stream towards the opener are swapped
 *   drop             the second record of each stream towards the opener is dropped
 *   truncate         the end-of-stream record (empty) towards the opener is dropped before CLOSE
 *   splice           the first record towards the opener of a stream is put in place of the first record of the
 *                    next stream (another stream of the same session, when both are open at once)
 *   rename           the OPEN notice of a stream of a session names `renameTo` (another service) instead
 *
 * It also keeps every stream an agent opened (its OPEN and first DATA frames), and can play one again later as a
 * new stream of that agent's connection (inject): replayed stream opens and replayed session handshakes. Stream ids
 * of the agent's streams are renumbered towards the real hub, which wants them odd and increasing, so that injected
 * streams fit in between. The frames are decoded and re-encoded with the protocol package.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  E2E_TAG_BYTES,
  FrameFlag,
  FrameType,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  generateIdentity,
  generateStaticKey,
  readJsonPayload,
  setStreamId,
  signStaticKey,
  type Frame,
} from '@private-connect/protocol';

export type EvilMode =
  | 'honest'
  | 'swap-keys'
  | 'swap-static'
  | 'swap-opener-key'
  | 'flip-hs1'
  | 'flip-hs2'
  | 'strip'
  | 'replay'
  | 'reorder'
  | 'drop'
  | 'truncate'
  | 'splice'
  | 'rename';

/** One relayed WebSocket message: which agent's connection, which way (up: agent → hub), the bytes as seen. */
export interface Captured {
  agent: string;
  up: boolean;
  data: Buffer;
}

/** A stream an agent opened, as the hub saw it: its OPEN frame and its first DATA frames towards the hub. */
export interface RecordedOpen {
  agent: string;
  /** The OPEN's e2e offer. */
  e2e: Record<string, unknown> | undefined;
  open: Buffer;
  data: Buffer[];
  /** The answer the hub relayed back for it (OPEN_OK or OPEN_ERROR), once it came. */
  answer?: Buffer;
}

/** What came back for an injected stream: its answer and the frames after it, until it ended or the wait did. */
export interface Injected {
  answer: Frame | undefined;
  frames: Frame[];
}

export interface EvilHub {
  url: string;
  /** What it does from now on (connections already open follow the change). */
  mode: EvilMode;
  /** The service `rename` mode names instead. */
  renameTo: string;
  captured: Captured[];
  /** Every stream the agents opened, in order. */
  opens: RecordedOpen[];
  /** The hub's own identity and static key (base64): what swap-keys, swap-static and swap-opener-key put in. */
  identityKey: string;
  staticKey: string;
  /**
   * Tells every other agent that agent `label`'s sessions ended (end_sessions, as a hub does when an agent comes back
   * with a new identity): their next stream to it makes a new handshake and asks for its keys again.
   */
  endSessions(label: string): number;
  /** Plays `recorded` again as a new stream of its agent's connection: OPEN, then its DATA (at once, or after OPEN_OK). */
  inject(recorded: RecordedOpen, options: { dataAfterAnswer: boolean; waitMs?: number }): Promise<Injected>;
  close(): Promise<void>;
}

/** DATA frames of an agent's stream kept for a later replay: enough for the first records of a small exchange. */
const RECORDED_DATA_FRAMES = 16;
/** How long an injected stream is watched after its answer for the exposing agent's frames. */
const INJECT_WAIT_MS = 3000;

/** One agent's WebSocket through the evil hub, and what the tampering needs to remember of it. */
interface Relay {
  agent: string;
  agentId: string;
  toAgent(data: Buffer): void;
  toHub(data: Buffer): void;
  /** The agent's stream ids and theirs towards the hub; entries stay for the connection's life (tests are short). */
  upIds: Map<number, number>;
  downIds: Map<number, number>;
  nextUpId: number;
  /** Streams injected here, by their id towards the hub; inject() removes its entry when it is done. */
  injected: Map<number, (frame: Frame) => void>;
  recorded: Map<number, RecordedOpen>;
  /** Request ids of the agent's `resolve` requests waiting for their reply. */
  resolves: Set<number>;
  /** Encrypted records relayed towards the agent, per stream; the one held back by `reorder`. */
  records: Map<number, number>;
  held: Map<number, Buffer>;
}

export async function startEvilHub(upstreamUrl: string): Promise<EvilHub> {
  const identity = generateIdentity();
  const ownStatic = generateStaticKey();
  const ownKeys = {
    identityKey: identity.publicKey.toString('base64'),
    staticKey: ownStatic.publicKey.toString('base64'),
    staticSig: signStaticKey(identity, ownStatic.publicKey),
  };
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  const sockets = new Set<WebSocket>();
  /** Live relays; each removes itself when its sockets close. */
  const relays = new Set<Relay>();
  /** The connection each recorded stream was opened on: an injected replay goes there. */
  const openedOn = new WeakMap<RecordedOpen, Relay>();
  /** `splice`: the first record of the stream it came from, waiting for another stream's first record. */
  let spliceSource: { relay: Relay; id: number; payload: Buffer } | undefined;

  const evil: EvilHub = {
    url: '',
    mode: 'honest',
    renameTo: '',
    captured: [],
    opens: [],
    identityKey: ownKeys.identityKey,
    staticKey: ownKeys.staticKey,
    endSessions(label) {
      const ended = [...relays].find((r) => r.agent === label)?.agentId;
      if (!ended) throw new Error(`no agent "${label}" is connected through the evil hub`);
      let told = 0;
      for (const relay of relays) {
        if (relay.agent === label) continue;
        relay.toAgent(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'end_sessions', agentId: ended, reason: 'the agent came back with a new identity' }));
        told++;
      }
      return told;
    },
    inject: (recorded, options) => inject(recorded, options),
    close: async () => {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  function inject(recorded: RecordedOpen, options: { dataAfterAnswer: boolean; waitMs?: number }): Promise<Injected> {
    const relay = openedOn.get(recorded);
    if (!relay || !relays.has(relay)) return Promise.reject(new Error(`agent "${recorded.agent}" is not connected through the evil hub`));
    const id = relay.nextUpId;
    relay.nextUpId += 2;
    const copy = (frame: Buffer) => {
      const out = Buffer.from(frame);
      setStreamId(out, id);
      return out;
    };
    const sendData = () => recorded.data.forEach((frame) => relay.toHub(copy(frame)));
    return new Promise((resolve) => {
      const result: Injected = { answer: undefined, frames: [] };
      let timer = setTimeout(finish, options.waitMs ?? INJECT_WAIT_MS);
      function finish() {
        clearTimeout(timer);
        relay!.injected.delete(id);
        if (result.answer?.type === FrameType.OPEN_OK && !result.frames.some((f) => f.type === FrameType.RESET)) {
          relay!.toHub(encodeJsonFrame(FrameType.RESET, id, { code: 'STREAM_CLOSED', message: 'done' }));
        }
        resolve(result);
      }
      relay.injected.set(id, (frame) => {
        if (frame.type === FrameType.OPEN_OK || frame.type === FrameType.OPEN_ERROR) {
          result.answer = frame;
          if (frame.type === FrameType.OPEN_ERROR) return finish();
          if (options.dataAfterAnswer) sendData();
          clearTimeout(timer);
          timer = setTimeout(finish, options.waitMs ?? INJECT_WAIT_MS);
          return;
        }
        result.frames.push(frame);
        if (frame.type === FrameType.RESET) finish();
      });
      relay.toHub(copy(recorded.open));
      if (!options.dataAfterAnswer) sendData();
    });
  }

  wss.on('connection', (agentWs, req) => {
    const upstream = new WebSocket(`${upstreamUrl.replace(/^http/, 'ws')}${req.url ?? '/v1/agent'}`, {
      headers: { authorization: req.headers.authorization ?? '', 'user-agent': req.headers['user-agent'] ?? '' },
      perMessageDeflate: false,
      maxPayload: 4 * 1024 * 1024,
    });
    sockets.add(agentWs);
    sockets.add(upstream);
    const queue: Buffer[] = [];
    const relay: Relay = {
      agent: '',
      agentId: '',
      toAgent: (data) => agentWs.readyState === WebSocket.OPEN && agentWs.send(data, { binary: true }),
      toHub: (data) => (upstream.readyState === WebSocket.OPEN ? upstream.send(data, { binary: true }) : queue.push(data)),
      upIds: new Map(),
      downIds: new Map(),
      nextUpId: 1,
      injected: new Map(),
      recorded: new Map(),
      resolves: new Set(),
      records: new Map(),
      held: new Map(),
    };
    relays.add(relay);

    agentWs.on('message', (data: RawData) => {
      const buf = data as Buffer;
      evil.captured.push({ agent: relay.agent, up: true, data: Buffer.from(buf) });
      relay.toHub(fromAgent(relay, buf));
    });
    upstream.on('open', () => {
      for (const buf of queue.splice(0)) upstream.send(buf, { binary: true });
    });
    upstream.on('message', (data: RawData) => {
      const buf = data as Buffer;
      evil.captured.push({ agent: relay.agent, up: false, data: Buffer.from(buf) });
      for (const out of toAgent(relay, buf)) relay.toAgent(out);
    });
    upstream.on('unexpected-response', (_req, res) => {
      agentWs.close(4401, `upstream answered ${res.statusCode}`);
    });
    const closeBoth = () => {
      if (agentWs.readyState === WebSocket.OPEN) agentWs.close(1000);
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000);
      sockets.delete(agentWs);
      sockets.delete(upstream);
      relays.delete(relay);
    };
    agentWs.on('close', closeBoth);
    upstream.on('close', closeBoth);
    agentWs.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });

  /** An agent → hub message: recorded, and renumbered when it belongs to a stream the agent opened. */
  function fromAgent(relay: Relay, buf: Buffer): Buffer {
    let frame: Frame;
    try {
      frame = decodeFrame(buf);
    } catch {
      return buf; // not ours to judge: the real hub refuses malformed frames
    }
    const id = frame.streamId;
    if (frame.type === FrameType.CONTROL) {
      const msg = readJsonPayload(frame);
      if (msg.t === 'req' && msg.op === 'resolve' && typeof msg.id === 'number') relay.resolves.add(msg.id);
      return buf;
    }
    if (frame.type === FrameType.OPEN) {
      const up = relay.nextUpId;
      relay.nextUpId += 2;
      relay.upIds.set(id, up);
      relay.downIds.set(up, id);
      const recorded: RecordedOpen = { agent: relay.agent, e2e: readJsonPayload(frame).e2e as Record<string, unknown> | undefined, open: Buffer.from(buf), data: [] };
      relay.recorded.set(id, recorded);
      openedOn.set(recorded, relay);
      evil.opens.push(recorded);
    } else if (frame.type === FrameType.DATA) {
      const recorded = relay.recorded.get(id);
      if (recorded && recorded.data.length < RECORDED_DATA_FRAMES) recorded.data.push(Buffer.from(buf));
    }
    const up = id % 2 === 1 ? relay.upIds.get(id) : undefined;
    if (up === undefined || up === id) return buf;
    const out = Buffer.from(buf);
    setStreamId(out, up);
    return out;
  }

  /** A hub → agent message: what the agent gets instead (usually itself; altered, doubled or dropped when told). */
  function toAgent(relay: Relay, buf: Buffer): Buffer[] {
    let frame: Frame;
    try {
      frame = decodeFrame(buf);
    } catch {
      return [buf];
    }
    if (frame.type === FrameType.CONTROL) return [control(relay, frame) ?? buf];
    if (frame.streamId === 0) return [buf];
    const upId = frame.streamId;
    const deliver = relay.injected.get(upId);
    if (deliver) {
      deliver(frame);
      return [];
    }
    // A stream towards this agent (it exposes): the OPEN notice is what may be altered.
    if (upId % 2 === 0) return frame.type === FrameType.OPEN ? [notice(frame) ?? buf] : [buf];
    const id = relay.downIds.get(upId) ?? upId;
    const out = id === upId ? buf : Buffer.from(buf);
    if (id !== upId) setStreamId(out, id);
    if (frame.type === FrameType.OPEN_OK || frame.type === FrameType.OPEN_ERROR) {
      const recorded = relay.recorded.get(id);
      if (recorded) recorded.answer = Buffer.from(out);
    }
    if (frame.type === FrameType.OPEN_OK && frame.payload.length > 0) return [answer(id, frame) ?? out];
    if (frame.type === FrameType.DATA && (frame.flags & FrameFlag.ENCRYPTED) !== 0) return record(relay, id, frame.payload, out);
    if (frame.type === FrameType.CLOSE || frame.type === FrameType.RESET) {
      const held = relay.held.get(id);
      relay.held.delete(id);
      if (held) return [held, out];
    }
    return [out];
  }

  /** CONTROL towards an agent: its welcome names it; a `resolve` reply may get other keys. */
  function control(relay: Relay, frame: Frame): Buffer | undefined {
    const msg = readJsonPayload(frame);
    if (msg.t === 'welcome') {
      relay.agent = String(msg.label);
      relay.agentId = String(msg.agentId);
      return undefined;
    }
    if (msg.t !== 'reply' || typeof msg.id !== 'number' || !relay.resolves.delete(msg.id)) return undefined;
    const service = (msg.result as { service?: { keys?: { identityKey: string; staticKey: string; staticSig: string } } } | undefined)?.service;
    if (!service?.keys) return undefined;
    if (evil.mode === 'swap-keys') service.keys = { ...ownKeys };
    else if (evil.mode === 'swap-static') service.keys = { ...service.keys, staticKey: ownKeys.staticKey };
    else return undefined;
    return encodeJsonFrame(FrameType.CONTROL, 0, msg);
  }

  /** The OPEN notice to an exposing agent, altered in the modes that aim at it. */
  function notice(frame: Frame): Buffer | undefined {
    const msg = readJsonPayload(frame) as { service: string; from: Record<string, unknown>; e2e?: { hs?: string; sid?: string } };
    if (evil.mode === 'swap-opener-key' && msg.from.staticKey) msg.from = { ...msg.from, staticKey: ownKeys.staticKey };
    else if (evil.mode === 'flip-hs1' && msg.e2e?.hs) msg.e2e = { ...msg.e2e, hs: flipBit(msg.e2e.hs) };
    else if (evil.mode === 'rename' && msg.e2e?.sid) msg.service = evil.renameTo;
    else return undefined;
    return encodeJsonFrame(FrameType.OPEN, frame.streamId, msg);
  }

  /** OPEN_OK towards the opener, altered in the modes that aim at it. */
  function answer(id: number, frame: Frame): Buffer | undefined {
    const msg = readJsonPayload(frame) as { e2e?: { hs?: string } };
    if (evil.mode === 'strip') return encodeFrame(FrameType.OPEN_OK, id);
    if (evil.mode === 'flip-hs2' && msg.e2e?.hs) return encodeJsonFrame(FrameType.OPEN_OK, id, { ...msg, e2e: { ...msg.e2e, hs: flipBit(msg.e2e.hs) } });
    return undefined;
  }

  /** An encrypted record towards the opener (`out`: its frame with the agent's stream id). */
  function record(relay: Relay, id: number, payload: Buffer, out: Buffer): Buffer[] {
    const index = relay.records.get(id) ?? 0;
    relay.records.set(id, index + 1);
    switch (evil.mode) {
      case 'replay':
        return index === 0 ? [out, Buffer.from(out)] : [out];
      case 'reorder': {
        if (index === 0) {
          relay.held.set(id, out);
          return [];
        }
        const held = relay.held.get(id);
        relay.held.delete(id);
        return held ? [out, held] : [out];
      }
      case 'drop':
        return index === 1 ? [] : [out];
      case 'truncate':
        return payload.length === E2E_TAG_BYTES ? [] : [out];
      case 'splice': {
        if (index !== 0) return [out];
        if (!spliceSource || spliceSource.relay !== relay || spliceSource.id === id) {
          spliceSource = { relay, id, payload: Buffer.from(payload) };
          return [out];
        }
        const moved = spliceSource.payload;
        spliceSource = undefined;
        return [encodeFrame(FrameType.DATA, id, moved, FrameFlag.ENCRYPTED)];
      }
      default:
        return [out];
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  evil.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return evil;
}

/** A handshake message (base64) with one bit flipped in its middle. */
function flipBit(message: string): string {
  const raw = Buffer.from(message, 'base64');
  raw[raw.length >> 1]! ^= 0x01;
  return raw.toString('base64');
}
