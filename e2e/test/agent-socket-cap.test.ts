/**
 * The cap on agent WebSockets per agent token (HUB_MAX_SOCKETS_PER_AGENT_TOKEN), with raw sockets against a hub
 * process: the socket over the cap is refused at the upgrade with 429 TOO_MANY_CONNECTIONS, other tokens are not
 * affected, a closed socket frees its place, and a reconnecting agent whose old socket died unnoticed gets in.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FrameType, decodeFrame, encodeFrame } from '@private-connect/protocol';
import {
  UpgradeRefused,
  connectRawAgent,
  enrolViaApi,
  eventually,
  removeDirs,
  startHubProcess,
  type HubProcess,
  type RawAgent,
} from '../src/index.js';

const CAP = 3;

/** Answers the hub's PINGs, as a live agent does. */
function answerPings(agent: RawAgent): RawAgent {
  agent.ws.on('message', (data: Buffer) => {
    const frame = decodeFrame(Buffer.from(data));
    if (frame.type === FrameType.PING) agent.send(encodeFrame(FrameType.PONG, 0, frame.payload));
  });
  return agent;
}

/** `promise`, or a failure saying `what` after `ms` (so that a missing close fails the test instead of hanging it). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The hub's refusal of an upgrade with `token`, or a failure when it accepted it. */
async function refusal(hub: HubProcess, token: string): Promise<UpgradeRefused> {
  try {
    const agent = await connectRawAgent(hub.url, token);
    await agent.close();
  } catch (err) {
    if (err instanceof UpgradeRefused) return err;
    throw err;
  }
  assert.fail('the hub accepted a socket over the cap');
}

describe('WebSockets per agent token', () => {
  let hub: HubProcess;
  const open: RawAgent[] = [];

  before(async () => {
    // A short ping interval makes a dead socket show quickly; the long idle timeout keeps the hub's own sweep
    // from closing it, so only the cap's handling of a reconnect can.
    hub = await startHubProcess({ env: { HUB_MAX_SOCKETS_PER_AGENT_TOKEN: String(CAP), HUB_PING_INTERVAL: '300ms', HUB_IDLE_TIMEOUT: '10m' } });
  });

  after(async () => {
    for (const agent of open) agent.ws.terminate();
    await hub?.stop();
    await removeDirs(hub?.dataDir);
  });

  test('refuses the socket over the cap with 429 TOO_MANY_CONNECTIONS; other tokens still connect; a closed socket frees its place', async () => {
    const { token } = await enrolViaApi(hub.url, hub.apiKey, 'capped');
    const mine: RawAgent[] = [];
    for (let i = 0; i < CAP; i++) {
      const agent = answerPings(await connectRawAgent(hub.url, token));
      await agent.handshake();
      mine.push(agent);
    }
    open.push(...mine);
    const refused = await refusal(hub, token);
    assert.equal(refused.status, 429);
    const body = refused.body as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'TOO_MANY_CONNECTIONS');
    assert.match(body.error.message, new RegExp(`${CAP}`));
    // Sockets that never finish the handshake count too: the cap holds before the hello.
    const other = await enrolViaApi(hub.url, hub.apiKey, 'other');
    const bare: RawAgent[] = [];
    for (let i = 0; i < CAP; i++) bare.push(answerPings(await connectRawAgent(hub.url, other.token)));
    open.push(...bare);
    assert.equal((await refusal(hub, other.token)).status, 429);
    // The refusals did not touch the open sockets.
    for (const agent of mine) assert.equal(agent.ws.readyState, agent.ws.OPEN);
    const third = await enrolViaApi(hub.url, hub.apiKey, 'third');
    const unaffected = await connectRawAgent(hub.url, third.token);
    await unaffected.handshake();
    await unaffected.close();

    await mine[0]!.close();
    const again = answerPings(await eventually(() => connectRawAgent(hub.url, token))); // refused (429) until there is room
    open.push(again);
    await again.handshake();
  });

  test('a reconnecting agent is not locked out by its old sockets that died unnoticed: they are replaced (REPLACED)', async () => {
    const { token } = await enrolViaApi(hub.url, hub.apiKey, 'reconnecting');
    const live = answerPings(await connectRawAgent(hub.url, token));
    await live.handshake();
    // Two sockets of the agent that went silent (the network dropped them; the hub has not noticed yet).
    const dead: RawAgent[] = [];
    for (let i = 0; i < CAP - 1; i++) {
      const agent = await connectRawAgent(hub.url, token);
      await agent.handshake();
      dead.push(agent);
    }
    open.push(live, ...dead);
    // The reconnect gets in (once the dead sockets have missed a ping), and takes the place of the silent one.
    const fresh = answerPings(await eventually(() => connectRawAgent(hub.url, token))); // refused (429) until there is room
    open.push(fresh);
    await fresh.handshake();
    // The other silent socket makes room for the next reconnect; each one replaced is told so (close 4409).
    const next = answerPings(await connectRawAgent(hub.url, token));
    open.push(next);
    await next.handshake();
    for (const closed of await within(Promise.all(dead.map((d) => d.closed)), 15_000, 'the silent sockets were not closed')) {
      assert.equal(closed.code, 4409);
      assert.equal(closed.error?.code, 'REPLACED');
    }
    assert.equal(live.ws.readyState, live.ws.OPEN, 'the live socket stays');
    // Live sockets are never replaced: with CAP of them open, the next is refused.
    assert.equal((await refusal(hub, token)).status, 429);
  });
});
