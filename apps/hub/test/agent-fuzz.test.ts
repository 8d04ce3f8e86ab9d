/**
 * Fuzzing the hub's agent endpoint over real WebSockets: a client with a valid agent token sends messages generated
 * by fast-check (garbage, mutated frames, near-valid and hostile hello / request / OPEN JSON, before or after a real
 * hello), then one frame of an unknown type. Every such connection must end with a stable code (close code of the
 * table + `CODE: message` reason, never INTERNAL), and a well-behaved agent on the same hub keeps getting answers.
 * FUZZ_WS_RUNS sets the number of connections (default 150), FUZZ_SEED the seed.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { ERROR_CODES, FrameType, PROTOCOL_VERSION, encodeJsonFrame, parseCloseReason } from '@private-connect/protocol';
import { agentMessage } from '@private-connect/protocol/fuzz';
import { eventually, startTestHub, type TestAgentSocket, type TestHub } from './support/test-hub.js';

const numRuns = Number(process.env.FUZZ_WS_RUNS) || 150;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20_260_107;
/** How long the hub may take to close a connection after its last message (a hang guard, not a performance bound). */
const GUARD_MS = 10_000;

/** A frame header of type 0xff: whatever the messages before it did, the hub must close on it. */
const UNKNOWN_TYPE = Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** Connects with `token`, optionally says hello, sends `messages` and the unknown frame; resolves with the close. */
function fuzzConnection(port: number, token: string, hello: boolean, messages: Buffer[]): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/agent`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const guard = setTimeout(() => {
      ws.terminate();
      reject(new Error(`the hub did not close a fuzzed connection within ${GUARD_MS} ms`));
    }, GUARD_MS);
    const sendAll = () => {
      for (const m of [...messages, UNKNOWN_TYPE]) ws.send(m, { binary: true }, () => undefined);
    };
    ws.on('open', () => {
      if (!hello) return sendAll();
      ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'fuzz' } }));
      ws.once('message', sendAll); // the welcome
    });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.on('close', (code, reason) => {
      clearTimeout(guard);
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
}

describe(`fuzzing the agent endpoint over WebSockets (${numRuns} connections, seed ${seed})`, () => {
  let t: TestHub;
  let good: TestAgentSocket;
  let rogue: { token: string; agentId: string };

  before(async () => {
    t = await startTestHub(new Date(), { HUB_HANDSHAKE_TIMEOUT: '3s' });
    good = await t.connect((await t.enrol('good-agent')).token);
    rogue = await t.enrol('fuzzer');
  });

  after(async () => {
    good?.ws.terminate();
    await t?.close();
  });

  test('every fuzzed connection is closed with a stable code, and a well-behaved agent keeps being answered', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(agentMessage, { minLength: 1, maxLength: 8 }), async (hello, messages) => {
        const closed = await fuzzConnection(t.hub.port, rogue.token, hello, messages);
        const error = parseCloseReason(closed.reason);
        assert.ok(error, `the close reason must be "CODE: message", got ${closed.code} "${closed.reason}"`);
        assert.notEqual(error.code, 'INTERNAL', closed.reason);
        // An agent's GOAWAY is a goodbye: the hub answers it with a normal close.
        const expected = error.code === 'SHUTTING_DOWN' ? 1000 : ERROR_CODES[error.code].close;
        assert.equal(closed.code, expected, `close code for ${closed.reason}`);
        seen.set(error.code, (seen.get(error.code) ?? 0) + 1);
        const reply = await good.request('list', {});
        assert.equal((reply as { ok: boolean }).ok, true, JSON.stringify(reply));
      }),
      { numRuns, seed },
    );
    // The messages reached past the frame decoder: the JSON parsers refused some, not only the header checks.
    assert.ok((seen.get('PROTOCOL_ERROR') ?? 0) > 0 && (seen.get('BAD_MESSAGE') ?? 0) > 0, JSON.stringify([...seen]));
    await eventually(async () => ![...t.hub.connections].some((conn) => conn.agentId === rogue.agentId));
    assert.equal(good.ws.readyState, WebSocket.OPEN);
  });
});
