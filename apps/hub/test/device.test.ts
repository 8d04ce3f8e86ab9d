/** Device-code enrolment: approval by a member enrols the agent once, in the chosen workspace; what is refused. */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createApiKey } from '../src/store/bootstrap.js';
import { DEVICE_CODE_TTL_MS } from '../src/store/device-codes.js';
import { startIdentityHub, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';

const newEmail = () => `dev-${randomBytes(4).toString('hex')}@example.com`;

describe(`device-code enrolment (${dbKind})`, () => {
  let h: IdentityHub;
  before(async () => {
    h = await startIdentityHub({ HUB_RATE_LIMIT_DEVICE_IP: '100000/1m' });
  });
  after(async () => {
    await h?.dispose();
  });

  const newCode = async () => {
    const answer = await h.request('POST', '/v1/device/code', { body: { label: 'laptop', hostname: 'laptop.local', platform: 'linux' } });
    assert.equal(answer.status, 200);
    return answer.body as { device_code: string; user_code: string; verification_uri: string; interval: number; expires_in: number };
  };
  const poll = (deviceCode: string) => h.request('POST', '/v1/device/token', { body: { device_code: deviceCode } });

  it('enrols the agent in the workspace the member picked, once', async () => {
    const user = await h.signIn(newEmail());
    const team = await h.request('POST', '/v1/workspaces', { cookie: user.cookie, body: { name: 'team' } });
    const code = await newCode();
    assert.match(code.user_code, /^[A-Z]{4}-[A-Z]{4}$/);
    // On the dashboard's origin (public-urls.ts), where the member is signed in.
    assert.equal(code.verification_uri, `${h.hub.dashboardUrl}/device`);
    assert.equal(code.expires_in, DEVICE_CODE_TTL_MS / 1000);
    const pending = await poll(code.device_code);
    assert.equal(pending.status, 400);
    assert.equal(pending.body.error.code, 'AUTHORIZATION_PENDING');

    const typed = code.user_code.toLowerCase().replace('-', ' ');
    const approved = await h.request('POST', '/v1/device/approve', { cookie: user.cookie, body: { user_code: typed, workspaceId: team.body.id } });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const enrolled = await poll(code.device_code);
    assert.equal(enrolled.status, 200);
    assert.equal(enrolled.body.workspaceId, team.body.id);
    assert.equal(enrolled.body.label, 'laptop');
    const me = await h.request('GET', '/v1/me', { headers: { authorization: `Bearer ${enrolled.body.token}` } });
    assert.equal(me.body.kind, 'agent');
    assert.equal(me.body.workspaceId, team.body.id);

    const again = await poll(code.device_code);
    assert.equal(again.status, 401);
    assert.equal(again.body.error.code, 'UNAUTHORIZED');
    const reapprove = await h.request('POST', '/v1/device/approve', { cookie: user.cookie, body: { user_code: code.user_code } });
    assert.equal(reapprove.status, 404);
    const audit = await h.hub.db.withWorkspace(team.body.id, (tx) => tx.query<{ action: string; actor_type: string }>(`select action, actor_type from audit_log where action in ('device.approve', 'agent.enroll') order by id`));
    assert.deepEqual(audit.map((a) => [a.action, a.actor_type]), [['device.approve', 'user'], ['agent.enroll', 'user']]);
  });

  it('refuses a code not approved within 15 minutes, both to the agent and to the approver', async () => {
    const user = await h.signIn(newEmail());
    const code = await newCode();
    h.clock.advance(DEVICE_CODE_TTL_MS);
    const expired = await poll(code.device_code);
    assert.equal(expired.status, 400);
    assert.equal(expired.body.error.code, 'DEVICE_CODE_EXPIRED');
    const late = await h.request('POST', '/v1/device/approve', { cookie: user.cookie, body: { user_code: code.user_code } });
    assert.equal(late.status, 404);
  });

  it("refuses approval into a workspace the user is not in, exactly like a missing one, and leaves the code pending", async () => {
    const stranger = await h.signIn(newEmail());
    const owner = await h.signIn(newEmail());
    const code = await newCode();
    const theirs = await h.request('POST', '/v1/device/approve', { cookie: stranger.cookie, body: { user_code: code.user_code, workspaceId: owner.workspaceId } });
    const missing = randomUUID();
    const nothing = await h.request('POST', '/v1/device/approve', { cookie: stranger.cookie, body: { user_code: code.user_code, workspaceId: missing } });
    assert.equal(theirs.status, 404);
    assert.deepEqual(JSON.stringify(theirs.body).replace(owner.workspaceId, '<id>'), JSON.stringify(nothing.body).replace(missing, '<id>'));
    assert.equal((await poll(code.device_code)).body.error.code, 'AUTHORIZATION_PENDING');
  });

  it('refuses approval without a session, with an API key, and for an unknown code', async () => {
    const code = await newCode();
    assert.equal((await h.request('POST', '/v1/device/approve', { body: { user_code: code.user_code } })).status, 401);
    const user = await h.signIn(newEmail());
    const apiKey = await createApiKey(h.hub.db, user.workspaceId, 'test');
    const byKey = await h.request('POST', '/v1/device/approve', { headers: { authorization: `Bearer ${apiKey}` }, body: { user_code: code.user_code } });
    assert.equal(byKey.status, 403);
    const unknown = await h.request('POST', '/v1/device/approve', { cookie: user.cookie, body: { user_code: 'BBBB-BBBB' } });
    assert.equal(unknown.status, 404);
    assert.equal((await poll(randomBytes(32).toString('hex'))).status, 401);
    assert.equal((await poll(code.device_code)).body.error.code, 'AUTHORIZATION_PENDING');
  });
});
