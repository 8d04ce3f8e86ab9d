/**
 * A hub that has turned against its agents, for the end-to-end encryption tests: it sits in front of a real hub
 * (agents use its URL; it forwards each agent WebSocket to the real hub with the same credentials), records every
 * message it relays, and, when told, tampers with the streams the way a malicious hub could:
 *
 *   honest           relays untouched (and records: what a hub sees is what an attacker on the hub sees)
 *   swap-identity    answers each stream open with its own identity key and a valid signature of its own
 *   swap-ephemeral   keeps the exposing agent's identity and signature, replaces its ephemeral key
 *   strip            drops the handshake answer, as if the exposing agent spoke plaintext
 *   replay           sends the first DATA record of each stream towards the reaching agent twice
 *   truncate         drops the end-of-stream record before CLOSE towards the reaching agent
 *
 * Every tampering acts on what goes to the agent that opened streams (the hub's answer to its OPEN); the frames
 * are decoded and re-encoded with the protocol package, exactly as a modified hub build would.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  E2EInitiator,
  E2E_TAG_BYTES,
  FrameFlag,
  FrameType,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  generateIdentity,
  parseAnswer,
  parseOffer,
  readJsonPayload,
  respond,
  type E2EOffer,
} from '@private-connect/protocol';

export type EvilMode = 'honest' | 'swap-identity' | 'swap-ephemeral' | 'strip' | 'replay' | 'truncate';

export interface EvilHub {
  url: string;
  /** What it does from now on (connections already open follow the change). */
  mode: EvilMode;
  /** Every binary message relayed, both directions, as the hub saw it (WebSocket payloads, unmasked). */
  captured: Buffer[];
  /** The identity key it answers with in swap-identity mode (base64). */
  identityKey: string;
  close(): Promise<void>;
}

export async function startEvilHub(upstreamUrl: string): Promise<EvilHub> {
  const identity = generateIdentity();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  const sockets = new Set<WebSocket>();
  const evil: EvilHub = {
    url: '',
    mode: 'honest',
    captured: [],
    identityKey: identity.publicKey.toString('base64'),
    close: async () => {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  wss.on('connection', (agent, req) => {
    const upstream = new WebSocket(`${upstreamUrl.replace(/^http/, 'ws')}${req.url ?? '/v1/agent'}`, {
      headers: { authorization: req.headers.authorization ?? '', 'user-agent': req.headers['user-agent'] ?? '' },
      perMessageDeflate: false,
      maxPayload: 4 * 1024 * 1024,
    });
    sockets.add(agent);
    sockets.add(upstream);
    /** Offers this agent sent with its OPENs, by stream id: what a forged answer must sign. */
    const offers = new Map<number, E2EOffer>();
    /** Streams towards this agent whose first DATA record was already replayed. */
    const replayed = new Set<number>();
    const queue: Buffer[] = [];
    const toAgent = (data: Buffer) => agent.readyState === WebSocket.OPEN && agent.send(data, { binary: true });

    agent.on('message', (data: RawData) => {
      const buf = data as Buffer;
      evil.captured.push(Buffer.from(buf));
      try {
        const frame = decodeFrame(buf);
        if (frame.type === FrameType.OPEN) {
          const e2e = readJsonPayload(frame).e2e;
          if (e2e !== undefined) offers.set(frame.streamId, parseOffer(e2e));
        }
      } catch {
        // Not ours to judge: the real hub refuses malformed frames.
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(buf, { binary: true });
      else queue.push(buf);
    });
    upstream.on('open', () => {
      for (const buf of queue.splice(0)) upstream.send(buf, { binary: true });
    });
    upstream.on('message', (data: RawData) => {
      const buf = data as Buffer;
      evil.captured.push(Buffer.from(buf));
      for (const out of tamper(evil.mode, buf, offers, replayed, identity)) toAgent(out);
    });
    upstream.on('unexpected-response', (_req, res) => {
      agent.close(4401, `upstream answered ${res.statusCode}`);
    });
    const closeBoth = () => {
      if (agent.readyState === WebSocket.OPEN) agent.close(1000);
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000);
      sockets.delete(agent);
      sockets.delete(upstream);
    };
    agent.on('close', closeBoth);
    upstream.on('close', closeBoth);
    agent.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  evil.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return evil;
}

/** What a hub→agent message becomes in `mode`: usually itself; sometimes altered, doubled or dropped. */
function tamper(mode: EvilMode, buf: Buffer, offers: Map<number, E2EOffer>, replayed: Set<number>, identity: ReturnType<typeof generateIdentity>): Buffer[] {
  if (mode === 'honest') return [buf];
  let frame;
  try {
    frame = decodeFrame(buf);
  } catch {
    return [buf];
  }
  const id = frame.streamId;
  if (frame.type === FrameType.OPEN_OK && frame.payload.length > 0) {
    const answer = parseAnswer(readJsonPayload(frame).e2e);
    if (mode === 'strip') return [encodeFrame(FrameType.OPEN_OK, id)];
    if (mode === 'swap-ephemeral') {
      // Any fresh X25519 key in the handshake's encoding: a throwaway initiator makes one.
      return [encodeJsonFrame(FrameType.OPEN_OK, id, { e2e: { ...answer, e: new E2EInitiator().offer.e } })];
    }
    if (mode === 'swap-identity') {
      const offer = offers.get(id);
      if (!offer) return [buf];
      // A complete, valid answer, signed by the hub's own key in the exposing agent's name.
      const forged = respond(offer, identity, { agentId: answer.agentId, label: answer.label, service: answer.service }).answer;
      return [encodeJsonFrame(FrameType.OPEN_OK, id, { e2e: forged })];
    }
  }
  if (frame.type === FrameType.DATA && (frame.flags & FrameFlag.ENCRYPTED) !== 0) {
    if (mode === 'replay' && !replayed.has(id)) {
      replayed.add(id);
      return [buf, Buffer.from(buf)];
    }
    if (mode === 'truncate' && frame.payload.length === E2E_TAG_BYTES) return [];
  }
  return [buf];
}
