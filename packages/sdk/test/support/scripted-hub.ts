/**
 * A scripted hub for SDK tests: a real HTTP server and WebSocket endpoint on 127.0.0.1 that speaks the agent
 * protocol as each test directs (welcome, replies, stream frames, refusals), so that agent-side behaviour can be
 * checked over real sockets, including frame orders and timings a real hub only produces by chance.
 */

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  FrameType,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeJsonFrame,
  parseAgentMessage,
  type AgentMessage,
  type Frame,
} from '@private-connect/protocol';

export interface ScriptedConnection {
  ws: WebSocket;
  /** Frames received from the agent, decoded. */
  frames: Frame[];
  send(frame: Buffer): void;
  /** Sends several frames in one TCP write, so that the agent reads them in one chunk. */
  sendTogether(frames: Buffer[]): void;
  welcome(): void;
  reply(id: number, result: unknown): void;
  waitFrame(match: (frame: Frame) => boolean, what: string): Promise<Frame>;
  /** The next control request (after those already handled by waitRequest). */
  waitRequest(op: string): Promise<Extract<AgentMessage, { t: 'req' }>>;
}

export interface ScriptedHub {
  url: string;
  /** Upgrade requests received so far (accepted or refused). */
  attempts: number;
  close(): Promise<void>;
}

export interface ScriptedHubOptions {
  /** Answer an upgrade request with this HTTP status and JSON error body instead of accepting it. */
  refuse?: (attempt: number) => { status: number; code: string; message: string } | undefined;
  onConnection(conn: ScriptedConnection, attempt: number): void;
}

export async function startScriptedHub(options: ScriptedHubOptions): Promise<ScriptedHub> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sockets = new Set<Duplex>();
  const hub: ScriptedHub = {
    url: '',
    attempts: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        for (const socket of sockets) socket.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  };
  server.on('upgrade', (req, socket, head) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const attempt = ++hub.attempts;
    const refusal = options.refuse?.(attempt);
    if (refusal) {
      const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
      socket.end(`HTTP/1.1 ${refusal.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => options.onConnection(scripted(ws), attempt));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}

function scripted(ws: WebSocket): ScriptedConnection {
  const frames: Frame[] = [];
  const waiters = new Set<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void; fail: () => void }>();
  let requestsSeen = 0;
  let closed = false;
  ws.on('close', () => {
    closed = true;
    for (const w of waiters) w.fail();
  });
  ws.on('message', (data: Buffer) => {
    const frame = decodeFrame(Buffer.from(data));
    frames.push(frame);
    for (const w of waiters) if (w.match(frame)) w.resolve(frame);
  });
  ws.on('error', () => undefined);
  const conn: ScriptedConnection = {
    ws,
    frames,
    send: (frame) => ws.send(frame, { binary: true }),
    sendTogether(list) {
      const socket = (ws as unknown as { _socket: Socket })._socket;
      socket.cork();
      for (const frame of list) ws.send(frame, { binary: true });
      socket.uncork();
    },
    welcome() {
      conn.send(
        encodeJsonFrame(FrameType.CONTROL, 0, { t: 'welcome', v: PROTOCOL_VERSION, agentId: 'agent-1', workspaceId: 'workspace-1', connectionId: 'conn-1', label: 'scripted' }),
      );
    },
    reply(id, result) {
      conn.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'reply', id, ok: true, result }));
    },
    waitFrame(match, what) {
      const seen = frames.find(match);
      if (seen) return Promise.resolve(seen);
      if (closed) return Promise.reject(new Error(`scripted hub: the agent closed before ${what}`));
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (f: Frame) => (waiters.delete(waiter), resolve(f)),
          fail: () => (waiters.delete(waiter), reject(new Error(`scripted hub: the agent closed before ${what}`))),
        };
        waiters.add(waiter);
      });
    },
    async waitRequest(op) {
      const index = requestsSeen;
      const isRequest = (f: Frame) => f.type === FrameType.CONTROL && parseAgentMessage(f.payload).t === 'req';
      await conn.waitFrame(() => frames.filter(isRequest).length > index, `request ${op}`);
      requestsSeen++;
      const msg = parseAgentMessage(frames.filter(isRequest)[index]!.payload);
      if (msg.t !== 'req' || msg.op !== op) throw new Error(`scripted hub: expected request ${op}, got ${JSON.stringify(msg)}`);
      return msg;
    },
  };
  return conn;
}
