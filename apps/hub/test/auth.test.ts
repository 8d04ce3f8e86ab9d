/** Magic-link sign-in and sessions: single use, expiry, replay, cookie flags, inactivity, logout, first sign-in. */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LOGIN_LINK_TTL_MS } from '../src/store/magic-links.js';
import { SESSION_IDLE_MS } from '../src/store/sessions.js';
import { sessionCookie, sessionSetCookie, startIdentityHub, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';
import { startSmtpSink } from './support/smtp-sink.js';

const DAY = 86_400_000;
let n = 0;
const newEmail = () => `user${++n}-${randomBytes(3).toString('hex')}@example.com`;

describe(`magic-link sign-in and sessions (${dbKind})`, () => {
  let h: IdentityHub;
  before(async () => {
    h = await startIdentityHub();
  });
  after(async () => {
    await h?.dispose();
  });

  const login = (email: string) => h.request('POST', '/v1/auth/login', { body: { email } });
  const verify = (token: string) => h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(token)}`);

  it('answers 202 with the same body shape for a known and an unknown address', async () => {
    const known = newEmail();
    await h.signIn(known);
    const a = await login(known);
    const b = await login(newEmail());
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.deepEqual(Object.keys(a.body).sort(), Object.keys(b.body).sort());
  });

  it('prints a link with a 256-bit token under /auth/verify when SMTP_URL is not set, and keeps it out of the log', async () => {
    const email = newEmail();
    await login(email);
    const link = new URL(h.lastLink(email));
    // On the dashboard URL the banner prints (public-urls.ts), so the session cookie lands where the dashboard is.
    assert.equal(link.origin + link.pathname, `http://localhost:${h.hub.webPort}/auth/verify`);
    const token = link.searchParams.get('token')!;
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    assert.ok(h.logs.some((l) => l.to === email && /printed on the console/.test(String(l.msg))));
    assert.ok(!JSON.stringify(h.logs).includes(token));
  });

  it('creates the user and a personal workspace it owns on first sign-in, and not again', async () => {
    const email = newEmail();
    await login(email);
    const first = await verify(h.lastLinkToken(email));
    assert.equal(first.status, 200);
    assert.equal(first.body.newUser, true);
    const cookie = sessionCookie(first.headers)!;
    const me = await h.request('GET', '/v1/me', { cookie });
    assert.deepEqual(me.body, { kind: 'user', workspaceId: first.body.workspaceId, userId: first.body.userId, email, role: 'owner' });
    const list = await h.request('GET', '/v1/workspaces', { cookie });
    assert.deepEqual(list.body.workspaces.map((w: { id: string; role: string }) => [w.id, w.role]), [[first.body.workspaceId, 'owner']]);

    await login(email.toUpperCase());
    const second = await verify(h.lastLinkToken(email));
    assert.equal(second.body.newUser, false);
    assert.equal(second.body.userId, first.body.userId);
    assert.equal(second.body.workspaceId, first.body.workspaceId);
    const audit = await h.hub.db.withWorkspace(first.body.workspaceId, (tx) => tx.query<{ action: string }>('select action from audit_log order by id'));
    assert.deepEqual(audit.map((a) => a.action), ['workspace.create', 'login', 'login']);
  });

  it('refuses a link used a second time with LINK_USED', async () => {
    const email = newEmail();
    await login(email);
    const token = h.lastLinkToken(email);
    assert.equal((await verify(token)).status, 200);
    const replay = await verify(token);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error.code, 'LINK_USED');
    assert.equal(sessionCookie(replay.headers), undefined);
  });

  it('accepts a link just before 15 minutes and refuses it with LINK_EXPIRED at 15 minutes', async () => {
    const email = newEmail();
    await login(email);
    const early = h.lastLinkToken(email);
    await login(email);
    const late = h.lastLinkToken(email);
    h.clock.advance(LOGIN_LINK_TTL_MS - 1);
    assert.equal((await verify(early)).status, 200);
    h.clock.advance(1);
    const expired = await verify(late);
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error.code, 'LINK_EXPIRED');
  });

  it('refuses an unknown, empty or oversized token without a cookie', async () => {
    for (const token of [randomBytes(32).toString('base64url'), 'x']) {
      const answer = await verify(token);
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error.code, 'UNAUTHORIZED');
      assert.equal(sessionCookie(answer.headers), undefined);
    }
    assert.equal((await h.request('POST', '/v1/auth/verify')).status, 401);
    assert.equal((await verify('a'.repeat(129))).status, 400);
  });

  it('refuses an address that is not one, or longer than 254 characters', async () => {
    for (const email of ['not-an-email', '', `${'a'.repeat(250)}@example.com`]) {
      const answer = await login(email);
      assert.equal(answer.status, 400, email);
      assert.equal(answer.body.error.code, 'BAD_REQUEST');
    }
  });

  it('sets the session cookie HttpOnly, SameSite=Lax, Path=/ and not Secure over plain http', async () => {
    const email = newEmail();
    await login(email);
    const answer = await verify(h.lastLinkToken(email));
    const line = sessionSetCookie(answer.headers)!;
    assert.match(line, /; HttpOnly/);
    assert.match(line, /; SameSite=Lax/);
    assert.match(line, /; Path=\//);
    assert.doesNotMatch(line, /Secure/);
    assert.doesNotMatch(JSON.stringify(answer.body), new RegExp(sessionCookie(answer.headers)!.split('=')[1]!));
  });

  it('answers a GET of the link with the sign-in page, without a cookie and without using the link up', async () => {
    const email = newEmail();
    await login(email);
    const token = h.lastLinkToken(email);
    const answer = await h.request('GET', `/v1/auth/verify?token=${token}`);
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.get('location'), `/auth/verify?token=${token}`);
    assert.equal(sessionCookie(answer.headers), undefined);
    // The link still works once, by POST.
    assert.equal((await verify(token)).status, 200);
  });

  it('keeps a session in use alive past 30 days and ends it after 30 days unused', async () => {
    const { cookie } = await h.signIn(newEmail());
    for (let i = 0; i < 3; i++) {
      h.clock.advance(SESSION_IDLE_MS - DAY);
      assert.equal((await h.request('GET', '/v1/me', { cookie })).status, 200, `use ${i}`);
    }
    h.clock.advance(SESSION_IDLE_MS - 1);
    assert.equal((await h.request('GET', '/v1/me', { cookie })).status, 200);
    h.clock.advance(SESSION_IDLE_MS);
    const ended = await h.request('GET', '/v1/me', { cookie });
    assert.equal(ended.status, 401);
    assert.equal(ended.body.error.code, 'SESSION_EXPIRED');
  });

  it('writes last_seen_at at most once a minute', async () => {
    const { cookie, userId } = await h.signIn(newEmail());
    const lastSeen = async () =>
      (await h.hub.db.withSystem((tx) => tx.query<{ t: Date }>('select last_seen_at as t from sessions where user_id = $1', [userId])))[0]!.t.valueOf();
    const start = await lastSeen();
    h.clock.advance(59_000);
    await h.request('GET', '/v1/me', { cookie });
    assert.equal(await lastSeen(), start);
    h.clock.advance(1_000);
    await h.request('GET', '/v1/me', { cookie });
    assert.equal(await lastSeen(), h.clock.now().valueOf());
  });

  it('ends the session at logout and clears the cookie', async () => {
    const { cookie } = await h.signIn(newEmail());
    const other = await h.signIn(newEmail());
    const out = await h.request('POST', '/v1/auth/logout', { cookie });
    assert.equal(out.status, 204);
    assert.match(sessionSetCookie(out.headers)!, /^pc_session=;/);
    const after = await h.request('GET', '/v1/me', { cookie });
    assert.equal(after.status, 401);
    assert.equal(after.body.error.code, 'SESSION_EXPIRED');
    assert.equal((await h.request('GET', '/v1/me', { cookie: other.cookie })).status, 200);
  });

  it('refuses a made-up session cookie', async () => {
    const answer = await h.request('GET', '/v1/me', { cookie: `pc_session=${randomBytes(32).toString('hex')}` });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error.code, 'UNAUTHORIZED');
  });

  it('stores only hashes of link and session secrets', async () => {
    const email = newEmail();
    await login(email);
    const token = h.lastLinkToken(email);
    const answer = await verify(token);
    const session = sessionCookie(answer.headers)!.split('=')[1]!;
    const dump = await h.hub.db.withSystem((tx) =>
      tx.query<{ t: string }>(`select (select string_agg(encode(token_hash, 'hex'), ',') from magic_links) || (select string_agg(encode(token_hash, 'hex'), ',') from sessions) as t`),
    );
    assert.ok(!dump[0]!.t.includes(session));
    assert.ok(!dump[0]!.t.includes(Buffer.from(token, 'base64url').toString('hex')));
  });
});

describe(`session cookie behind TLS (${dbKind})`, () => {
  it('sets Secure and links to HUB_PUBLIC_URL when it is https', async () => {
    const h = await startIdentityHub({ HUB_PUBLIC_URL: 'https://hub.example.com' });
    try {
      const email = newEmail();
      await h.request('POST', '/v1/auth/login', { body: { email } });
      assert.ok(h.lastLink(email).startsWith('https://hub.example.com/auth/verify?token='));
      const answer = await h.request('POST', `/v1/auth/verify?token=${h.lastLinkToken(email)}`);
      assert.match(sessionSetCookie(answer.headers)!, /; Secure/);
    } finally {
      await h.dispose();
    }
  });
});

describe(`sign-in links by SMTP (${dbKind})`, () => {
  it('mails the link through SMTP_URL instead of printing it, and the mailed link signs in', async () => {
    const smtp = await startSmtpSink();
    const h = await startIdentityHub({ SMTP_URL: smtp.url, SMTP_FROM: 'hub@example.com' });
    try {
      const email = newEmail();
      const login = await h.request('POST', '/v1/auth/login', { body: { email } });
      assert.equal(login.status, 202);
      // The 202 does not wait for delivery; the mail arrives on the SMTP socket shortly after.
      const deadline = Date.now() + 10_000;
      while (smtp.mails.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(smtp.mails.length, 1, 'one mail reached the SMTP server');
      const mail = smtp.mails[0]!;
      assert.equal(mail.from, 'hub@example.com');
      assert.deepEqual(mail.to, [email]);
      assert.equal(h.console.filter((l) => l.includes(email)).length, 0, 'with SMTP the link is not printed');
      // nodemailer sends long lines quoted-printable: undo soft line breaks and =XX escapes.
      const body = mail.data.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      const link = /https?:\/\/\S+\/auth\/verify\?token=[A-Za-z0-9_-]+/.exec(body)?.[0];
      assert.ok(link, `no link in the mail:\n${mail.data}`);
      const token = new URL(link).searchParams.get("token")!;
      assert.ok(!JSON.stringify(h.logs).includes(token), 'the mailed token is not in the log');
      const verify = await h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(token)}`);
      assert.equal(verify.status, 200, JSON.stringify(verify.body));
      assert.ok(sessionCookie(verify.headers));
    } finally {
      await h.dispose();
      await smtp.close();
    }
  });
});
