/**
 * Slow and oversized clients on real sockets against the agent endpoint and the public-link proxy, on a hub with
 * short timeouts (HUB_HEADERS_TIMEOUT, HUB_REQUEST_TIMEOUT, HUB_HANDSHAKE_TIMEOUT): headers sent a byte at a time,
 * a connection that sends nothing, a WebSocket that never says hello (or trickles it), 100 KiB of upgrade headers,
 * a hello or frame past its limit, a public-link body that trickles, a refused upgrade whose client never hangs up.
 * Each is cut off, with its code where the protocol has one, while an agent and a public link are served meanwhile.
 * Time bounds are only upper bounds of ten times the timeout (hang guards) and lower bounds the hub cannot beat.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Agent } from '@private-connect/sdk';
import {
  ERROR_CODES,
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_CONTROL_MESSAGE,
  MAX_FRAME_PAYLOAD,
  PROTOCOL_VERSION,
  encodeFrame,
  encodeJsonFrame,
  parseCloseReason,
  type ErrorCode,
} from '@private-connect/protocol';
import { ConfigError, loadConfig } from '../src/config.js';
import { eventually, startTestHub, type TestAgentSocket, type TestHub } from './support/test-hub.js';

const HEADERS_MS = 1000;
const REQUEST_MS = 2000;
const HANDSHAKE_MS = 1000;

interface Cut {
  /** Everything the hub wrote before the socket closed. */
  answer: string;
  /** From connecting to the close. */
  ms: number;
}

/**
 * A raw TCP client: writes `head`, then one byte of `trickle` every `everyMs` (cycling, never finishing), and
 * resolves once the hub closes the socket. Rejects if it is still open after `guardMs`.
 */
function slowClient(port: number, head: Buffer | string, trickleText: Buffer | string, everyMs: number, guardMs: number): Promise<Cut> {
  const trickle = typeof trickleText === 'string' ? Buffer.from(trickleText, 'latin1') : trickleText;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the hub kept a slow client open for ${guardMs} ms`));
    }, guardMs);
    socket.on('connect', () => {
      if (head.length > 0) socket.write(head);
      if (trickle.length > 0) {
        timer = setInterval(() => {
          const at = i++ % trickle.length;
          if (socket.writable) socket.write(trickle.subarray(at, at + 1));
        }, everyMs);
      }
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset is a close too
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve({ answer: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started });
    });
  });
}

function upgradeHead(path: string, token: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n${extra}`;
}

/** One client-to-server WebSocket frame (masked, as RFC 6455 requires of clients): binary, FIN set. */
function wsFrame(payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x82, 0x80 | len]) : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

/**
 * Opens the agent WebSocket (no hello sent), runs `send` once open, and resolves with how the hub closed it.
 * Rejects if it is still open after `guardMs`.
 */
function agentSocket(port: number, token: string, send: (ws: WebSocket) => void, guardMs: number): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/agent`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const guard = setTimeout(() => {
      ws.terminate();
      reject(new Error(`the hub kept the WebSocket open for ${guardMs} ms`));
    }, guardMs);
    ws.on('open', () => send(ws));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.on('close', (code, reason) => {
      clearTimeout(guard);
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
}

function assertClosedWith(closed: { code: number; reason: string }, code: ErrorCode): void {
  assert.equal(closed.code, ERROR_CODES[code].close, `close code of ${code}; got ${closed.code} "${closed.reason}"`);
  assert.equal(parseCloseReason(closed.reason)?.code, code, closed.reason);
}

/** A GET on a new connection; fails after 10 s without an answer (a hang guard). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error(`no answer to GET ${path} within 10 s`));
      })
      .on('error', reject);
  });
}

test('the slow-client timeouts are read from the environment and refused when they would switch protection off', () => {
  const config = loadConfig({ HUB_HEADERS_TIMEOUT: '2s', HUB_REQUEST_TIMEOUT: '3s', HUB_HANDSHAKE_TIMEOUT: '500ms' });
  assert.deepEqual([config.headersTimeoutMs, config.requestTimeoutMs, config.handshakeTimeoutMs], [2000, 3000, 500]);
  const defaults = loadConfig({});
  assert.deepEqual([defaults.headersTimeoutMs, defaults.requestTimeoutMs, defaults.handshakeTimeoutMs], [60_000, 300_000, 10_000]);
  for (const [env, variable] of [
    [{ HUB_HEADERS_TIMEOUT: '0' }, 'HUB_HEADERS_TIMEOUT'],
    [{ HUB_REQUEST_TIMEOUT: 'soon' }, 'HUB_REQUEST_TIMEOUT'],
    [{ HUB_HANDSHAKE_TIMEOUT: '0s' }, 'HUB_HANDSHAKE_TIMEOUT'],
    [{ HUB_HEADERS_TIMEOUT: '10m' }, 'HUB_HEADERS_TIMEOUT'],
  ] as const) {
    assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${variable}: `), JSON.stringify(env));
  }
});

describe('slow and oversized clients are cut off by timeouts and limits', () => {
  let t: TestHub;
  let app: http.Server;
  let exposer: Agent;
  let good: TestAgentSocket;
  let rogueToken: string;
  let linkPath: string;
  /** Uploads the app saw end before all their bytes came. */
  const uploads = { aborted: 0 };
  let checks = 0;

  /** The well-behaved agent gets answers and the public link serves a request: run while an attack is under way. */
  async function assertServing(): Promise<void> {
    const reply = await good.request('list', {});
    assert.equal((reply as { ok: boolean }).ok, true, JSON.stringify(reply));
    const page = await get(t.hub.port, `${linkPath}hello?n=${++checks}`);
    assert.deepEqual(page, { status: 200, body: `hello ${checks}` });
  }

  /** Runs `attack`, checks the hub serves others half a timeout into it, then returns what the attack saw. */
  async function meanwhile<T>(attack: Promise<T>, afterMs: number): Promise<T> {
    await new Promise((r) => setTimeout(r, afterMs));
    await assertServing();
    return attack;
  }

  before(async () => {
    t = await startTestHub(new Date(), {
      HUB_HEADERS_TIMEOUT: `${HEADERS_MS}ms`,
      HUB_REQUEST_TIMEOUT: `${REQUEST_MS}ms`,
      HUB_HANDSHAKE_TIMEOUT: `${HANDSHAKE_MS}ms`,
      PUBLIC_LINK_IDLE_TIMEOUT: '60s',
    });
    app = http.createServer((req, res) => {
      if (req.url === '/upload') {
        req.once('aborted', () => uploads.aborted++);
        req.resume();
        return void req.once('end', () => res.end('stored'));
      }
      res.end(`hello ${new URL(req.url ?? '/', 'http://x').searchParams.get('n')}`);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    exposer = new Agent({ hubUrl: t.hub.url, token: (await t.enrol('web-server')).token, label: 'web-server' });
    await exposer.expose('web', `127.0.0.1:${(app.address() as AddressInfo).port}`, { protocol: 'http' });
    good = await t.connect((await t.enrol('good-agent')).token);
    rogueToken = (await t.enrol('rogue')).token;
    const link = await t.http('POST', '/v1/links', { token: t.apiKey, body: { service: 'web' } });
    assert.equal(link.status, 201, JSON.stringify(link.body));
    linkPath = `/l/${link.body.token}/`;
    await assertServing();
  });

  after(async () => {
    good?.ws.terminate();
    await exposer?.close();
    app?.closeAllConnections();
    app?.close();
    await t?.close();
  });

  test('agent upgrade headers sent one byte every 50 ms are cut at HUB_HEADERS_TIMEOUT with 408', async () => {
    const cut = await meanwhile(slowClient(t.hub.port, upgradeHead('/v1/agent', rogueToken), 'X-Slow: aaaaaaaa\r\n', 50, 10 * HEADERS_MS), HEADERS_MS / 2);
    assert.match(cut.answer, /^HTTP\/1\.1 408 /);
    assert.ok(cut.ms >= HEADERS_MS * 0.9, `cut after ${cut.ms} ms, before the headers timeout`);
  });

  test('a connection that sends nothing is cut at HUB_HEADERS_TIMEOUT', async () => {
    const cut = await meanwhile(slowClient(t.hub.port, '', '', 0, 10 * HEADERS_MS), HEADERS_MS / 2);
    assert.ok(cut.ms >= HEADERS_MS * 0.9, `cut after ${cut.ms} ms`);
    assert.match(cut.answer, /^(HTTP\/1\.1 408 |$)/);
  });

  test('an agent that upgrades but never says hello is closed with HANDSHAKE_TIMEOUT', async () => {
    const started = Date.now();
    const closed = await meanwhile(agentSocket(t.hub.port, rogueToken, () => undefined, 10 * HANDSHAKE_MS), HANDSHAKE_MS / 2);
    assertClosedWith(closed, 'HANDSHAKE_TIMEOUT');
    assert.ok(Date.now() - started >= HANDSHAKE_MS * 0.9 && Date.now() - started < 10 * HANDSHAKE_MS);
  });

  test('an agent that trickles its hello frame a byte at a time is closed with HANDSHAKE_TIMEOUT', async () => {
    const hello = wsFrame(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'slow', label: 'x'.repeat(100) } }));
    const cut = await meanwhile(slowClient(t.hub.port, upgradeHead('/v1/agent', rogueToken, '\r\n'), hello, 50, 10 * HANDSHAKE_MS), HANDSHAKE_MS / 2);
    assert.match(cut.answer, /^HTTP\/1\.1 101 /);
    // The close frame: 0x88, length, then the close code and `HANDSHAKE_TIMEOUT: ...`.
    const close = cut.answer.slice(cut.answer.indexOf('\r\n\r\n') + 4);
    assert.equal(close.charCodeAt(0), 0x88, 'a close frame');
    assert.equal((close.charCodeAt(2) << 8) | close.charCodeAt(3), ERROR_CODES.HANDSHAKE_TIMEOUT.close);
    assert.match(close.slice(4), /^HANDSHAKE_TIMEOUT: /);
  });

  test('100 KiB of upgrade headers are refused with 431 before any timeout', async () => {
    const head = upgradeHead('/v1/agent', rogueToken, `X-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
    const cut = await slowClient(t.hub.port, head, '', 0, 10 * HEADERS_MS);
    assert.match(cut.answer, /^HTTP\/1\.1 431 /);
    await assertServing();
  });

  describe('a first message past its limit is refused with its code', () => {
    const cases: Array<{ name: string; send: (ws: WebSocket) => void; code: ErrorCode | 1009 }> = [
      {
        name: 'a hello larger than MAX_CONTROL_MESSAGE',
        send: (ws) => ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'x' }, pad: 'x'.repeat(MAX_CONTROL_MESSAGE) })),
        code: 'CONTROL_TOO_LARGE',
      },
      {
        name: 'a header alone announcing MAX_FRAME_PAYLOAD + 1 bytes',
        send: (ws) => {
          const header = encodeFrame(FrameType.DATA, 1);
          header.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 6);
          ws.send(header);
        },
        code: 'FRAME_TOO_LARGE',
      },
      {
        name: 'a frame really carrying MAX_FRAME_PAYLOAD + 1 bytes',
        send: (ws) => {
          const frame = Buffer.alloc(FRAME_HEADER_SIZE + MAX_FRAME_PAYLOAD + 1);
          frame[0] = FrameType.DATA;
          frame.writeUInt32BE(1, 2);
          frame.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 6);
          ws.send(frame);
        },
        code: 'FRAME_TOO_LARGE',
      },
      { name: 'a WebSocket message of 4 MiB (cut by ws, RFC 6455 "message too big")', send: (ws) => ws.send(Buffer.alloc(4 * 1024 * 1024)), code: 1009 },
    ];
    for (const c of cases) {
      test(c.name, async () => {
        const closed = await agentSocket(t.hub.port, rogueToken, c.send, 10 * HANDSHAKE_MS);
        if (typeof c.code === 'number') assert.equal(closed.code, c.code, closed.reason);
        else assertClosedWith(closed, c.code);
        await assertServing();
      });
    }
  });

  test('public-link request headers sent one byte every 50 ms are cut at HUB_HEADERS_TIMEOUT with 408', async () => {
    const cut = await meanwhile(slowClient(t.hub.port, `GET ${linkPath} HTTP/1.1\r\nHost: x\r\n`, 'X-Slow: b\r\n', 50, 10 * HEADERS_MS), HEADERS_MS / 2);
    assert.match(cut.answer, /^HTTP\/1\.1 408 /);
    assert.ok(cut.ms >= HEADERS_MS * 0.9, `cut after ${cut.ms} ms`);
  });

  test('a public-link upload trickling a byte every 50 ms is cut at HUB_REQUEST_TIMEOUT, and its stream with it', async () => {
    const abortedBefore = uploads.aborted;
    const head = `POST ${linkPath}upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`;
    const cut = await meanwhile(slowClient(t.hub.port, head, 'y', 50, 10 * REQUEST_MS), REQUEST_MS / 2);
    assert.match(cut.answer, /^HTTP\/1\.1 408 /);
    assert.ok(cut.ms >= REQUEST_MS * 0.9, `cut after ${cut.ms} ms, before the request timeout`);
    await eventually(async () => uploads.aborted > abortedBefore);
  });

  test('100 KiB of headers to a public link are refused with 431', async () => {
    const cut = await slowClient(t.hub.port, `GET ${linkPath} HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(100 * 1024)}\r\n\r\n`, '', 0, 10 * HEADERS_MS);
    assert.match(cut.answer, /^HTTP\/1\.1 431 /);
    await assertServing();
  });

  describe('a refused upgrade whose client never hangs up is closed by the hub', () => {
    const cases: Array<[string, () => string, RegExp]> = [
      ['a bad agent token', () => upgradeHead('/v1/agent', 'f'.repeat(64), '\r\n'), /^HTTP\/1\.1 401 /],
      ['a path that is no WebSocket endpoint', () => upgradeHead('/v1/nothing', rogueToken, '\r\n'), /^HTTP\/1\.1 404 /],
      ['an unknown public link', () => upgradeHead(`/l/${'a'.repeat(52)}/`, rogueToken, '\r\n'), /^HTTP\/1\.1 404 /],
    ];
    for (const [name, head, status] of cases) {
      test(name, async () => {
        const cut = await slowClient(t.hub.port, head(), '', 0, 10 * HEADERS_MS);
        assert.match(cut.answer, status);
        await assertServing();
      });
    }
  });
});
