/**
 * An in-process hub on a fresh test database (PGlite, or PostgreSQL with TEST_DATABASE=postgres) with a ManualClock,
 * plus small HTTP and WebSocket clients that can pick their source address (127.0.0.x) to look like another IP.
 */

import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import {
  FrameType,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeJsonFrame,
  parseHubMessage,
  type HubMessage,
  type WelcomeMessage,
} from '@private-connect/protocol';
import { ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { startHub, type Hub } from '../../src/hub.js';
import { createLogger } from '../../src/logger.js';
import { createApiKey } from '../../src/store/bootstrap.js';
import { createTestDatabase } from './test-database.js';

export const DAY = 24 * 60 * 60 * 1000;
export const HOUR = 60 * 60 * 1000;

export interface TestHub {
  hub: Hub;
  clock: ManualClock;
  workspaceId: string;
  apiKey: string;
  addWorkspace(name: string): Promise<{ workspaceId: string; apiKey: string }>;
  http(method: string, path: string, options?: HttpOptions): Promise<HttpAnswer>;
  /** Enrols an agent with `apiKey` (default: the bootstrap key). */
  enrol(label: string, apiKey?: string): Promise<{ agentId: string; token: string; expiresAt: string }>;
  connect(token: string, options?: { localAddress?: string }): Promise<TestAgentSocket>;
  close(): Promise<void>;
}

export interface HttpOptions {
  token?: string;
  body?: unknown;
  localAddress?: string;
}

export interface HttpAnswer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface TestAgentSocket {
  ws: WebSocket;
  welcome: WelcomeMessage;
  /** Sends a control request and resolves with its reply. */
  request(op: string, args: Record<string, unknown>): Promise<HubMessage>;
  /** Resolves with the close code and reason once the hub closes the socket. */
  closed: Promise<{ code: number; reason: string }>;
}

/** Runs `fn` with a fresh test hub (startTestHub's defaults, or `env` on top), closed afterwards whatever happens. */
export async function withTestHub(fn: (t: TestHub) => Promise<void>, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const t = await startTestHub(undefined, env);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** Starts a hub with a ManualClock at `start` on a new test database (`env`: extra hub settings); close it in a finally. */
export async function startTestHub(start = new Date('2030-01-01T00:00:00Z'), env: NodeJS.ProcessEnv = {}): Promise<TestHub> {
  const database = await createTestDatabase();
  const clock = new ManualClock(start);
  const config = loadConfig({ HUB_PORT: '0', WEB_PORT: '0', HUB_HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env });
  const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
  let hub: Hub;
  try {
    hub = await startHub(config, { db: database.db, clock, logger: createLogger('warn', sink) });
  } catch (err) {
    await database.dispose();
    throw err;
  }
  const port = hub.port;
  const http = (method: string, path: string, options: HttpOptions = {}) => httpCall(port, method, path, options);
  const self: TestHub = {
    hub,
    clock,
    workspaceId: hub.bootstrap!.workspaceId,
    apiKey: hub.bootstrap!.apiKey,
    async addWorkspace(name) {
      const [row] = await hub.db.withSystem((tx) => tx.query<{ id: string }>('insert into workspaces (name) values ($1) returning id', [name]));
      return { workspaceId: row!.id, apiKey: await createApiKey(hub.db, row!.id, `${name} key`) };
    },
    http,
    async enrol(label, apiKey = self.apiKey) {
      const answer = await http('POST', '/v1/agents/enroll', { token: apiKey, body: { label } });
      if (answer.status !== 201) throw new Error(`enrol failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body;
    },
    connect: (token, options = {}) => connectAgent(port, token, options.localAddress),
    async close() {
      try {
        await hub.close();
      } finally {
        await database.dispose();
      }
    },
  };
  return self;
}

function httpCall(port: number, method: string, path: string, options: HttpOptions): Promise<HttpAnswer> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        localAddress: options.localAddress,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          'user-agent': 'credentials-test/1',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Error thrown when the hub refuses the upgrade: the HTTP status and the error body. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: { error: { code: string; message: string } },
  ) {
    super(`upgrade refused: ${status} ${JSON.stringify(body)}`);
  }
}

/** Connects a scripted agent with `token` to the hub on `port` and resolves after its welcome. */
export function connectAgent(port: number, token: string, localAddress?: string): Promise<TestAgentSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/agent`, { headers: { authorization: `Bearer ${token}`, 'user-agent': 'credentials-test-agent/1' }, localAddress });
    const replies = new Map<number, (msg: HubMessage) => void>();
    let nextId = 1;
    const closed = new Promise<{ code: number; reason: string }>((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, JSON.parse(Buffer.concat(chunks).toString('utf8')))));
    });
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'test', label: 'test-agent' } }));
    });
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(data);
      if (frame.type !== FrameType.CONTROL) return;
      const msg = parseHubMessage(frame.payload);
      if (msg.t === 'welcome') {
        resolve({
          ws,
          welcome: msg,
          closed,
          request: (op, args) =>
            new Promise((res) => {
              const id = nextId++;
              replies.set(id, res);
              ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id, op, args }));
            }),
        });
      } else if (msg.t === 'reply') {
        replies.get(msg.id)?.(msg);
        replies.delete(msg.id);
      }
    });
  });
}

/** Polls `fn` until it returns a truthy value (for effects the hub records after answering), at most ~5 s. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await fn();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met within 5 s');
}
