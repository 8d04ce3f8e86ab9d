/**
 * GET /v1/events, the dashboard's live stream: a member of X hears X's agents, services and traffic, and never
 * anything of workspace Y, even while Y's agent connects and exposes; credentials are checked like every /v1 route.
 */

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent } from '@private-connect/sdk';
import { keyFingerprint } from '@private-connect/protocol';
import { dbKind } from './support/test-database.js';
import { sessionCookie, startIdentityHub, type IdentityHub } from './support/identity-hub.js';

interface SseEvent {
  event: string;
  data: any;
  raw: string;
}

/** An open event stream: every event received so far, and a way to wait for one. */
interface EventStream {
  status: number;
  events: SseEvent[];
  text(): string;
  next(match: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  ended: Promise<void>;
  close(): void;
}

async function openEvents(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const events: SseEvent[] = [];
  let all = '';
  let buffer = '';
  const waiters = new Set<() => void>();
  const ended = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        const text = decoder.decode(chunk as Uint8Array, { stream: true });
        all += text;
        buffer += text;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data), raw: block });
          for (const wake of waiters) wake();
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    status: res.status,
    events,
    text: () => all,
    ended,
    close: () => abort.abort(),
    next(match, timeoutMs = 8000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${timeoutMs} ms; got ${all}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

describe(`live events (${dbKind})`, () => {
  let h: IdentityHub;
  const x = { workspaceId: '', cookie: '', apiKey: '' };
  const y = { workspaceId: '', cookie: '', apiKey: '' };
  const Y_LABEL = 'y-secret-agent';
  const Y_SERVICE = 'y-secret-db';
  const agents: Agent[] = [];
  let echo: net.Server;
  let echoPort = 0;

  const enrol = async (apiKey: string, label: string) => {
    const answer = await h.request('POST', '/v1/agents/enroll', { headers: { authorization: `Bearer ${apiKey}` }, body: { label } });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body as { agentId: string; token: string };
  };
  const agent = (token: string, label: string) => {
    const a = new Agent({ hubUrl: h.hub.url, token, label });
    agents.push(a);
    return a;
  };

  before(async () => {
    h = await startIdentityHub();
    for (const [who, email] of [[x, 'xavier@example.com'], [y, 'yolanda@example.com']] as const) {
      const signed = await h.signIn(email);
      Object.assign(who, { workspaceId: signed.workspaceId, cookie: signed.cookie });
      const key = await h.request('POST', '/v1/api-keys', { cookie: signed.cookie, body: { name: 'events' } });
      who.apiKey = key.body.key;
    }
    echo = net.createServer((s) => s.on('error', () => undefined).pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as net.AddressInfo).port;
  });

  after(async () => {
    for (const a of agents) await a.close().catch(() => undefined);
    await new Promise((r) => echo?.close(r));
    await h?.dispose();
  });

  test('refuses a caller without credentials (401) and a workspace the user is not a member of (404)', async () => {
    const none = await fetch(`${h.hub.url}/v1/events`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as any).error.code, 'UNAUTHORIZED');
    const other = await fetch(`${h.hub.url}/v1/events?workspace=${y.workspaceId}`, { headers: { cookie: x.cookie } });
    const missing = await fetch(`${h.hub.url}/v1/events?workspace=00000000-0000-4000-8000-000000000000`, { headers: { cookie: x.cookie } });
    assert.equal(other.status, missing.status);
    assert.equal(other.status, 404);
    assert.equal((await other.text()).replace(y.workspaceId, '<REF>'), (await missing.text()).replace('00000000-0000-4000-8000-000000000000', '<REF>'));
    const xAgent = await enrol(x.apiKey, 'x-token-probe');
    const byAgent = await fetch(`${h.hub.url}/v1/events`, { headers: { authorization: `Bearer ${xAgent.token}` } });
    assert.equal(byAgent.status, 403);
  });

  test("X's member hears X's agent and service changes and nothing of Y's agent exposing at the same time", async () => {
    const stream = await openEvents(`${h.hub.url}/v1/events?workspace=${x.workspaceId}`, { cookie: x.cookie });
    try {
      assert.equal(stream.status, 200);
      assert.deepEqual((await stream.next((e) => e.event === 'hello')).data, { workspaceId: x.workspaceId });
      // Y first: its agent connects, exposes and leaves while X listens.
      const yAgent = agent((await enrol(y.apiKey, Y_LABEL)).token, Y_LABEL);
      await yAgent.expose(Y_SERVICE, `127.0.0.1:${echoPort}`);
      await yAgent.close();
      const xEnrolled = await enrol(x.apiKey, 'x-server');
      const xAgent = agent(xEnrolled.token, 'x-server');
      await xAgent.expose('x-db', `127.0.0.1:${echoPort}`);
      const online = await stream.next((e) => e.event === 'agent' && e.data.online === true);
      assert.equal(online.data.id, xEnrolled.agentId);
      assert.equal(online.data.label, 'x-server');
      assert.ok(!Number.isNaN(Date.parse(online.data.at)));
      assert.deepEqual((await stream.next((e) => e.event === 'service' && e.data.online)).data, { name: 'x-db', online: true, agentId: xEnrolled.agentId });
      await xAgent.close();
      assert.deepEqual((await stream.next((e) => e.event === 'service' && !e.data.online)).data, { name: 'x-db', online: false, agentId: xEnrolled.agentId });
      await stream.next((e) => e.event === 'agent' && e.data.online === false);
      for (const mark of [y.workspaceId, Y_LABEL, Y_SERVICE]) assert.ok(!stream.text().includes(mark), `X's stream revealed ${mark}: ${stream.text()}`);
    } finally {
      stream.close();
    }
  });

  test('a stats event reports the bytes relayed to and from a service, and GET /v1/services the same counters', async () => {
    const stream = await openEvents(`${h.hub.url}/v1/events`, { authorization: `Bearer ${x.apiKey}` });
    const server = agent((await enrol(x.apiKey, 'x-echo')).token, 'x-echo');
    const client = agent((await enrol(x.apiKey, 'x-laptop')).token, 'x-laptop');
    try {
      await server.expose('echo', `127.0.0.1:${echoPort}`);
      const reach = await client.reach('echo', { port: 0 });
      const socket = net.connect(reach.port, '127.0.0.1');
      const payload = Buffer.alloc(5000, 7);
      socket.write(payload);
      let got = 0;
      await new Promise<void>((resolve) => socket.on('data', (d) => (got += d.length) >= payload.length && resolve()));
      const stats = await stream.next((e) => e.event === 'stats' && e.data.services.some((s: any) => s.name === 'echo' && s.bytesIn >= 5000 && s.bytesOut >= 5000));
      const echoStats = stats.data.services.find((s: any) => s.name === 'echo');
      assert.equal(echoStats.streams, 1);
      assert.deepEqual(Object.keys(echoStats).sort(), ['bytesIn', 'bytesOut', 'directBytesIn', 'directBytesOut', 'directStreams', 'encryptedStreams', 'name', 'streams']);
      const listed = await h.request('GET', '/v1/services', { headers: { authorization: `Bearer ${x.apiKey}` } });
      const row = listed.body.services.find((s: any) => s.name === 'echo');
      assert.equal(row.streams, 1);
      assert.ok(row.bytesIn >= 5000 && row.bytesOut >= 5000, JSON.stringify(row));
      socket.destroy();
      await reach.close();
    } finally {
      stream.close();
    }
  });

  test('GET /v1/agents shows platform, a masked address, the token expiry and the creation time', async () => {
    const answer = await h.request('GET', '/v1/agents', { headers: { authorization: `Bearer ${x.apiKey}` } });
    assert.equal(answer.status, 200);
    const seen = answer.body.agents.find((a: any) => a.lastIp !== null);
    assert.ok(seen, JSON.stringify(answer.body));
    assert.match(seen.lastIp, /x\.x|:x:x/);
    assert.ok(!JSON.stringify(answer.body).includes('127.0.0.1'), 'no whole address');
    for (const a of answer.body.agents) {
      assert.deepEqual(Object.keys(a).sort(), ['createdAt', 'enrolledBy', 'fingerprint', 'hostname', 'id', 'identityKey', 'label', 'lastIp', 'lastSeenAt', 'online', 'paths', 'platform', 'staticKey', 'tokenExpiresAt', 'version']);
      assert.ok(Date.parse(a.tokenExpiresAt) > Date.parse(a.createdAt));
    }
    // Agents that connected registered their end-to-end identity key; the API shows it with its fingerprint.
    const keyed = answer.body.agents.filter((a: any) => a.identityKey !== null);
    assert.ok(keyed.length > 0, JSON.stringify(answer.body));
    for (const a of keyed) assert.equal(a.fingerprint, keyFingerprint(a.identityKey));
  });

  test('a stream ends when the session is signed out, and one more than the limit per principal is refused with 429', async () => {
    const signed = await h.signIn('short-lived@example.com');
    const key = await h.request('POST', '/v1/api-keys', { cookie: signed.cookie, body: { name: 'k' } });
    const stream = await openEvents(`${h.hub.url}/v1/events`, { cookie: signed.cookie });
    await stream.next((e) => e.event === 'hello');
    const out = await h.request('POST', '/v1/auth/logout', { cookie: signed.cookie });
    assert.ok(out.status < 400, String(out.status));
    // The next event of the workspace finds the session gone: the stream ends instead of delivering it.
    const a = agent((await enrol(key.body.key, 'after-logout')).token, 'after-logout');
    await a.connection.ready();
    await stream.ended;
    assert.ok(!stream.events.some((e) => e.event === 'agent'), stream.text());
    stream.close();

    const open: Awaited<ReturnType<typeof openEvents>>[] = [];
    try {
      for (let i = 0; i < 10; i++) open.push(await openEvents(`${h.hub.url}/v1/events`, { authorization: `Bearer ${y.apiKey}` }));
      assert.ok(open.every((s) => s.status === 200));
      const refused = await fetch(`${h.hub.url}/v1/events`, { headers: { authorization: `Bearer ${y.apiKey}` } });
      assert.equal(refused.status, 429);
      assert.equal(((await refused.json()) as any).error.code, 'RATE_LIMITED');
    } finally {
      for (const s of open) s.close();
    }
  });

  /** Waits for the stream to end; the guard only keeps a broken hub from hanging the suite (a recheck comes every 30 s). */
  const endsPromptly = (stream: EventStream, what: string) =>
    Promise.race([
      stream.ended,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: the stream did not end; got ${stream.text()}`)), 15_000).unref()),
    ]);

  test("a removed member's stream ends at once, with no other event of the workspace to wait for", async () => {
    const owner = await h.signIn('events-owner@example.com');
    const email = 'events-member@example.com';
    const sent = await h.request('POST', `/v1/workspaces/${owner.workspaceId}/invites`, { cookie: owner.cookie, body: { email, role: 'member' } });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const accepted = await h.request('POST', `/v1/auth/verify?token=${h.lastLinkToken(email)}`);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    const member = { cookie: sessionCookie(accepted.headers)!, userId: accepted.body.userId as string };
    const memberStream = await openEvents(`${h.hub.url}/v1/events?workspace=${owner.workspaceId}`, { cookie: member.cookie });
    const ownerStream = await openEvents(`${h.hub.url}/v1/events?workspace=${owner.workspaceId}`, { cookie: owner.cookie });
    try {
      assert.equal(memberStream.status, 200);
      await memberStream.next((e) => e.event === 'hello');
      await ownerStream.next((e) => e.event === 'hello');
      const removed = await h.request('DELETE', `/v1/workspaces/${owner.workspaceId}/members/${member.userId}`, { cookie: owner.cookie });
      assert.equal(removed.status, 204, JSON.stringify(removed.body));
      await endsPromptly(memberStream, 'the removed member');
      // The owner's own stream of the same workspace goes on: it still hears the workspace's next event.
      const key = await h.request('POST', '/v1/api-keys', { cookie: owner.cookie, body: { name: 'after-removal' } });
      const a = agent((await enrol(key.body.key, 'after-removal')).token, 'after-removal');
      await a.connection.ready();
      await ownerStream.next((e) => e.event === 'agent' && e.data.label === 'after-removal');
      assert.ok(!memberStream.events.some((e) => e.event === 'agent'), memberStream.text());
    } finally {
      memberStream.close();
      ownerStream.close();
    }
  });

  test('a stream ends at once when its session signs out, by the API or the sign-out page', async () => {
    for (const [how, path] of [['the API', '/v1/auth/logout'], ['the page', '/logout']] as const) {
      const signed = await h.signIn(`events-signout-${how === 'the API' ? 'api' : 'page'}@example.com`);
      const stream = await openEvents(`${h.hub.url}/v1/events`, { cookie: signed.cookie });
      try {
        await stream.next((e) => e.event === 'hello');
        const out = await h.request('POST', path, { cookie: signed.cookie });
        assert.ok(out.status < 400, `${how}: ${out.status} ${JSON.stringify(out.body)}`);
        await endsPromptly(stream, `signed out by ${how}`);
      } finally {
        stream.close();
      }
    }
  });

  test('closing the hub ends open event streams', async () => {
    const stream = await openEvents(`${h.hub.url}/v1/events`, { authorization: `Bearer ${x.apiKey}` });
    await stream.next((e) => e.event === 'hello');
    h.hub.events.close();
    await stream.ended;
  });
});
