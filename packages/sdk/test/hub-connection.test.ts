/**
 * The agent's hub connection against a scripted hub over real sockets: the reconnect backoff grows and resets after
 * a welcome, a refused token ends the agent instead of retrying, and bytes a server sends first (arriving in the same
 * read as OPEN_OK) reach the local client without breaking the connection.
 */

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import {
  ConnectError,
  E2E_TAG_BYTES,
  FrameFlag,
  FrameType,
  encodeFrame,
  encodeJsonFrame,
  generateIdentity,
  generateStaticKey,
  parseAgentMessage,
  parseOffer,
  readJsonPayload,
  signStaticKey,
  type ServiceInfo,
} from '@private-connect/protocol';
import { Agent, HubConnection, type AgentEvent } from '../src/index.js';
import { ExposerSessions } from '../src/e2e/sessions.js';
import { startScriptedHub, type ScriptedConnection, type ScriptedHub } from './support/scripted-hub.js';

const hubs: ScriptedHub[] = [];
after(async () => {
  for (const hub of hubs) await hub.close();
});

function nextEvent<T>(emitter: { once(event: string, fn: (value: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, resolve));
}

describe('HubConnection reconnect backoff', () => {
  test('delays grow with each failed attempt (within the jitter bounds) and start over after a welcome', async () => {
    const failures = 7;
    const hub = await startScriptedHub({
      onConnection(conn, attempt) {
        if (attempt <= failures) return conn.ws.terminate();
        // Attempt failures+1 succeeds, then the hub drops it once: the next delay must be the initial one again.
        conn.welcome();
        if (attempt === failures + 1) setImmediate(() => conn.ws.terminate());
      },
    });
    hubs.push(hub);
    const backoff = { initialMs: 10, maxMs: 60_000 };
    const connection = new HubConnection({ hubUrl: hub.url, token: 'a'.repeat(64), agent: { version: 'test' }, backoff });
    const delays: number[] = [];
    let welcomes = 0;
    const done = new Promise<void>((resolve) => {
      connection.on('disconnected', ({ error, retryInMs }) => {
        assert.equal(error.code, 'HUB_UNREACHABLE');
        delays.push(retryInMs);
      });
      connection.on('connected', () => {
        if (++welcomes === 2) resolve();
      });
    });
    connection.start();
    await done;
    await connection.close();
    assert.equal(delays.length, failures + 1);
    for (let attempt = 0; attempt < failures; attempt++) {
      const ceiling = backoff.initialMs * 2 ** attempt;
      assert.ok(delays[attempt]! >= backoff.initialMs / 2 && delays[attempt]! <= ceiling, `attempt ${attempt}: ${delays[attempt]} not in [5, ${ceiling}]`);
    }
    // Without the reset the ceiling here would be 10 * 2^7 = 1280 ms.
    const afterWelcome = delays[failures]!;
    assert.ok(afterWelcome >= 5 && afterWelcome <= backoff.initialMs, `after a welcome the delay starts over: ${afterWelcome}`);
  });

  for (const [status, code] of [
    [401, 'UNAUTHORIZED'],
    [401, 'TOKEN_EXPIRED'],
    [403, 'FORBIDDEN'],
  ] as const) {
    test(`an upgrade refused with ${status} ${code} is fatal: no retry`, async () => {
      const hub = await startScriptedHub({ refuse: () => ({ status, code, message: `refused: ${code}` }), onConnection: () => undefined });
      hubs.push(hub);
      const connection = new HubConnection({ hubUrl: hub.url, token: 'a'.repeat(64), agent: { version: 'test' }, backoff: { initialMs: 10, maxMs: 20 } });
      let disconnects = 0;
      connection.on('disconnected', () => disconnects++);
      const fatal = nextEvent<ConnectError>(connection, 'fatal');
      const ready = connection.ready();
      connection.start();
      const error = await fatal;
      assert.equal(error.code, code);
      assert.equal(error.message, `refused: ${code}`);
      await assert.rejects(ready, (err: unknown) => err instanceof ConnectError && err.code === code);
      // Many backoff periods later there was still only the one attempt.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(hub.attempts, 1);
      assert.equal(disconnects, 0);
      await connection.close();
    });
  }
});

describe('a service that speaks first', () => {
  const exposer = generateIdentity();
  const exposerStatic = generateStaticKey();
  const keys = { identityKey: exposer.publicKey.toString('base64'), staticKey: exposerStatic.publicKey.toString('base64'), staticSig: signStaticKey(exposer, exposerStatic.publicKey) };
  test('DATA and CLOSE arriving in the same read as OPEN_OK reach the local client; the connection survives', async () => {
    const service: ServiceInfo = { id: 'svc-1', name: 'greeter', target: '127.0.0.1:2222', agentId: 'agent-2', agentLabel: 'server', online: true, keys };
    const greeting = 'SSH-2.0-greeter\r\n';
    let connections = 0;
    let scripted: ScriptedConnection | undefined;
    // The scripted hub plays the exposing agent's part of end-to-end encryption with the SDK's own session code.
    const sessions = new ExposerSessions(exposerStatic);
    const hub = await startScriptedHub({
      onConnection(conn) {
        connections++;
        scripted = conn;
        conn.welcome();
        void (async () => {
          const hello = parseAgentMessage((await conn.waitFrame((f) => f.type === FrameType.CONTROL, 'hello')).payload);
          assert.ok(hello.t === 'hello' && hello.staticKey && hello.identityKey);
          const from = { agentId: 'agent-1', label: 'scripted', identityKey: hello.identityKey, staticKey: hello.staticKey };
          const resolve = await conn.waitRequest('resolve');
          conn.reply(resolve.id, { service });
          const reach = await conn.waitRequest('reach');
          conn.reply(reach.id, { service, tunnelId: 'tunnel-1' });
          void (async () => {
            // The agent asks for the exposing agent's keys before its first handshake.
            for (;;) {
              const again = await conn.waitRequest('resolve');
              conn.reply(again.id, { service });
            }
          })().catch(() => undefined);
          for (;;) {
            const open = await conn.waitFrame((f) => f.type === FrameType.OPEN && !answered.has(f.streamId), 'OPEN');
            answered.add(open.streamId);
            const offer = parseOffer(readJsonPayload(open).e2e);
            const plan = sessions.take({ service: 'greeter', from, e2e: offer });
            const { session, answer } = plan.kind === 'handshake' ? plan.accept() : plan;
            // What a hub relays when the exposed server writes its banner right after accepting:
            // OPEN_OK, the banner and (here) the server's half close, all in one TCP segment; end to end
            // encrypted as the exposing agent would send them (the handshake answer, a record, the end marker).
            const record = (text: string) => {
              const plain = Buffer.from(text);
              const sealed = Buffer.alloc(plain.length + E2E_TAG_BYTES);
              session.sealInto([plain], sealed, 0);
              return encodeFrame(FrameType.DATA, open.streamId, sealed, FrameFlag.ENCRYPTED);
            };
            conn.sendTogether([
              encodeJsonFrame(FrameType.OPEN_OK, open.streamId, { e2e: answer }),
              record(greeting),
              record(''),
              encodeFrame(FrameType.CLOSE, open.streamId),
            ]);
          }
        })().catch(() => undefined);
      },
    });
    hubs.push(hub);
    const answered = new Set<number>();
    const events: AgentEvent[] = [];
    const agent = new Agent({ hubUrl: hub.url, token: 'a'.repeat(64), label: 'test', onEvent: (e) => events.push(e) });
    try {
      const reach = await agent.reach('greeter', { port: 0 });
      for (let i = 0; i < 20; i++) {
        const received = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(reach.port, '127.0.0.1');
          let text = '';
          socket.on('data', (c: Buffer) => (text += c.toString()));
          socket.on('end', () => {
            socket.end();
            resolve(text);
          });
          socket.on('error', reject);
        });
        assert.equal(received, greeting, `connection ${i}`);
      }
      assert.deepEqual(events.filter((e) => e.type === 'disconnected' || e.type === 'stream_refused'), []);
      assert.equal(connections, 1, 'the agent never had to reconnect');
      // Each stream was ended cleanly by the agent (its CLOSE after the client's), never reset.
      const closes = () => scripted!.frames.filter((f) => f.type === FrameType.CLOSE).length;
      await scripted!.waitFrame(() => closes() === 20, 'the agent closing all 20 streams');
      assert.deepEqual(scripted!.frames.filter((f) => f.type === FrameType.RESET), []);
    } finally {
      await agent.close();
    }
  });
});
