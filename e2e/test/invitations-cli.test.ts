/**
 * `connect invitations` and `connect invitations revoke` (the real CLI against a real hub process): an API key of
 * the workspace lists the pending invitations and revokes one, by id or by address; a revoked link is refused with
 * INVITATION_REVOKED; an agent token is refused; and a removed member's older invitation is gone from the list and
 * refused, so they do not come back.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { InvitationInfo } from '@private-connect/api';
import { CONNECT_MAIN, enrolAgent, eventually, removeDirs, startHubProcess, tempDir, type AgentHome, type HubProcess } from '../src/index.js';

describe('connect invitations: list and revoke from the command line', () => {
  let hub: HubProcess;
  let home: string;
  let agent: AgentHome;
  let apiKey: string;
  let owner: { cookie: string; workspaceId: string; email: string };

  /** A JSON request as the dashboard sends it (its Origin, JSON), optionally with a session cookie. */
  const call = async (method: string, path: string, body?: unknown, cookie?: string) => {
    const res = await fetch(hub.url + path, {
      method,
      headers: { origin: hub.url, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };

  /** The token of the newest link the hub printed for `email` (no SMTP_URL: links go to its stderr). */
  const linkToken = async (email: string, count = 1) => {
    const line = await eventually(async () => {
      const lines = hub.proc.stderr().split('\n').filter((l) => l.includes(` link for ${email}: `));
      if (lines.length < count) throw new Error(`no link #${count} printed for ${email}`);
      return lines.at(-1)!;
    });
    return new URL(line.trim().split(' ').pop()!).searchParams.get('token')!;
  };

  const accept = (token: string) => call('POST', `/v1/auth/verify?token=${encodeURIComponent(token)}`);
  const invite = async (email: string, count = 1) => {
    const sent = await call('POST', `/v1/workspaces/${owner.workspaceId}/invites`, { email }, owner.cookie);
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    return { id: sent.body.id as string, token: await linkToken(email, count) };
  };

  /** The real CLI, in a config folder of its own, with --api-key (or `credential: 'agent'`: the enrolled token). */
  const connect = (args: string[], options: { json?: boolean; credential?: 'api_key' | 'agent' } = {}) => {
    if (options.credential === 'agent') return agent.run(args);
    const result = spawnSync(process.execPath, [CONNECT_MAIN, ...(options.json === false ? [] : ['--json']), ...args, '--hub', hub.url, '--api-key', apiKey], {
      env: { ...process.env, CONNECT_HOME: home, NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr, json: () => JSON.parse(result.stdout) as unknown };
  };
  const listed = () => {
    const run = connect(['invitations']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return (run.json() as { invitations: InvitationInfo[] }).invitations;
  };

  before(async () => {
    hub = await startHubProcess();
    home = await tempDir('invitations-cli');
    const email = 'owner-cli@example.com';
    assert.equal((await call('POST', '/v1/auth/login', { email })).status, 202);
    const signedIn = await accept(await linkToken(email));
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('pc_session='))!.split(';')[0]!;
    owner = { cookie, workspaceId: signedIn.body.workspaceId, email };
    const key = await call('POST', '/v1/api-keys', { name: 'cli' }, cookie);
    assert.equal(key.status, 201, JSON.stringify(key.body));
    apiKey = key.body.key;
    agent = await enrolAgent({ url: hub.url, apiKey });
  });

  after(async () => {
    await hub?.stop();
    await removeDirs(hub?.dataDir, home, agent?.home);
  });

  test('lists the pending invitations (JSON and a table), and revokes one by id: its link is refused with INVITATION_REVOKED', async () => {
    const carol = await invite('carol@example.com');
    const dave = await invite('dave@example.com');
    assert.deepEqual(listed().map((i) => [i.id, i.email, i.role, i.invitedBy]), [
      [carol.id, 'carol@example.com', 'member', owner.email],
      [dave.id, 'dave@example.com', 'member', owner.email],
    ]);
    const table = connect(['invitations', 'ls'], { json: false });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+EMAIL\s+ROLE\s+INVITED BY\s+SENT\s+EXPIRES/);
    assert.match(table.stdout, new RegExp(`${carol.id}\\s+carol@example\\.com\\s+member\\s+owner-cli@example\\.com`));

    const revoked = connect(['invitations', 'revoke', carol.id], { json: false });
    assert.equal(revoked.code, 0, revoked.stdout + revoked.stderr);
    assert.match(revoked.stdout, /revoked the invitation .*carol|revoked the invitation [0-9a-f-]{36}/);
    assert.deepEqual(listed().map((i) => i.email), ['dave@example.com']);
    const refused = await accept(carol.token);
    assert.equal(refused.status, 410, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'INVITATION_REVOKED');

    // By address: every pending invitation to it.
    const byEmail = connect(['invitations', 'revoke', 'DAVE@example.com']);
    assert.equal(byEmail.code, 0, byEmail.stdout + byEmail.stderr);
    assert.deepEqual((byEmail.json() as { revoked: string[] }).revoked, [dave.id]);
    assert.deepEqual(listed(), []);
    assert.equal((await accept(dave.token)).body.error.code, 'INVITATION_REVOKED');
    const audit = await fetch(`${hub.url}/v1/audit?action=invitation.revoke`, { headers: { authorization: `Bearer ${apiKey}` } });
    const events = ((await audit.json()) as { events: Array<{ targetId: string; actorType: string }> }).events;
    assert.deepEqual(events.map((e) => [e.targetId, e.actorType]).sort(), [[carol.id, 'api_key'], [dave.id, 'api_key']].sort());
  });

  test('answers an unknown invitation with NOT_FOUND and exit 1, and refuses an agent token with FORBIDDEN', async () => {
    const missing = connect(['invitations', 'revoke', randomUUID()]);
    assert.equal(missing.code, 1, missing.stdout + missing.stderr);
    assert.equal((missing.json() as { code: string }).code, 'NOT_FOUND');
    const erin = await invite('erin@example.com');
    for (const args of [['invitations'], ['invitations', 'revoke', erin.id]]) {
      const byAgent = connect(args, { credential: 'agent' });
      assert.equal(byAgent.code, 1, byAgent.stdout + byAgent.stderr);
      assert.equal((byAgent.json() as { code: string }).code, 'FORBIDDEN', args.join(' '));
    }
    assert.deepEqual(listed().map((i) => i.id), [erin.id], 'still pending');
    assert.equal(connect(['invitations', 'revoke', erin.id]).code, 0);
  });

  test('a removed member’s older invitation is gone from the list and refused: they do not come back', async () => {
    const older = await invite('bob@example.com', 1);
    const newer = await invite('bob@example.com', 2);
    assert.deepEqual(listed().map((i) => i.id), [older.id, newer.id]);
    const joined = await accept(newer.token);
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    assert.deepEqual(listed().map((i) => i.id), [older.id]);
    // An empty JSON object as the body: a signed-in state change is sent as JSON.
    const removed = await call('DELETE', `/v1/workspaces/${owner.workspaceId}/members/${joined.body.userId}`, {}, owner.cookie);
    assert.equal(removed.status, 204, JSON.stringify(removed.body));
    assert.deepEqual(listed(), []);
    const comeback = await accept(older.token);
    assert.equal(comeback.status, 410, JSON.stringify(comeback.body));
    assert.equal(comeback.body.error.code, 'INVITATION_REVOKED');
    const members = await call('GET', `/v1/workspaces/${owner.workspaceId}/members`, undefined, owner.cookie);
    assert.deepEqual(members.body.members.map((m: { email: string }) => m.email), [owner.email]);
  });
});
