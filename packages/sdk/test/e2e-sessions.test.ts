/**
 * End-to-end sessions (src/e2e/sessions.ts) between an opening and an exposing agent, with the real Noise IK
 * handshake and real keys, the hub's part played by hand: one handshake per pair, streams inside it by number, what
 * either side refuses, and when a session is made again (time, volume, streams) or ended.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConnectError,
  E2E_TAG_BYTES,
  generateIdentity,
  generateStaticKey,
  signStaticKey,
  type E2EOffer,
  type E2ESession,
  type OpenNotice,
} from '@private-connect/protocol';
import { streamHandshakes } from '../src/agent/stream-handshake.js';
import { ExposerSessions, OpenerSessions, REPLAY_WINDOW, type OpenerPlan, type ServiceKeys, type SessionLimits } from '../src/e2e/sessions.js';

/** One agent's keys, as its hello registers them with the hub. */
function agentKeys() {
  const identity = generateIdentity();
  const staticKey = generateStaticKey();
  return {
    identity,
    staticKey,
    keys: { identityKey: identity.publicKey.toString('base64'), staticKey: staticKey.publicKey.toString('base64'), staticSig: signStaticKey(identity, staticKey.publicKey) },
  };
}

/** An opener and an exposer, and the hub between them (lookups counted, OPEN notices built as the hub builds them). */
function pairOfAgents(limits: Partial<SessionLimits> = {}, options: { verifyPeer?: () => void; listed?: ServiceKeys['keys'] } = {}) {
  const opener = agentKeys();
  const exposer = agentKeys();
  const lookups: string[] = [];
  const openerSessions = new OpenerSessions(
    opener.staticKey,
    async (service) => {
      lookups.push(service);
      return { agentId: 'exposer-1', label: 'db-server', keys: options.listed ?? exposer.keys };
    },
    options.verifyPeer ?? (() => undefined),
    limits,
  );
  const exposerSessions = new ExposerSessions(exposer.staticKey, limits);
  const notice = (offer: E2EOffer, extra: Partial<OpenNotice> = {}): OpenNotice => ({
    service: 'db',
    from: { agentId: 'opener-1', label: 'laptop', identityKey: opener.keys.identityKey, staticKey: opener.keys.staticKey },
    e2e: offer,
    ...extra,
  });
  return { opener, exposer, openerSessions, exposerSessions, lookups, notice };
}

/** Opens one stream end to end: the opener's plan, the exposer's answer, the opener's check. Returns both record layers. */
async function openStream(agents: ReturnType<typeof pairOfAgents>, service = 'db'): Promise<{ plan: OpenerPlan; ours: E2ESession; theirs: E2ESession }> {
  const plan = await agents.openerSessions.plan(service);
  const taken = agents.exposerSessions.take(agents.notice(plan.offer, { service: service.split('/').pop()! }));
  if (taken.kind === 'handshake') {
    assert.equal(plan.kind, 'handshake');
    const { session, answer } = taken.accept();
    const ours = (plan as Extract<OpenerPlan, { kind: 'handshake' }>).finish(answer.hs);
    return { plan, ours, theirs: session };
  }
  assert.equal(plan.kind, 'stream');
  return { plan, ours: (plan as Extract<OpenerPlan, { kind: 'stream' }>).session, theirs: taken.session };
}

function seal(session: E2ESession, text: string): Buffer {
  const plain = Buffer.from(text);
  const out = Buffer.alloc(plain.length + E2E_TAG_BYTES);
  session.sealInto([plain], out, 0);
  return out;
}

function assertCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ConnectError && err.code === code && (!message || message.test(err.message)));
}

async function assertRejects(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof ConnectError && err.code === code);
}

describe('end-to-end sessions', () => {
  test('one handshake for the pair; later streams open by number, each with keys of its own, both ways', async () => {
    const agents = pairOfAgents();
    const first = await openStream(agents);
    assert.equal(first.plan.kind, 'handshake');
    assert.equal(first.theirs.open(seal(first.ours, 'SELECT 1')).toString(), 'SELECT 1');
    assert.equal(first.ours.open(seal(first.theirs, 'one row')).toString(), 'one row');
    const second = await openStream(agents);
    assert.equal(second.plan.kind, 'stream');
    assert.equal((second.plan.offer as { n: number }).n, 1);
    assert.equal(second.theirs.open(seal(second.ours, 'hello')).toString(), 'hello');
    // A record of one stream does not open in another stream of the same session (the hub cannot splice them).
    assertCode(() => second.theirs.open(seal(first.ours, 'spliced')), 'E2E_DECRYPT_FAILED');
    const third = await openStream(agents);
    assert.equal((third.plan.offer as { n: number }).n, 2);
    assert.equal(agents.lookups.length, 1, 'the hub is asked for the keys once');
    assert.equal(agents.exposerSessions.size, 1);
  });

  test('the stream number is taken once: a replayed or older open of a session is refused', async () => {
    const agents = pairOfAgents();
    await openStream(agents);
    const plan = await agents.openerSessions.plan('db');
    agents.exposerSessions.take(agents.notice(plan.offer));
    assertCode(() => agents.exposerSessions.take(agents.notice(plan.offer)), 'E2E_HANDSHAKE_FAILED', /replayed/);
    const later = await agents.openerSessions.plan('db');
    agents.exposerSessions.take(agents.notice(later.offer));
    assertCode(() => agents.exposerSessions.take(agents.notice({ ...later.offer, n: 1 } as E2EOffer)), 'E2E_HANDSHAKE_FAILED');
  });

  test('opens of a session may arrive out of order within REPLAY_WINDOW, each number once; older ones are refused', async () => {
    const agents = pairOfAgents();
    await openStream(agents);
    const plans = [];
    for (let i = 0; i < 5; i++) plans.push(await agents.openerSessions.plan('db'));
    // Sent in another order than numbered (as 200 opens made at once can be): all are taken, each once.
    for (const i of [4, 0, 2, 1, 3]) assert.equal(agents.exposerSessions.take(agents.notice(plans[i]!.offer)).kind, 'stream');
    for (const plan of plans) assertCode(() => agents.exposerSessions.take(agents.notice(plan.offer)), 'E2E_HANDSHAKE_FAILED', /replayed open/);
    const sid = (plans[0]!.offer as { sid: string }).sid;
    assert.equal(agents.exposerSessions.take(agents.notice({ v: 2, sid, n: REPLAY_WINDOW + 10 })).kind, 'stream');
    assertCode(() => agents.exposerSessions.take(agents.notice({ v: 2, sid, n: 9 })), 'E2E_HANDSHAKE_FAILED', /older than the newest/);
    assert.equal(agents.exposerSessions.take(agents.notice({ v: 2, sid, n: 20 })).kind, 'stream', 'within the window: taken');
  });

  test('a session is bound to its opener, its share and the service in each stream\'s keys', async () => {
    const agents = pairOfAgents();
    await openStream(agents);
    const someoneElse = agentKeys();
    const plan = await agents.openerSessions.plan('db');
    // The hub says another agent opens with this session's id: refused.
    assertCode(
      () => agents.exposerSessions.take(agents.notice(plan.offer, { from: { agentId: 'intruder', label: 'x', identityKey: someoneElse.keys.identityKey, staticKey: someoneElse.keys.staticKey } })),
      'E2E_HANDSHAKE_FAILED',
    );
    // Through a share the session was not made through: refused.
    const again = await agents.openerSessions.plan('db');
    assertCode(() => agents.exposerSessions.take(agents.notice(again.offer, { share: { id: 'share-1', name: 'partner' } })), 'E2E_HANDSHAKE_FAILED');
    // The hub moves a stream to another service of the agent: the keys differ, the first record fails.
    const moved = await agents.openerSessions.plan('db');
    const taken = agents.exposerSessions.take(agents.notice(moved.offer, { service: 'admin' }));
    assert.equal(taken.kind, 'stream');
    assertCode(() => taken.kind === 'stream' && taken.session.open(seal((moved as Extract<OpenerPlan, { kind: 'stream' }>).session, 'x')), 'E2E_DECRYPT_FAILED');
  });

  test('the exposing agent refuses a handshake that proves another static key than the hub registered, or names another service', async () => {
    const agents = pairOfAgents();
    const plan = await agents.openerSessions.plan('db');
    const other = agentKeys();
    assertCode(
      () => agents.exposerSessions.take(agents.notice(plan.offer, { from: { agentId: 'opener-1', label: 'laptop', identityKey: agents.opener.keys.identityKey, staticKey: other.keys.staticKey } })),
      'E2E_HANDSHAKE_FAILED',
      /not the one the hub registered/,
    );
    assertCode(() => agents.exposerSessions.take(agents.notice(plan.offer, { service: 'admin' })), 'E2E_HANDSHAKE_FAILED', /asked for "db"/);
    assertCode(() => agents.exposerSessions.take(agents.notice(plan.offer, { from: { agentId: 'opener-1', label: 'laptop' } })), 'E2E_HANDSHAKE_FAILED', /no session key/);
    // A handshake made for another agent's static key does not decrypt here.
    const elsewhere = new ExposerSessions(other.staticKey);
    assertCode(() => elsewhere.take(agents.notice(plan.offer)), 'E2E_HANDSHAKE_FAILED', /does not verify/);
    // One bit flipped in IK message 1.
    const hs = Buffer.from((plan.offer as { hs: string }).hs, 'base64');
    hs[40]! ^= 1;
    assertCode(() => agents.exposerSessions.take(agents.notice({ v: 2, hs: hs.toString('base64') })), 'E2E_HANDSHAKE_FAILED');
  });

  test('the opener refuses an answer that was altered, or made by another key, and the next open makes a new handshake', async () => {
    const agents = pairOfAgents();
    const plan = await agents.openerSessions.plan('db');
    assert.equal(plan.kind, 'handshake');
    const taken = agents.exposerSessions.take(agents.notice(plan.offer));
    assert.equal(taken.kind, 'handshake');
    const answer = Buffer.from(taken.accept().answer.hs, 'base64');
    answer[5]! ^= 0x80;
    assertCode(() => plan.finish(answer.toString('base64')), 'E2E_HANDSHAKE_FAILED');
    assertCode(() => plan.finish(undefined), 'E2E_HANDSHAKE_FAILED');
    const next = await agents.openerSessions.plan('db');
    assert.equal(next.kind, 'handshake', 'no session was kept from the failed answer');
  });

  test('the opener checks the listed static key against the identity\'s signature and the pin before any handshake', async () => {
    const forger = agentKeys();
    const genuine = agentKeys();
    // The real identity with the hub's own static key: the signature does not bind them.
    const swapped = pairOfAgents({}, { listed: { ...genuine.keys, staticKey: forger.keys.staticKey } });
    await assertRejects(swapped.openerSessions.plan('db'), 'E2E_HANDSHAKE_FAILED');
    // A validly signed key of another identity: the pin decides (here it refuses, as known_agents.json would).
    const pinned = pairOfAgents({}, {
      listed: forger.keys,
      verifyPeer: () => {
        throw new ConnectError('E2E_KEY_CHANGED', 'pinned with another key');
      },
    });
    await assertRejects(pinned.openerSessions.plan('db'), 'E2E_KEY_CHANGED');
  });

  test('opens that need a session being made wait for it, and make their own when it fails', async () => {
    const agents = pairOfAgents();
    const [a, b] = [agents.openerSessions.plan('db'), agents.openerSessions.plan('db')];
    const first = await a;
    assert.equal(first.kind, 'handshake');
    const taken = agents.exposerSessions.take(agents.notice(first.offer));
    assert.equal(taken.kind, 'handshake');
    first.finish(taken.accept().answer.hs);
    const second = await b;
    assert.equal(second.kind, 'stream', 'the second open used the session the first made');

    const failing = pairOfAgents();
    const [c, d] = [failing.openerSessions.plan('db'), failing.openerSessions.plan('db')];
    const made = await c;
    assert.equal(made.kind, 'handshake');
    made.fail();
    assert.equal((await d).kind, 'handshake');
  });

  test('a new session after rekeyAfterMs, after rekeyAfterBytes, after rekeyAfterStreams; the exposer refuses old ones after rejectAfterMs', async () => {
    const timed = pairOfAgents({ rekeyAfterMs: 40, rejectAfterMs: 80 });
    const first = await openStream(timed);
    assert.equal((await openStream(timed)).plan.kind, 'stream');
    const oldStream = await timed.openerSessions.plan('db');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const renewed = await openStream(timed);
    assert.equal(renewed.plan.kind, 'handshake', 'older than rekeyAfterMs: a new handshake');
    await new Promise((resolve) => setTimeout(resolve, 40));
    assertCode(() => timed.exposerSessions.take(timed.notice(oldStream.offer)), 'E2E_SESSION_UNKNOWN', /ended|restarted/);
    assert.equal(first.theirs.open(seal(first.ours, 'still')).toString(), 'still', 'streams already open keep their keys');

    const volume = pairOfAgents({ rekeyAfterBytes: 1000 });
    const big = await openStream(volume);
    // The volume counts both directions of every stream of the session.
    big.theirs.open(seal(big.ours, 'x'.repeat(600)));
    assert.equal((await openStream(volume)).plan.kind, 'stream');
    big.ours.open(seal(big.theirs, 'y'.repeat(600)));
    assert.equal((await openStream(volume)).plan.kind, 'handshake', 'past rekeyAfterBytes: a new handshake');

    const counted = pairOfAgents({ rekeyAfterStreams: 2 });
    await openStream(counted);
    assert.equal((await openStream(counted)).plan.kind, 'stream');
    assert.equal((await openStream(counted)).plan.kind, 'stream');
    assert.equal((await openStream(counted)).plan.kind, 'handshake', 'after rekeyAfterStreams streams: a new handshake');
  });

  test('end_sessions: the exposer drops sessions of a revoked agent or share, the opener those of an agent (and asks for its keys again)', async () => {
    const agents = pairOfAgents();
    await openStream(agents);
    const plan = await agents.openerSessions.plan('db');
    assert.equal(agents.exposerSessions.endWith({ agentId: 'someone-else' }), 0);
    assert.equal(agents.exposerSessions.endWith({ agentId: 'opener-1' }), 1);
    assertCode(() => agents.exposerSessions.take(agents.notice(plan.offer)), 'E2E_SESSION_UNKNOWN');
    assert.equal(agents.openerSessions.endWith('exposer-1'), 1);
    assert.equal((await agents.openerSessions.plan('db')).kind, 'handshake');
    assert.equal(agents.lookups.length, 2, 'the keys are asked for again after the agent\'s sessions ended');

    const shared = pairOfAgents();
    const viaShare = await shared.openerSessions.plan('partner/db');
    const taken = shared.exposerSessions.take(shared.notice(viaShare.offer, { share: { id: 'share-9', name: 'partner' } }));
    assert.equal(taken.kind, 'handshake');
    (viaShare as Extract<OpenerPlan, { kind: 'handshake' }>).finish(taken.accept().answer.hs);
    const next = await shared.openerSessions.plan('partner/db');
    assert.equal(shared.exposerSessions.endWith({ shareId: 'share-9' }), 1);
    assertCode(() => shared.exposerSessions.take(shared.notice(next.offer, { share: { id: 'share-9', name: 'partner' } })), 'E2E_SESSION_UNKNOWN');
  });

  test('opens made together ask the hub for the keys once (it ends a connection with more than 64 unanswered requests)', async () => {
    const agents = pairOfAgents();
    const opens = Array.from({ length: 200 }, () => agents.openerSessions.plan('db'));
    const first = await Promise.race(opens);
    assert.equal(first.kind, 'handshake');
    const taken = agents.exposerSessions.take(agents.notice(first.offer));
    assert.equal(taken.kind, 'handshake');
    first.finish(taken.accept().answer.hs);
    const plans = await Promise.all(opens);
    assert.equal(agents.lookups.length, 1);
    assert.equal(plans.filter((p) => p.kind === 'handshake').length, 1, 'one handshake; the others waited for it and use its session');
  });

  test('when the handshake they waited for fails, waiting opens make theirs at once, not one after another', async () => {
    const agents = pairOfAgents();
    const opens = [agents.openerSessions.plan('db'), agents.openerSessions.plan('db'), agents.openerSessions.plan('db')];
    const first = await opens[0]!;
    assert.equal(first.kind, 'handshake');
    first.fail();
    // Neither waits for the other's handshake (which nobody answers here): both are handed out now.
    const [second, third] = await Promise.all([opens[1]!, opens[2]!]);
    assert.deepEqual([second.kind, third.kind], ['handshake', 'handshake']);
  });

  test('an opener that takes plaintext offers no handshake to an exposing agent that takes plaintext too', async () => {
    const opener = agentKeys();
    const exposer = agentKeys();
    const lookup = async () => ({ agentId: 'exposer-1', label: 'db-server', keys: exposer.keys, plaintext: true });
    const options = { identity: opener.identity, staticKey: opener.staticKey, verifyPeer: () => undefined };
    const both = streamHandshakes({ ...options, allowPlaintext: true }, lookup);
    assert.deepEqual(await both.offer('db'), { payload: { service: 'db', plain: true }, plan: undefined });
    // Without --no-e2e here, the offer carries a handshake whatever the other side takes.
    const strict = streamHandshakes({ ...options, allowPlaintext: false }, lookup);
    const offer = await strict.offer('db');
    assert.equal(offer.plan?.kind, 'handshake');
    assert.equal((offer.payload as { plain?: boolean }).plain, undefined);
  });

  test('E2E_SESSION_UNKNOWN drops the session on the opener\'s side too', async () => {
    const agents = pairOfAgents();
    await openStream(agents);
    const plan = await agents.openerSessions.plan('db');
    assert.equal(plan.kind, 'stream');
    agents.openerSessions.forgetSession(plan.sid);
    assert.equal((await agents.openerSessions.plan('db')).kind, 'handshake');
  });
});
