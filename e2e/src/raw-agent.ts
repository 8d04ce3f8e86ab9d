/**
 * Speaking the agent protocol by hand, for security tests: a raw WebSocket client that sends exactly the bytes a
 * test gives it (valid frames, garbage, text), records what the hub sends back and how it closes; a bare HTTP
 * upgrade attempt with any Authorization header; enrolment through the API.
 */

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { WebSocket } from 'ws';
import {
  FrameType,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeJsonFrame,
  parseCloseReason,
  parseHubMessage,
  type ControlOp,
  type ControlOps,
  type ErrorBody,
  type Frame,
  type HubMessage,
  type ReplyMessage,
  type WelcomeMessage,
} from '@private-connect/protocol';

export const AGENT_ENDPOINT_PATH = '/v1/agent';

/** How the hub closed a WebSocket: the close code, the reason text and, when it is one, the parsed `CODE: message`. */
export interface CloseInfo {
  code: number;
  reason: string;
  error?: ErrorBody;
}

export interface RawAgent {
  ws: WebSocket;
  /** Every frame the hub sent, decoded. */
  frames: Frame[];
  /** Resolves when the socket closed (whoever closed it). */
  closed: Promise<CloseInfo>;
  /** Sends bytes as one WebSocket message (binary unless binary: false). */
  send(data: Buffer | string, options?: { binary?: boolean }): void;
  /** Sends hello with protocol version `v` and waits for the welcome. */
  handshake(v?: number): Promise<WelcomeMessage>;
  /** Sends a control request and waits for its reply. */
  request<Op extends ControlOp>(op: Op, args: ControlOps[Op]['args']): Promise<ReplyMessage>;
  /** Sends OPEN on `streamId` for `service` and resolves with the hub's OPEN_OK or OPEN_ERROR frame. */
  open(streamId: number, service: string): Promise<Frame>;
  /** Resolves with the first frame (past or future) that matches. */
  waitFrame(match: (frame: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame>;
  /** Closes from our side and waits for the close. */
  close(): Promise<CloseInfo>;
}

/** The hub refused the WebSocket upgrade with an HTTP answer. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`upgrade refused with HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

/** Opens the agent WebSocket with `Authorization: Bearer <token>` (or the exact header given). No hello is sent. */
export function connectRawAgent(hubUrl: string, token: string, options: { authorization?: string } = {}): Promise<RawAgent> {
  const url = hubUrl.replace(/^http/, 'ws') + AGENT_ENDPOINT_PATH;
  const ws = new WebSocket(url, { headers: { authorization: options.authorization ?? `Bearer ${token}` }, perMessageDeflate: false, maxPayload: 8 * 1024 * 1024 });
  const frames: Frame[] = [];
  const waiters = new Set<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }>();
  let nextRequestId = 1;
  const closed = new Promise<CloseInfo>((resolve) => {
    ws.on('close', (code, reasonBuffer) => {
      const reason = reasonBuffer.toString('utf8');
      resolve({ code, reason, error: parseCloseReason(reason) });
    });
  });
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) return;
    let frame: Frame;
    try {
      frame = decodeFrame(Buffer.from(data));
    } catch {
      return; // a hub bug; the tests see it as a missing frame
    }
    frames.push(frame);
    for (const waiter of waiters) if (waiter.match(frame)) waiter.resolve(frame);
  });
  ws.on('error', () => undefined);

  const agent: RawAgent = {
    ws,
    frames,
    closed,
    send(data, sendOptions = {}) {
      ws.send(data, { binary: sendOptions.binary ?? true });
    },
    waitFrame(match, what, timeoutMs = 15_000) {
      const seen = frames.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (f: Frame) => {
            done();
            resolve(f);
          },
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`raw agent: no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        void closed.then((info) => {
          done();
          reject(new Error(`raw agent: socket closed (${info.code} ${info.reason}) before ${what}`));
        });
        const done = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
        };
        waiters.add(waiter);
      });
    },
    async handshake(v = PROTOCOL_VERSION) {
      agent.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v, agent: { version: 'raw-test', label: 'raw' } }));
      const frame = await agent.waitFrame((f) => f.type === FrameType.CONTROL && controlOf(f)?.t === 'welcome', 'welcome');
      return controlOf(frame) as WelcomeMessage;
    },
    async request(op, args) {
      const id = nextRequestId++;
      agent.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id, op, args }));
      const frame = await agent.waitFrame((f) => {
        const msg = f.type === FrameType.CONTROL ? controlOf(f) : undefined;
        return msg?.t === 'reply' && msg.id === id;
      }, `reply to ${op}`);
      return controlOf(frame) as ReplyMessage;
    },
    open(streamId, service) {
      agent.send(encodeJsonFrame(FrameType.OPEN, streamId, { service }));
      return agent.waitFrame((f) => f.streamId === streamId && (f.type === FrameType.OPEN_OK || f.type === FrameType.OPEN_ERROR), `answer to OPEN ${streamId}`);
    },
    close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, 'test done');
      return closed;
    },
  };

  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(agent));
    ws.once('unexpected-response', (_req, res) => {
      void readBody(res).then((body) => {
        ws.terminate();
        reject(new UpgradeRefused(res.statusCode ?? 0, body));
      }, reject);
    });
    ws.once('error', (err) => reject(err));
  });
}

/** An HTTP response body, parsed when it is JSON, else the text. */
async function readBody(res: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text; // not JSON: kept as text
  }
}

function controlOf(frame: Frame): HubMessage | undefined {
  try {
    return parseHubMessage(frame.payload);
  } catch {
    return undefined;
  }
}

export interface UpgradeAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body, or the text when it is not JSON. */
  body: unknown;
}

/**
 * Sends a bare WebSocket upgrade request to the agent endpoint with exactly `headers` (e.g. a malformed
 * Authorization) and returns the HTTP answer. 101 means the hub accepted the upgrade (the socket is then closed).
 */
export function attemptUpgrade(hubUrl: string, headers: Record<string, string>, path = AGENT_ENDPOINT_PATH): Promise<UpgradeAnswer> {
  const url = new URL(path, hubUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'GET',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, headers: res.headers, body: undefined });
    });
    req.on('response', (res) => {
      void readBody(res).then((body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }), reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Enrols an agent through the API (what `connect up` does) and returns its token. */
export async function enrolViaApi(hubUrl: string, apiKey: string, label: string): Promise<{ token: string; agentId: string; workspaceId: string }> {
  const response = await fetch(`${hubUrl}/v1/agents/enroll`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ label }),
  });
  const body = (await response.json()) as { token: string; agentId: string; workspaceId: string };
  if (response.status !== 201) throw new Error(`enrol failed: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body;
}
