/**
 * Invitations: an admin lists the pending ones and revokes them; each works once; a revoked one, or an older one of
 * a member who was removed, cannot be accepted; and what another workspace, a plain member or an agent cannot do.
 * Row level security of the invitations table: a workspace sees and changes only its own.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS_DIR, migrate, openPglite, openPostgres, type Database } from '../src/db/index.js';
import { createApiKey } from '../src/store/bootstrap.js';
import { listPendingInvitations } from '../src/store/invitations.js';
import { INVITE_LINK_TTL_MS } from '../src/store/magic-links.js';
import { sessionCookie, startIdentityHub, type Answer, type IdentityHub } from './support/identity-hub.js';
import { admin, dbKind, isPgError, TEST_POSTGRES_URL } from './support/test-database.js';

const newEmail = (tag: string) => `${tag}-${randomBytes(4).toString('hex')}@example.com`;

describe(`invitations (${dbKind})`, () => {
  let h: IdentityHub;
  before(async () => {
    h = await startIdentityHub();
  });
  after(async () => {
    await h?.dispose();
  });

  /** An owner signed in with a new shared workspace. */
  async function team(name = 'team') {
    const owner = await h.signIn(newEmail('owner'));
    const created = await h.request('POST', '/v1/workspaces', { cookie: owner.cookie, body: { name } });
    assert.equal(created.status, 201);
    return { owner, workspaceId: created.body.id as string, path: `/v1/workspaces/${created.body.id}` };
  }

  /** Sends an invitation; returns its id (from the answer) and the link's token (from the printed mail). */
  async function sendInvite(cookie: string, workspaceId: string, email: string, role: 'admin' | 'member' = 'member') {
    const sent = await h.request('POST', `/v1/workspaces/${workspaceId}/invites`, { cookie, body: { email, role } });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    return { id: sent.body.id as string, token: h.lastLinkToken(email) };
  }

  const accept = (token: string) => h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(token)}`);
  const list = (path: string, auth: { cookie?: string; headers?: Record<string, string> }) => h.request('GET', `${path}/invitations`, auth);
  const revoke = (path: string, id: string, auth: { cookie?: string; headers?: Record<string, string> }) => h.request('DELETE', `${path}/invitations/${id}`, auth);
  const memberEmails = async (workspaceId: string) =>
    (await h.hub.db.withSystem((tx) => tx.query<{ email: string }>('select u.email from workspace_members m join users u on u.id = m.user_id where m.workspace_id = $1 order by 1', [workspaceId]))).map((r) => r.email);
  const auditOf = (workspaceId: string, action: string) =>
    h.hub.db.withWorkspace(workspaceId, (tx) =>
      tx.query<{ actor_type: string; actor_id: string | null; target_type: string; target_id: string; metadata: Record<string, unknown> }>(
        'select actor_type, actor_id, target_type, target_id, metadata from audit_log where action = $1',
        [action],
      ),
    );

  it('lists the pending invitations to an admin, with who sent them, and not accepted, revoked or expired ones', async () => {
    const { owner, workspaceId, path } = await team();
    const ownerEmail = (await h.request('GET', '/v1/me', { cookie: owner.cookie })).body.email;
    const pending = newEmail('pending');
    const joined = newEmail('joined');
    const withdrawn = newEmail('withdrawn');
    const a = await sendInvite(owner.cookie, workspaceId, pending, 'admin');
    const b = await sendInvite(owner.cookie, workspaceId, joined);
    const c = await sendInvite(owner.cookie, workspaceId, withdrawn);
    assert.match(String(a.id), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'the invite answer names the invitation');
    assert.equal((await accept(b.token)).status, 200);
    assert.equal((await revoke(path, c.id, { cookie: owner.cookie })).status, 204);
    const answer = await list(path, { cookie: owner.cookie });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.invitations, [
      { id: a.id, email: pending, role: 'admin', invitedBy: ownerEmail, createdAt: h.clock.now().toISOString(), expiresAt: new Date(h.clock.now().getTime() + INVITE_LINK_TTL_MS).toISOString() },
    ]);
    const now = h.clock.now();
    h.clock.advance(INVITE_LINK_TTL_MS);
    try {
      assert.deepEqual((await list(path, { cookie: owner.cookie })).body.invitations, [], 'an expired invitation is not pending');
    } finally {
      h.clock.set(now);
    }
  });

  it('refuses a revoked invitation with INVITATION_REVOKED (410), joins nothing, and audits invitation.revoke', async () => {
    const { owner, workspaceId, path } = await team();
    const email = newEmail('revoked');
    const invitation = await sendInvite(owner.cookie, workspaceId, email);
    const revoked = await revoke(path, invitation.id, { cookie: owner.cookie });
    assert.equal(revoked.status, 204, JSON.stringify(revoked.body));
    const refused = await accept(invitation.token);
    assert.equal(refused.status, 410, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'INVITATION_REVOKED');
    assert.equal(sessionCookie(refused.headers), undefined, 'no session either');
    assert.equal((await memberEmails(workspaceId)).includes(email), false);
    assert.equal((await h.hub.db.withSystem((tx) => tx.query('select 1 from users where email = $1', [email]))).length, 0, 'no account was made');
    const audit = await auditOf(workspaceId, 'invitation.revoke');
    assert.deepEqual(
      audit.map((e) => [e.actor_type, e.actor_id, e.target_type, e.target_id, e.metadata.email, e.metadata.reason]),
      [['user', owner.userId, 'invitation', invitation.id, email, 'revoked']],
    );
    const again = await revoke(path, invitation.id, { cookie: owner.cookie });
    assert.equal(again.status, 404, 'a revoked invitation is no longer pending');
    assert.equal(again.body.error.code, 'NOT_FOUND');
  });

  it('lets an invitation join once: its second use answers LINK_USED, and an accepted one cannot be revoked', async () => {
    const { owner, workspaceId, path } = await team();
    const email = newEmail('once');
    const invitation = await sendInvite(owner.cookie, workspaceId, email);
    const first = await accept(invitation.token);
    assert.equal(first.status, 200);
    assert.equal(first.body.workspaceId, workspaceId);
    const second = await accept(invitation.token);
    assert.equal(second.status, 401);
    assert.equal(second.body.error.code, 'LINK_USED');
    assert.equal(sessionCookie(second.headers), undefined);
    assert.equal((await revoke(path, invitation.id, { cookie: owner.cookie })).status, 404);
    const [row] = await h.hub.db.withWorkspace(workspaceId, (tx) => tx.query<{ accepted_at: Date; revoked_at: Date | null }>('select accepted_at, revoked_at from invitations where id = $1', [invitation.id]));
    assert.deepEqual(row, { accepted_at: h.clock.now(), revoked_at: null });
  });

  it('lets exactly one of two simultaneous uses of an invitation link join; the other answers LINK_USED', async () => {
    const { owner, workspaceId } = await team();
    const email = newEmail('twice');
    const invitation = await sendInvite(owner.cookie, workspaceId, email);
    const answers = await Promise.all([accept(invitation.token), accept(invitation.token)]);
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 401], JSON.stringify(answers.map((a) => a.body)));
    assert.equal(answers.find((a) => a.status === 401)!.body.error.code, 'LINK_USED');
    assert.equal(answers.filter((a) => sessionCookie(a.headers)).length, 1, 'one session');
    const joins = await auditOf(workspaceId, 'member.add');
    assert.equal(joins.length, 1);
  });

  it('keeps a removed member out: an older invitation to them answers INVITATION_REVOKED and they do not rejoin', async () => {
    const { owner, workspaceId, path } = await team();
    const bob = newEmail('bob');
    const older = await sendInvite(owner.cookie, workspaceId, bob, 'admin');
    const newer = await sendInvite(owner.cookie, workspaceId, bob);
    const joined = await accept(newer.token);
    assert.equal(joined.status, 200);
    const removed = await h.request('DELETE', `${path}/members/${joined.body.userId}`, { cookie: owner.cookie });
    assert.equal(removed.status, 204);
    const comeback = await accept(older.token);
    assert.notEqual(comeback.status, 200, 'the removed member must not sign in through the older invitation');
    assert.equal(comeback.status, 410, JSON.stringify(comeback.body));
    assert.equal(comeback.body.error.code, 'INVITATION_REVOKED');
    assert.deepEqual(await memberEmails(workspaceId), [(await h.request('GET', '/v1/me', { cookie: owner.cookie })).body.email]);
    const audit = await auditOf(workspaceId, 'invitation.revoke');
    assert.deepEqual(
      audit.map((e) => [e.actor_type, e.actor_id, e.target_id, e.metadata.reason]),
      [['user', owner.userId, older.id, 'member_removed']],
    );
    // An admin may invite them again on purpose: a new invitation works.
    const fresh = await sendInvite(owner.cookie, workspaceId, bob);
    assert.equal((await accept(fresh.token)).status, 200);
    assert.ok((await memberEmails(workspaceId)).includes(bob));
  });

  it('never leaves a removed member in the workspace when the removal and their older invitation race', async () => {
    for (let round = 0; round < 10; round++) {
      const { owner, workspaceId, path } = await team();
      const bob = newEmail('racer');
      const older = await sendInvite(owner.cookie, workspaceId, bob);
      const newer = await sendInvite(owner.cookie, workspaceId, bob);
      const joined = await accept(newer.token);
      const [removed, comeback] = await Promise.all([h.request('DELETE', `${path}/members/${joined.body.userId}`, { cookie: owner.cookie }), accept(older.token)]);
      assert.equal(removed.status, 204, JSON.stringify(removed.body));
      // Either the older link was used before the removal (and the removal then took bob out), or it was refused.
      assert.ok(comeback.status === 200 || comeback.body.error.code === 'INVITATION_REVOKED', JSON.stringify(comeback.body));
      assert.equal((await memberEmails(workspaceId)).includes(bob), false, `round ${round}: the removed member is still in`);
    }
  });

  it('revokes the pending invitations a removed admin sent, and leaves other admins’ invitations alone', async () => {
    const { owner, workspaceId, path } = await team();
    const adminEmail = newEmail('admin');
    const adminInvite = await sendInvite(owner.cookie, workspaceId, adminEmail, 'admin');
    const admin = await accept(adminInvite.token);
    const adminCookie = sessionCookie(admin.headers)!;
    const accomplice = newEmail('accomplice');
    const planted = await sendInvite(adminCookie, workspaceId, accomplice, 'admin');
    const honest = newEmail('honest');
    const kept = await sendInvite(owner.cookie, workspaceId, honest);
    assert.equal((await h.request('DELETE', `${path}/members/${admin.body.userId}`, { cookie: owner.cookie })).status, 204);
    assert.deepEqual((await list(path, { cookie: owner.cookie })).body.invitations.map((i: { id: string }) => i.id), [kept.id]);
    const refused = await accept(planted.token);
    assert.equal(refused.status, 410);
    assert.equal(refused.body.error.code, 'INVITATION_REVOKED');
    assert.equal((await memberEmails(workspaceId)).includes(accomplice), false);
    assert.equal((await accept(kept.token)).status, 200);
  });

  it('lets an API key of the workspace list and revoke invitations (what `connect invitations` uses)', async () => {
    const { owner, workspaceId, path } = await team();
    const apiKey = await createApiKey(h.hub.db, workspaceId, 'script');
    const headers = { authorization: `Bearer ${apiKey}` };
    const invitation = await sendInvite(owner.cookie, workspaceId, newEmail('bykey'));
    assert.deepEqual((await list(path, { headers })).body.invitations.map((i: { id: string }) => i.id), [invitation.id]);
    assert.equal((await revoke(path, invitation.id, { headers })).status, 204);
    assert.equal((await accept(invitation.token)).body.error.code, 'INVITATION_REVOKED');
    const audit = await auditOf(workspaceId, 'invitation.revoke');
    assert.deepEqual(audit.map((e) => e.actor_type), ['api_key']);
  });

  it('refuses a plain member and an agent token listing or revoking invitations (FORBIDDEN), and the invitation still works', async () => {
    const { owner, workspaceId, path } = await team();
    const memberInvite = await sendInvite(owner.cookie, workspaceId, newEmail('member'));
    const member = sessionCookie((await accept(memberInvite.token)).headers)!;
    const apiKey = await createApiKey(h.hub.db, workspaceId, 'enrol');
    const enrolled = await h.request('POST', '/v1/agents/enroll', { headers: { authorization: `Bearer ${apiKey}` }, body: { label: 'agent' } });
    const agent = { authorization: `Bearer ${enrolled.body.token}` };
    const target = newEmail('target');
    const invitation = await sendInvite(owner.cookie, workspaceId, target);
    for (const [who, auth] of [['member', { cookie: member }], ['agent', { headers: agent }]] as const) {
      const listed = await list(path, auth);
      assert.equal(listed.status, 403, `${who} lists`);
      assert.equal(listed.body.error.code, 'FORBIDDEN');
      assert.ok(!JSON.stringify(listed.body).includes(target));
      const revoked = await revoke(path, invitation.id, auth);
      assert.equal(revoked.status, 403, `${who} revokes`);
      assert.equal(revoked.body.error.code, 'FORBIDDEN');
    }
    assert.equal((await accept(invitation.token)).status, 200, 'the invitation was not revoked');
  });

  describe('another workspace', () => {
    /** The answer with the references replaced, to compare "another workspace's" with "missing". */
    const shape = (answer: Answer, refs: string[]) => ({ status: answer.status, body: JSON.parse(refs.reduce((text, ref) => text.replaceAll(ref, '<ref>'), JSON.stringify(answer.body))) });

    it("answers X's admin, API key or X-Workspace-Id asking for Y's invitations exactly like a missing one, and revokes nothing", async () => {
      const x = await team('x');
      const y = await team('y');
      const target = newEmail('y-invitee');
      const yInvite = await sendInvite(y.owner.cookie, y.workspaceId, target);
      const xKey = await createApiKey(h.hub.db, x.workspaceId, 'x key');
      const missing = randomUUID();
      const missingInvite = randomUUID();
      const callers: Array<[string, { cookie?: string; headers?: Record<string, string> }, (id: string) => Record<string, string>]> = [
        ['owner', { cookie: x.owner.cookie }, () => ({})],
        ['owner with X-Workspace-Id', { cookie: x.owner.cookie }, (id) => ({ 'x-workspace-id': id })],
        ['API key', { headers: { authorization: `Bearer ${xKey}` } }, () => ({})],
      ];
      for (const [who, auth, extra] of callers) {
        const as = (id: string) => ({ cookie: auth.cookie, headers: { ...auth.headers, ...extra(id) } });
        const theirs = await list(`/v1/workspaces/${y.workspaceId}`, as(y.workspaceId));
        const nothing = await list(`/v1/workspaces/${missing}`, as(missing));
        assert.equal(theirs.status, 404, `${who} lists Y`);
        assert.deepEqual(shape(theirs, [y.workspaceId]), shape(nothing, [missing]), `${who} lists Y`);
        assert.ok(!JSON.stringify(theirs.body).includes(target));

        const revokeTheirs = await revoke(`/v1/workspaces/${y.workspaceId}`, yInvite.id, as(y.workspaceId));
        const revokeNothing = await revoke(`/v1/workspaces/${missing}`, missingInvite, as(missing));
        assert.equal(revokeTheirs.status, 404, `${who} revokes in Y`);
        assert.deepEqual(shape(revokeTheirs, [y.workspaceId, yInvite.id]), shape(revokeNothing, [missing, missingInvite]), `${who} revokes in Y`);

        // Y's invitation addressed through X's own workspace: not found, like any id.
        const viaX = await revoke(x.path, yInvite.id, { cookie: auth.cookie, headers: auth.headers });
        const strangerViaX = await revoke(x.path, missingInvite, { cookie: auth.cookie, headers: auth.headers });
        assert.equal(viaX.status, 404, `${who} revokes Y's invitation through X`);
        assert.deepEqual(shape(viaX, [yInvite.id]), shape(strangerViaX, [missingInvite]));
      }
      assert.deepEqual((await list(y.path, { cookie: y.owner.cookie })).body.invitations.map((i: { id: string }) => i.id), [yInvite.id], 'still pending');
      assert.equal((await auditOf(y.workspaceId, 'invitation.revoke')).length, 0);
      assert.equal((await accept(yInvite.token)).status, 200);
    });

    it('answers an invitation id that is not a UUID like a missing one', async () => {
      const x = await team('x');
      const bad = await revoke(x.path, 'not-a-uuid', { cookie: x.owner.cookie });
      assert.equal(bad.status, 404);
      assert.equal(bad.body.error.code, 'NOT_FOUND');
    });
  });

  describe('row level security of invitations', () => {
    it("cannot see, revoke or move another workspace's invitation, nor create one there", async () => {
      const x = await team('x');
      const y = await team('y');
      const yInvite = await sendInvite(y.owner.cookie, y.workspaceId, newEmail('rls'));
      const seen = await h.hub.db.withWorkspace(x.workspaceId, (tx) => tx.query('select id from invitations'));
      assert.deepEqual(seen, []);
      const updated = await h.hub.db.withWorkspace(x.workspaceId, (tx) => tx.query(`update invitations set revoked_at = now(), revoke_reason = 'revoked' where id = $1 returning id`, [yInvite.id]));
      assert.equal(updated.length, 0);
      await assert.rejects(
        h.hub.db.withWorkspace(x.workspaceId, (tx) =>
          tx.query(`insert into invitations (workspace_id, email, role, created_at, expires_at) values ($1, 'e@example.com', 'admin', now(), now())`, [y.workspaceId]),
        ),
        isPgError('42501', /row-level security/),
      );
      const [own] = await h.hub.db.withWorkspace(x.workspaceId, (tx) =>
        tx.query<{ id: string }>(`insert into invitations (workspace_id, email, role, created_at, expires_at) values ($1, 'e@example.com', 'member', now(), now()) returning id`, [x.workspaceId]),
      );
      await assert.rejects(
        h.hub.db.withWorkspace(x.workspaceId, (tx) => tx.query('update invitations set workspace_id = $1 where id = $2', [y.workspaceId, own!.id])),
        isPgError('42501', /row-level security/),
      );
      await assert.rejects(h.hub.db.withWorkspace(x.workspaceId, (tx) => tx.query('delete from invitations')), isPgError('42501', /permission denied/));
      const [still] = await h.hub.db.withWorkspace(y.workspaceId, (tx) => tx.query<{ revoked_at: Date | null }>('select revoked_at from invitations where id = $1', [yInvite.id]));
      assert.equal(still?.revoked_at, null);
    });

    it('refuses an invitation link that names no invitation, or an invitation of another workspace', async () => {
      const x = await team('x');
      const y = await team('y');
      const yInvite = await sendInvite(y.owner.cookie, y.workspaceId, newEmail('other'));
      const insert = (invitationId: string | null) =>
        h.hub.db.withSystem((tx) =>
          tx.query(
            `insert into magic_links (token_hash, email, purpose, workspace_id, role, created_at, expires_at, invitation_id) values ($1, 'e@example.com', 'invite', $2, 'admin', now(), now(), $3)`,
            [randomBytes(32), x.workspaceId, invitationId],
          ),
        );
      await assert.rejects(insert(null), isPgError('23514', /magic_links_invitation_check/));
      await assert.rejects(insert(yInvite.id), isPgError('23503', /magic_links_invitation_fk/));
    });
  });
});

/** A database with no migrations applied: PGlite in memory, or a new PostgreSQL database. */
async function openEmpty(): Promise<{ db: Database; dispose(): Promise<void> }> {
  if (dbKind === 'pglite') {
    const db = await openPglite();
    return { db, dispose: () => db.close() };
  }
  const name = `pc_test_${randomBytes(8).toString('hex')}`;
  await admin(`create database ${name}`);
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  const db = await openPostgres(url.href);
  return {
    db,
    async dispose() {
      try {
        await db.close();
      } finally {
        await admin(`drop database if exists ${name} with (force)`);
      }
    },
  };
}

describe(`migration 009_invitations (${dbKind})`, () => {
  it('turns the invitation links of an older hub into invitations: unused ones pending (and revocable), used ones accepted', async () => {
    const empty = await openEmpty();
    const dir = await mkdtemp(join(tmpdir(), 'pc-before-009-'));
    try {
      for (const file of (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql') && f < '009')) await copyFile(join(MIGRATIONS_DIR, file), join(dir, file));
      await migrate(empty.db, dir);
      const now = new Date('2030-01-01T00:00:00Z');
      const later = new Date('2030-01-08T00:00:00Z');
      const [ws] = await empty.db.withSystem((tx) => tx.query<{ id: string }>(`insert into workspaces (name) values ('old') returning id`));
      const link = (email: string, usedAt: Date | null) =>
        empty.db.withSystem(async (tx) => {
          const [row] = await tx.query<{ id: string }>(
            `insert into magic_links (token_hash, email, purpose, workspace_id, role, created_at, expires_at, used_at) values ($1, $2, 'invite', $3, 'member', $4, $5, $6) returning id`,
            [randomBytes(32), email, ws!.id, now, later, usedAt],
          );
          return row!.id;
        });
      const pending = await link('pending@example.com', null);
      const used = await link('used@example.com', now);
      await migrate(empty.db);
      const listed = await listPendingInvitations(empty.db, ws!.id, now);
      assert.deepEqual(listed.map((i) => [i.id, i.email]), [[pending, 'pending@example.com']]);
      const rows = await empty.db.withWorkspace(ws!.id, (tx) => tx.query<{ id: string; accepted_at: Date | null }>('select id, accepted_at from invitations order by email'));
      assert.deepEqual(rows, [
        { id: pending, accepted_at: null },
        { id: used, accepted_at: now },
      ]);
      const links = await empty.db.withSystem((tx) => tx.query<{ id: string; invitation_id: string }>('select id, invitation_id from magic_links order by email'));
      assert.deepEqual(links, [
        { id: pending, invitation_id: pending },
        { id: used, invitation_id: used },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await empty.dispose();
    }
  });
});
