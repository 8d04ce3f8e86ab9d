/** Workspaces and members: create, invite by magic link, remove (access ends at once), and what another workspace cannot see. */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createApiKey } from '../src/store/bootstrap.js';
import { sessionCookie, startIdentityHub, type Answer, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';

const newEmail = (tag: string) => `${tag}-${randomBytes(4).toString('hex')}@example.com`;

describe(`workspaces and members (${dbKind})`, () => {
  let h: IdentityHub;
  before(async () => {
    h = await startIdentityHub();
  });
  after(async () => {
    await h?.dispose();
  });

  /** Owner signs in and creates a shared workspace; returns both. */
  async function ownerWithWorkspace(name = 'team') {
    const owner = await h.signIn(newEmail('owner'));
    const created = await h.request('POST', '/v1/workspaces', { cookie: owner.cookie, body: { name } });
    assert.equal(created.status, 201);
    assert.equal(created.body.role, 'owner');
    return { owner, workspaceId: created.body.id as string };
  }

  /** Invites email into workspaceId and follows the invitation link; returns the invitee's session. */
  async function invite(cookie: string, workspaceId: string, email: string, role: 'admin' | 'member' = 'member') {
    const sent = await h.request('POST', `/v1/workspaces/${workspaceId}/invites`, { cookie, body: { email, role } });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const accepted = await h.request('POST', `/v1/auth/verify?token=${h.lastLinkToken(email)}`);
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.workspaceId, workspaceId);
    return { cookie: sessionCookie(accepted.headers)!, userId: accepted.body.userId as string };
  }

  it('makes the creator of a workspace its owner and lists it beside the personal one', async () => {
    const { owner, workspaceId } = await ownerWithWorkspace('acme');
    const list = await h.request('GET', '/v1/workspaces', { cookie: owner.cookie });
    assert.deepEqual(
      list.body.workspaces.map((w: { id: string; role: string }) => [w.id, w.role]),
      [[owner.workspaceId, 'owner'], [workspaceId, 'owner']],
    );
    const audit = await h.hub.db.withWorkspace(workspaceId, (tx) => tx.query<{ action: string }>('select action from audit_log'));
    assert.deepEqual(audit.map((a) => a.action), ['workspace.create']);
  });

  it('adds an invited user with the invited role, and X-Workspace-Id switches to that workspace', async () => {
    const { owner, workspaceId } = await ownerWithWorkspace();
    const email = newEmail('invitee');
    const invitee = await invite(owner.cookie, workspaceId, email);
    const members = await h.request('GET', `/v1/workspaces/${workspaceId}/members`, { cookie: invitee.cookie });
    assert.deepEqual(
      members.body.members.map((m: { email: string; role: string }) => [m.email, m.role]).sort(),
      [[email, 'member'], [(await h.request('GET', '/v1/me', { cookie: owner.cookie })).body.email, 'owner']].sort(),
    );
    const me = await h.request('GET', '/v1/me', { cookie: invitee.cookie, headers: { 'x-workspace-id': workspaceId } });
    assert.equal(me.body.workspaceId, workspaceId);
    assert.equal(me.body.role, 'member');
    const personal = await h.request('GET', '/v1/me', { cookie: invitee.cookie });
    assert.notEqual(personal.body.workspaceId, workspaceId);
    assert.equal(personal.body.role, 'owner');
    const audit = await h.hub.db.withWorkspace(workspaceId, (tx) => tx.query<{ action: string }>('select action from audit_log order by id'));
    assert.deepEqual(audit.map((a) => a.action), ['workspace.create', 'member.invite', 'member.add', 'login']);
  });

  it('refuses invitations and removals by a plain member', async () => {
    const { owner, workspaceId } = await ownerWithWorkspace();
    const member = await invite(owner.cookie, workspaceId, newEmail('member'));
    const inv = await h.request('POST', `/v1/workspaces/${workspaceId}/invites`, { cookie: member.cookie, body: { email: newEmail('x') } });
    assert.equal(inv.status, 403);
    const del = await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${owner.userId}`, { cookie: member.cookie });
    assert.equal(del.status, 403);
  });

  it('refuses removing the last owner, and an admin removing an owner', async () => {
    const { owner, workspaceId } = await ownerWithWorkspace();
    const admin = await invite(owner.cookie, workspaceId, newEmail('admin'), 'admin');
    const byAdmin = await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${owner.userId}`, { cookie: admin.cookie });
    assert.equal(byAdmin.status, 403);
    const self = await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${owner.userId}`, { cookie: owner.cookie });
    assert.equal(self.status, 403);
    assert.match(self.body.error.message, /last owner/);
  });

  it('ends a removed member’s access to the workspace at once, on the same session', async () => {
    const { owner, workspaceId } = await ownerWithWorkspace();
    const member = await invite(owner.cookie, workspaceId, newEmail('leaver'));
    assert.equal((await h.request('GET', `/v1/workspaces/${workspaceId}/members`, { cookie: member.cookie })).status, 200);
    const removed = await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${member.userId}`, { cookie: owner.cookie });
    assert.equal(removed.status, 204);
    const members = await h.request('GET', `/v1/workspaces/${workspaceId}/members`, { cookie: member.cookie });
    assert.equal(members.status, 404);
    const switched = await h.request('GET', '/v1/services', { cookie: member.cookie, headers: { 'x-workspace-id': workspaceId } });
    assert.equal(switched.status, 404);
    assert.equal((await h.request('GET', '/v1/me', { cookie: member.cookie })).status, 200, 'the personal workspace still works');
    const again = await h.request('DELETE', `/v1/workspaces/${workspaceId}/members/${member.userId}`, { cookie: owner.cookie });
    assert.equal(again.status, 404);
    const audit = await h.hub.db.withWorkspace(workspaceId, (tx) => tx.query<{ action: string }>(`select action from audit_log where action = 'member.remove'`));
    assert.equal(audit.length, 1);
  });

  it('refuses workspace creation with an API key or an over-long name', async () => {
    const { owner } = await ownerWithWorkspace();
    const long = await h.request('POST', '/v1/workspaces', { cookie: owner.cookie, body: { name: 'x'.repeat(129) } });
    assert.equal(long.status, 400);
    const apiKey = await createApiKey(h.hub.db, owner.workspaceId, 'test');
    const byKey = await h.request('POST', '/v1/workspaces', { headers: { authorization: `Bearer ${apiKey}` }, body: { name: 'k' } });
    assert.equal(byKey.status, 403);
  });

  describe('another workspace', () => {
    /** The answer with the id in the message replaced, to compare "another workspace's" with "missing". */
    const shape = (answer: Answer, id: string) => ({ status: answer.status, body: JSON.parse(JSON.stringify(answer.body).replaceAll(id, '<id>')) });

    it("answers a user of X asking for Y's workspace, members or invites exactly like a random id, and changes nothing", async () => {
      const x = await ownerWithWorkspace('x');
      const y = await ownerWithWorkspace('y');
      const yMember = await invite(y.owner.cookie, y.workspaceId, newEmail('ymember'));
      const before = await h.hub.db.withSystem((tx) => tx.query('select * from workspace_members order by workspace_id, user_id'));
      const missing = randomUUID();
      const attempts: Array<[string, (id: string) => string, unknown?]> = [
        ['GET', (id) => `/v1/workspaces/${id}`],
        ['GET', (id) => `/v1/workspaces/${id}/members`],
        ['POST', (id) => `/v1/workspaces/${id}/invites`, { email: 'spy@example.com' }],
        ['DELETE', (id) => `/v1/workspaces/${id}/members/${yMember.userId}`],
      ];
      for (const [method, path, body] of attempts) {
        for (const header of [false, true]) {
          const headers = (id: string): Record<string, string> => (header ? { 'x-workspace-id': id } : {});
          const theirs = await h.request(method, path(y.workspaceId), { cookie: x.owner.cookie, body, headers: headers(y.workspaceId) });
          const nothing = await h.request(method, path(missing), { cookie: x.owner.cookie, body, headers: headers(missing) });
          assert.equal(theirs.status, 404, `${method} ${path('Y')}`);
          assert.deepEqual(shape(theirs, y.workspaceId), shape(nothing, missing), `${method} ${path('Y')}`);
        }
      }
      // Y's member, addressed through X: not found like any stranger.
      const viaX = await h.request('DELETE', `/v1/workspaces/${x.workspaceId}/members/${yMember.userId}`, { cookie: x.owner.cookie });
      const strangerViaX = await h.request('DELETE', `/v1/workspaces/${x.workspaceId}/members/${missing}`, { cookie: x.owner.cookie });
      assert.deepEqual(shape(viaX, yMember.userId), shape(strangerViaX, missing));
      assert.equal(viaX.status, 404);
      assert.deepEqual(await h.hub.db.withSystem((tx) => tx.query('select * from workspace_members order by workspace_id, user_id')), before);
      assert.equal(h.console.filter((l) => l.includes('spy@example.com')).length, 0, 'no invitation was sent');
    });

    it("answers an API key of X asking for Y's members exactly like a random id", async () => {
      const x = await ownerWithWorkspace('x');
      const y = await ownerWithWorkspace('y');
      const apiKey = await createApiKey(h.hub.db, x.workspaceId, 'test');
      const headers = { authorization: `Bearer ${apiKey}` };
      const missing = randomUUID();
      const theirs = await h.request('GET', `/v1/workspaces/${y.workspaceId}/members`, { headers });
      const nothing = await h.request('GET', `/v1/workspaces/${missing}/members`, { headers });
      assert.equal(theirs.status, 404);
      assert.deepEqual(shape(theirs, y.workspaceId), shape(nothing, missing));
      assert.equal((await h.request('GET', `/v1/workspaces/${x.workspaceId}/members`, { headers })).status, 200);
    });

    it('answers a workspace id that is not a UUID like a missing one', async () => {
      const x = await ownerWithWorkspace('x');
      const bad = await h.request('GET', '/v1/workspaces/not-a-uuid/members', { cookie: x.owner.cookie });
      assert.equal(bad.status, 404);
      assert.equal(bad.body.error.code, 'NOT_FOUND');
    });
  });
});
