/**
 * A raw agent over `ws` for hub tests: hello with end-to-end keys, control requests and replies, the control messages
 * the hub pushes (end_sessions, ...) queued for `next`, and the close code and reason when the hub ends the socket.
 */

import WebSocket from 'ws';
import {
  FrameType,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeJsonFrame,
  generateIdentity,
  generateStaticKey,
  parseHubMessage,
  signStaticKey,
  type AgentKeys,
  type Frame,
  type HubMessage,
  type WelcomeMessage,
} from '@private-connect/protocol';

export type Reply = Extract<HubMessage, { t: 'reply' }>;

/** New end-to-end keys, as an agent sends them in its hello. */
export function newKeys(): AgentKeys {
  const identity = generateIdentity();
  const staticKey = generateStaticKey().publicKey;
  return { identityKey: identity.publicKey.toString('base64'), staticKey: staticKey.toString('base64'), staticSig: signStaticKey(identity, staticKey) };
}

export interface RawAgent {
  ws: WebSocket;
  welcome: WelcomeMessage;
  request(op: string, args: Record<string, unknown>): Promise<Reply>;
  /** The next control message (replies excluded) that matches, taken out of the queue; waits for it. */
  next(match: (msg: HubMessage) => boolean): Promise<HubMessage>;
  /** Control messages received so far that were not replies, welcome or taken by `next`. */
  controls(): HubMessage[];
  /** The close code and reason, once the socket closed. */
  closed: Promise<{ code: number; reason: string }>;
  /** Sends an OPEN of `service` on stream `id` and resolves with the first frame the hub answers on it. */
  open(id: number, service: string): Promise<Frame>;
}

/** Connects to the hub at `port` with an agent token; resolves after the welcome. `hello`: extra hello fields (keys). */
export function connectRawAgent(port: number, token: string, hello: object = newKeys()): Promise<RawAgent> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
    const queue: HubMessage[] = [];
    const wake: Array<() => void> = [];
    const replies = new Map<number, (msg: Reply) => void>();
    const streams = new Map<number, (frame: Frame) => void>();
    let nextId = 1;
    const closed = new Promise<{ code: number; reason: string }>((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('error', reject);
    ws.on('open', () => ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'test', label: 'raw' }, ...hello })));
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(data);
      if (frame.streamId !== 0) return streams.get(frame.streamId)?.(frame);
      if (frame.type !== FrameType.CONTROL) return;
      const msg = parseHubMessage(frame.payload);
      if (msg.t === 'reply') {
        replies.get(msg.id)?.(msg);
        return void replies.delete(msg.id);
      }
      if (msg.t === 'welcome') {
        return resolve({
          ws,
          welcome: msg,
          closed,
          request: (op, args) =>
            new Promise((res) => {
              const id = nextId++;
              replies.set(id, res);
              ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id, op, args }));
            }),
          async next(match) {
            for (;;) {
              const at = queue.findIndex(match);
              if (at >= 0) return queue.splice(at, 1)[0]!;
              await new Promise<void>((r) => wake.push(r));
            }
          },
          controls: () => [...queue],
          open: (id, service) =>
            new Promise((res) => {
              streams.set(id, res);
              ws.send(encodeJsonFrame(FrameType.OPEN, id, { service }));
            }),
        });
      }
      queue.push(msg);
      for (const w of wake.splice(0)) w();
    });
  });
}
