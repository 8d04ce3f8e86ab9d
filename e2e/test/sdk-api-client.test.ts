/**
 * The SDK's ApiClient against a real hub process: it covers every route the hub documents (its request() takes
 * every route of the contract, ROUTE_SCHEMAS, held to /openapi.json), and each method works end to end with the
 * credential it needs: an API key, an agent token, a user's session from a magic link (signIn), the device-code
 * flow approved by that user. What must be refused is refused with the hub's code: a wrong key, an agent token on
 * the event stream, a request the schema rejects, a signed-out session.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, ApiClient, deviceLogin } from '@private-connect/sdk';
import { ROUTE_SCHEMAS, type HubStreamEvent } from '@private-connect/api';
import { ConnectError } from '@private-connect/protocol';
import { eventually, removeDirs, startHubProcess, tempDir, type HubProcess } from '../src/index.js';

/** The token of the newest magic link the hub printed for `email` (no SMTP_URL: links go to stderr). */
async function linkToken(hub: HubProcess, email: string, after = 0): Promise<string> {
  const line = await eventually(async () => {
    const lines = hub.proc.stderr().split('\n').filter((l) => l.includes(` link for ${email}: `));
    if (lines.length <= after) throw new Error(`no new link printed for ${email}`);
    return lines.at(-1)!;
  });
  return new URL(line.trim().split(' ').pop()!).searchParams.get('token')!;
}

const refusedWith = (code: string) => (err: unknown) => err instanceof ConnectError && err.code === code;

describe('the SDK ApiClient covers the whole REST API', () => {
  let hub: HubProcess;
  let home: string;
  let admin: ApiClient;
  const agents: Agent[] = [];

  before(async () => {
    hub = await startHubProcess();
    home = await tempDir('api-client');
    admin = new ApiClient({ hubUrl: hub.url, credential: hub.apiKey });
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await hub?.stop();
    await removeDirs(hub?.dataDir, home);
  });

  test('the SDK calls every route in /openapi.json, and no route that is gone: the contract it is typed by is the one documented', async () => {
    const doc = (await (await fetch(`${hub.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).filter((m) => m !== 'head').map((m) => `${m.toUpperCase()} ${p.replace(/\{([^}]+)\}/g, ':$1')}`));
    // ApiClient.request(route, input) takes every route of ROUTE_SCHEMAS (its type says so); deviceLogin the device flow's.
    assert.deepEqual([...documented].sort(), Object.keys(ROUTE_SCHEMAS).sort());
    assert.equal(typeof deviceLogin, 'function');
    assert.deepEqual(await admin.request('GET /v1/workspaces', {}), { workspaces: await admin.workspaces() });
  });

  test('operations: health, readiness and metrics', async () => {
    assert.equal(await admin.health(), true);
    assert.equal(await admin.ready(), true);
    assert.match(await admin.metrics(), /^# HELP connect_/m);
  });

  test('with an API key and an agent token: enrol, me, agents, services, the live events, token rotation, revocation, audit', async () => {
    assert.deepEqual(await admin.me(), { kind: 'api_key', workspaceId: (await admin.me()).workspaceId, keyId: (await admin.me() as { keyId: string }).keyId });
    const controller = new AbortController();
    const events: HubStreamEvent[] = [];
    const reading = (async () => {
      for await (const event of admin.events({ signal: controller.signal })) events.push(event);
    })();
    await eventually(async () => assert.equal(events[0]?.event, 'hello'), 5_000, 20);

    const enrolled = await admin.enrol({ label: 'sdk-agent', hostname: 'ci', platform: 'linux' });
    const asAgent = new ApiClient({ hubUrl: hub.url, credential: enrolled.token });
    const me = await asAgent.me();
    assert.equal(me.kind, 'agent');
    assert.equal(me.kind === 'agent' && me.agentId, enrolled.agentId);

    // The agent connects: the event stream says so, and an admin can rotate its token over that connection.
    let handedToken: string | undefined;
    const agent = new Agent({ hubUrl: hub.url, token: enrolled.token, label: 'sdk-agent', identityFile: `${home}/identity`, onToken: (token) => void (handedToken = token) });
    agents.push(agent);
    await agent.expose('sdk-svc', '127.0.0.1:9', { checkIntervalMs: 0 });
    await eventually(async () => assert.ok(events.some((e) => e.event === 'agent' && e.data.id === enrolled.agentId && e.data.online)), 5_000, 20);
    await eventually(async () => assert.ok(events.some((e) => e.event === 'service' && e.data.name === 'sdk-svc' && e.data.online)), 5_000, 20);
    assert.ok((await admin.agents()).some((a) => a.id === enrolled.agentId && a.online));
    assert.ok((await admin.services()).some((s) => s.name === 'sdk-svc' && s.online));
    const handed = await admin.rotateAgentToken(enrolled.agentId);
    assert.equal(handed.connections, 1);
    await eventually(async () => assert.ok(handedToken), 5_000, 20);
    // The agent rotates its token itself, with the one it was handed.
    const rotated = await new ApiClient({ hubUrl: hub.url, credential: handedToken! }).rotateToken();
    assert.equal(rotated.agentId, enrolled.agentId);
    // Revocation: its tokens are refused.
    await admin.revokeAgent(enrolled.agentId);
    await assert.rejects(new ApiClient({ hubUrl: hub.url, credential: rotated.token }).me(), refusedWith('UNAUTHORIZED'));
    const page = await admin.audit({ agent: enrolled.agentId, limit: 50 });
    assert.ok(page.events.some((e) => e.action === 'agent.enroll'));
    assert.ok(page.events.some((e) => e.action === 'agent.revoke'));
    controller.abort();
    await reading;
  });

  test('API keys, shares and links from the client; the refusals carry the hub\'s codes', async () => {
    const key = await admin.createApiKey('ci-key');
    assert.match(key.key, /^pc_/);
    assert.ok((await admin.apiKeys()).some((k) => k.id === key.id));
    await admin.revokeApiKey(key.id);
    await assert.rejects(new ApiClient({ hubUrl: hub.url, credential: key.key }).me(), refusedWith('UNAUTHORIZED'));
    // What the shared schema refuses, the hub refuses.
    await assert.rejects(admin.createApiKey('x'.repeat(129)), refusedWith('BAD_REQUEST'));

    const share = await admin.createShare({ name: 'partner', services: ['sdk-svc'], expiresIn: '1h' });
    assert.ok((await admin.shares()).owned.some((s) => s.id === share.share.id));
    await admin.revokeShare(share.share.id);
    const link = await admin.createLink({ service: 'sdk-svc', expiresIn: '1h', methods: 'GET' });
    assert.ok((await admin.links()).some((l) => l.id === link.link.id));
    await admin.revokeLink(link.link.id);
    await assert.rejects(admin.joinShare('pcs_not-a-code'), (err: unknown) => err instanceof ConnectError);

    // An agent token may not open the event stream.
    const agentToken = (await admin.enrol({ label: 'no-events' })).token;
    const stream = new ApiClient({ hubUrl: hub.url, credential: agentToken }).events();
    await assert.rejects(stream.next(), refusedWith('FORBIDDEN'));
  });

  test('as a user: a magic link signs in, workspaces and members, invitations sent, listed and revoked, a device approved, then signed out', async () => {
    const user = new ApiClient({ hubUrl: hub.url });
    await user.requestLoginLink('owner@example.com');
    const signedIn = await user.signIn(await linkToken(hub, 'owner@example.com'));
    assert.equal(signedIn.email, 'owner@example.com');
    const me = await user.me();
    assert.equal(me.kind, 'user');

    const created = await user.createWorkspace('SDK team');
    assert.equal(created.role, 'owner');
    assert.deepEqual(await user.workspace(created.id), created);
    assert.ok((await user.workspaces()).some((w) => w.id === created.id));

    // An invitation, accepted by signing in with its link: the invitee is a member, then removed.
    const invited = await user.invite(created.id, { email: 'guest@example.com', role: 'member' });
    assert.equal(invited.role, 'member');
    const guest = new ApiClient({ hubUrl: hub.url });
    const guestIn = await guest.signIn(await linkToken(hub, 'guest@example.com'));
    const members = await user.members(created.id);
    assert.deepEqual(members.map((m) => m.email).sort(), ['guest@example.com', 'owner@example.com']);
    await user.removeMember(created.id, guestIn.userId);
    assert.deepEqual((await user.members(created.id)).map((m) => m.email), ['owner@example.com']);

    // A pending invitation is listed with its id, and revoked: its link is refused from then on.
    const pending = await user.invite(created.id, { email: 'later@example.com' });
    assert.deepEqual((await user.invitations(created.id)).map((i) => [i.id, i.email, i.invitedBy]), [[pending.id, 'later@example.com', 'owner@example.com']]);
    await user.revokeInvitation(created.id, pending.id);
    assert.deepEqual(await user.invitations(created.id), []);
    await assert.rejects(new ApiClient({ hubUrl: hub.url }).signIn(await linkToken(hub, 'later@example.com')), refusedWith('INVITATION_REVOKED'));

    // A machine enrols by device code; this user approves it for the new workspace.
    const inWorkspace = new ApiClient({ hubUrl: hub.url, session: signedIn.session, workspaceId: created.id });
    const enrolled = await deviceLogin({
      hubUrl: hub.url,
      device: { label: 'laptop' },
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 100))),
      onCode: (code) => void inWorkspace.approveDevice(code.user_code, created.id),
    });
    assert.equal(enrolled.workspaceId, created.id);

    await user.signOut();
    await assert.rejects(user.me(), refusedWith('UNAUTHORIZED'));
    // The session given to another client is the same one: it has ended there too.
    await assert.rejects(inWorkspace.me(), refusedWith('SESSION_EXPIRED'));
  });
});
