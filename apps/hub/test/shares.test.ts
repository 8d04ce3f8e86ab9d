/**
 * Shares over the REST API and in the database: a code is shown once and stored as its hash, a share opens to
 * exactly one other workspace, expired and revoked codes join nothing, the joining side sees only what the share
 * says, another workspace's share answers like a missing one, and row level security keeps shares with their owner.
 */

import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { CreatedShare, JoinedShareInfo, ShareList } from '@private-connect/api';
import { redactSecrets } from '../src/logger.js';
import { MAX_SHARE_SERVICES } from '../src/sharing/share-routes.js';
import { DAY, startTestHub, type TestAgentSocket, type TestHub } from './support/test-hub.js';
import { dbKind, isPgError } from './support/test-database.js';

interface Ws {
  workspaceId: string;
  apiKey: string;
}

describe(`shares over the REST API (${dbKind})`, () => {
  let t: TestHub;
  let x: Ws;
  let y: Ws;
  let z: Ws;
  let xAgent: TestAgentSocket;
  const X_LABEL = 'x-secret-agent-label';

  const api = (who: Ws, method: string, path: string, body?: unknown) => t.http(method, path, { token: who.apiKey, body });
  const create = async (who: Ws, body: Record<string, unknown>): Promise<CreatedShare> => {
    const answer = await api(who, 'POST', '/v1/shares', { expiresIn: '7d', ...body });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body as CreatedShare;
  };
  const refused = async (answer: Promise<{ status: number; body: any }>, status: number, code: string, message?: RegExp) => {
    const a = await answer;
    assert.equal(a.status, status, JSON.stringify(a.body));
    assert.equal(a.body.error.code, code);
    if (message) assert.match(a.body.error.message, message);
    return a.body.error.message as string;
  };
  const audit = async (who: Ws, action: string) => (await api(who, 'GET', `/v1/audit?action=${action}`)).body.events as Array<{ actorType: string; actorId: string | null; targetId: string; ip: string | null; metadata: any }>;

  before(async () => {
    t = await startTestHub();
    x = { workspaceId: t.workspaceId, apiKey: t.apiKey };
    y = await t.addWorkspace('workspace-y');
    z = await t.addWorkspace('workspace-z');
    xAgent = await t.connect((await t.enrol(X_LABEL)).token);
    for (const [name, protocol] of [['echo', 'tcp'], ['db', 'tcp'], ['web', 'http'], ['other-secret', 'tcp']] as const) {
      const reply = await xAgent.request('expose', { name, target: '10.9.8.7:5432', protocol });
      assert.equal((reply as { ok: boolean }).ok, true, JSON.stringify(reply));
    }
  });

  after(async () => {
    xAgent?.ws.close();
    await t?.close();
  });

  test('creates a share of existing services: the code is shown once, stored only as its SHA-256, and audited', async () => {
    const created = await create(x, { name: 'acme-contractor', services: ['echo', 'db', 'echo'], rate: 60 });
    assert.match(created.code, /^pcs_[A-Za-z0-9]{32}$/);
    assert.equal(created.share.prefix, created.code.slice(0, 8));
    assert.deepEqual(created.share.services, ['echo', 'db']);
    assert.equal(created.share.state, 'pending');
    assert.equal(created.share.ratePerMin, 60);
    assert.equal(created.share.expiresAt, new Date(t.clock.now().getTime() + 7 * DAY).toISOString());
    const [row] = await t.hub.db.withSystem((tx) => tx.query<Record<string, unknown>>('select * from shares where id = $1', [created.share.id]));
    assert.deepEqual(row!.code_hash, createHash('sha256').update(created.code).digest());
    assert.ok(!JSON.stringify(row).includes(created.code.slice(8)), 'no column holds the code');
    const listed = (await api(x, 'GET', '/v1/shares')).body as ShareList;
    assert.ok(listed.owned.some((s) => s.id === created.share.id));
    assert.ok(!JSON.stringify(listed).includes(created.code), 'the code is never listed');
    const [event] = await audit(x, 'share.create');
    assert.equal(event!.targetId, created.share.id);
    assert.deepEqual(event!.metadata.services, ['echo', 'db']);
  });

  test('refuses missing services, method/path limits on TCP services, bad names, durations and limits', async () => {
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['echo', 'nope'], expiresIn: '1d' }), 404, 'SERVICE_NOT_FOUND', /Service not found: nope/);
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['web', 'db'], expiresIn: '1d', methods: ['GET'] }), 400, 'HTTP_ONLY_LIMIT', /"db" is a TCP service/);
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['echo'], expiresIn: '1d', paths: ['/api'] }), 400, 'HTTP_ONLY_LIMIT');
    await refused(api(x, 'POST', '/v1/shares', { name: 'Not A Name', services: ['echo'], expiresIn: '1d' }), 400, 'INVALID_NAME');
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['echo'], expiresIn: 'soon' }), 400, 'BAD_REQUEST', /not a duration/);
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['echo'], expiresIn: '366d' }), 400, 'BAD_REQUEST', /at most 365 days/);
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['echo'], expiresIn: '1d', rate: 0 }), 400, 'BAD_REQUEST');
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: ['web'], expiresIn: '1d', methods: ['G ET'] }), 400, 'BAD_REQUEST');
    const tooMany = Array.from({ length: MAX_SHARE_SERVICES + 1 }, (_, i) => `s${i}`);
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: tooMany, expiresIn: '1d' }), 400, 'BAD_REQUEST');
    await refused(api(x, 'POST', '/v1/shares', { name: 'a', services: [], expiresIn: '1d' }), 400, 'BAD_REQUEST');
    await create(x, { name: 'twice', services: ['echo'] });
    await refused(api(x, 'POST', '/v1/shares', { name: 'twice', services: ['db'], expiresIn: '1d' }), 409, 'SHARE_NAME_TAKEN');
    // HTTP limits on an HTTP service are fine, normalised.
    const web = await create(x, { name: 'web-only', services: ['web'], methods: ['get', 'POST'], paths: ['/api/v1/'] });
    assert.deepEqual([web.share.methods, web.share.paths], [['GET', 'POST'], ['/api/v1']]);
  });

  test('a share opens to exactly one workspace: a second join, a third workspace and the owner itself are refused', async () => {
    const { share, code } = await create(x, { name: 'once', services: ['echo'] });
    const joined = await api(y, 'POST', '/v1/shares/join', { code });
    assert.equal(joined.status, 201, JSON.stringify(joined.body));
    const info = joined.body as JoinedShareInfo;
    const [owner] = await t.hub.db.withSystem((tx) => tx.query<{ name: string }>('select name from workspaces where id = $1', [x.workspaceId]));
    assert.deepEqual([info.alias, info.services, info.state, info.ownerWorkspace], ['once', ['echo'], 'joined', owner!.name]);
    assert.match(await refused(api(y, 'POST', '/v1/shares/join', { code }), 409, 'SHARE_ALREADY_JOINED'), /already joined this share as "once"/);
    const third = await refused(api(z, 'POST', '/v1/shares/join', { code, alias: 'mine' }), 409, 'SHARE_ALREADY_JOINED');
    assert.ok(!third.includes(y.workspaceId) && !third.includes('workspace-y'), 'who joined is not told');
    await refused(api(x, 'POST', '/v1/shares/join', { code }), 400, 'BAD_REQUEST', /your own workspace/);
    // Unknown and malformed codes: one answer, which never repeats the code.
    const unknown = await refused(api(z, 'POST', '/v1/shares/join', { code: `pcs_${'A'.repeat(32)}` }), 404, 'NOT_FOUND');
    assert.equal(await refused(api(z, 'POST', '/v1/shares/join', { code: 'hello' }), 404, 'NOT_FOUND'), unknown);
    assert.ok(!unknown.includes('AAAA'));
    // Both workspaces' audit logs have the join; the owner's names the grantee.
    const ownerSide = (await audit(x, 'share.join')).find((e) => e.targetId === share.id)!;
    assert.deepEqual([ownerSide.actorType, ownerSide.actorId, ownerSide.metadata.alias], ['share', y.workspaceId, 'once']);
    assert.ok((await audit(y, 'share.join')).some((e) => e.targetId === share.id && e.metadata.alias === 'once'));
    assert.deepEqual(await audit(z, 'share.join'), []);
  });

  test('an alias is unique among the joiner\'s live shares; --as picks another; an invalid alias is refused', async () => {
    const first = await create(x, { name: 'alias-a', services: ['echo'] });
    const second = await create(x, { name: 'alias-b', services: ['db'] });
    assert.equal((await api(z, 'POST', '/v1/shares/join', { code: first.code, alias: 'partner' })).status, 201);
    await refused(api(z, 'POST', '/v1/shares/join', { code: second.code, alias: 'partner' }), 409, 'SHARE_NAME_TAKEN', /--as/);
    await refused(api(z, 'POST', '/v1/shares/join', { code: second.code, alias: 'Partner/2' }), 400, 'INVALID_NAME');
    assert.equal((await api(z, 'POST', '/v1/shares/join', { code: second.code, alias: 'partner-2' })).status, 201);
    // Once the first is revoked its alias is free again.
    assert.equal((await api(x, 'DELETE', `/v1/shares/${first.share.id}`)).status, 204);
    const third = await create(x, { name: 'alias-c', services: ['echo'] });
    assert.equal((await api(z, 'POST', '/v1/shares/join', { code: third.code, alias: 'partner' })).status, 201);
  });

  test('expired and revoked codes join nothing, and say so', async () => {
    const soon = await create(x, { name: 'short', services: ['echo'], expiresIn: '1h' });
    const gone = await create(x, { name: 'gone', services: ['echo'] });
    assert.equal((await api(x, 'DELETE', `/v1/shares/${gone.share.id}`)).status, 204);
    await refused(api(y, 'POST', '/v1/shares/join', { code: gone.code }), 410, 'SHARE_REVOKED', /revoked by its owner/);
    t.clock.advance(2 * 60 * 60 * 1000);
    await refused(api(y, 'POST', '/v1/shares/join', { code: soon.code }), 410, 'SHARE_EXPIRED', new RegExp(`expired at ${soon.share.expiresAt}`));
    const states = Object.fromEntries(((await api(x, 'GET', '/v1/shares')).body as ShareList).owned.map((s) => [s.name, s.state]));
    assert.equal(states.short, 'expired');
    assert.equal(states.gone, 'revoked');
  });

  test('the joiner lists what the share says and nothing else of the owner; the owner sees who joined', async () => {
    const { share, code } = await create(x, { name: 'listing', services: ['db'], rate: 5 });
    await api(y, 'POST', '/v1/shares/join', { code, alias: 'acme' });
    const mine = (await api(y, 'GET', '/v1/shares')).body as ShareList;
    assert.deepEqual(mine.owned, []);
    const entry = mine.joined.find((s) => s.id === share.id)!;
    assert.deepEqual([entry.alias, entry.name, entry.services, entry.ratePerMin], ['acme', 'listing', ['db'], 5]);
    const text = JSON.stringify(mine);
    for (const secret of ['other-secret', X_LABEL, '10.9.8.7', 'web', x.workspaceId]) assert.ok(!text.includes(secret), `the joiner's list shows ${secret}`);
    const owner = ((await api(x, 'GET', '/v1/shares')).body as ShareList).owned.find((s) => s.id === share.id)!;
    assert.deepEqual(owner.grantee && [owner.grantee.workspaceId, owner.grantee.workspaceName, owner.grantee.alias], [y.workspaceId, 'workspace-y', 'acme']);
  });

  test('revoke: the owner only; another workspace\'s share and a missing id get the same 404; audited once', async () => {
    const { share } = await create(x, { name: 'to-revoke', services: ['echo'] });
    const missing = randomUUID();
    for (const who of [y, z]) {
      const hidden = await api(who, 'DELETE', `/v1/shares/${share.id}`);
      const none = await api(who, 'DELETE', `/v1/shares/${missing}`);
      assert.equal(hidden.status, 404);
      assert.equal(JSON.stringify(hidden.body).replace(share.id, '<ID>'), JSON.stringify(none.body).replace(missing, '<ID>'));
    }
    await refused(api(x, 'DELETE', '/v1/shares/not-a-uuid'), 404, 'NOT_FOUND');
    assert.equal((await api(x, 'DELETE', `/v1/shares/${share.id}`)).status, 204);
    assert.equal((await api(x, 'DELETE', `/v1/shares/${share.id}`)).status, 204, 'revoking again is harmless');
    assert.equal((await audit(x, 'share.revoke')).filter((e) => e.targetId === share.id).length, 1);
  });

  test('row level security: neither another workspace nor the joiner can read, change or add the owner\'s share rows', async () => {
    const { share, code } = await create(x, { name: 'rls', services: ['echo'] });
    await api(y, 'POST', '/v1/shares/join', { code, alias: 'rls-alias' });
    for (const who of [y, z]) {
      await t.hub.db.withWorkspace(who.workspaceId, async (tx) => {
        assert.deepEqual(await tx.query('select id from shares where id = $1', [share.id]), []);
        assert.deepEqual(await tx.query(`update shares set revoked_at = now(), services = '{other-secret}' where id = $1 returning id`, [share.id]), []);
      });
      await assert.rejects(
        t.hub.db.withWorkspace(who.workspaceId, (tx) =>
          tx.query(`insert into shares (workspace_id, name, code_hash, code_prefix, services, created_by_type, expires_at) values ($1, 'intruder', $2, 'pcs_x', '{echo}', 'user', now() + interval '1 day')`, [x.workspaceId, Buffer.alloc(32, 7)]),
        ),
        isPgError('42501', /row-level security/),
      );
      await assert.rejects(t.hub.db.withWorkspace(who.workspaceId, (tx) => tx.query('delete from shares where id = $1', [share.id])), isPgError('42501', /permission denied/));
    }
    const [row] = await t.hub.db.withSystem((tx) => tx.query<{ revoked_at: Date | null; services: string[] }>('select revoked_at, services from shares where id = $1', [share.id]));
    assert.deepEqual([row!.revoked_at, row!.services], [null, ['echo']]);
  });

  test('share codes never reach the logs', () => {
    const code = `pcs_${'aB3'.repeat(10)}xy`;
    assert.equal(redactSecrets(`joined with ${code}.`), 'joined with pcs_[REDACTED].');
  });
});
