/**
 * The browser pages, driven as a browser would (form posts, cookies, redirects): sign in through the link a mail
 * carries, approve `connect up` on /device, and what the pages refuse.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startIdentityHub, sessionCookie, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';
import { DEVICE_CODE_TTL_MS } from '../src/store/device-codes.js';

const newEmail = () => `page-${randomBytes(4).toString('hex')}@example.com`;

interface PageAnswer {
  status: number;
  location: string | null;
  setCookie: string | undefined;
  headers: Headers;
  text: string;
}

describe(`browser pages: sign-in and device approval (${dbKind})`, () => {
  let h: IdentityHub;
  before(async () => {
    // The server-rendered home is what a hub without the dashboard build serves at / (pages/spa.ts).
    h = await startIdentityHub({ WEB_DIST_DIR: '/nonexistent/web-dist' });
  });
  after(async () => {
    await h?.dispose();
  });

  const get = async (path: string, cookie?: string): Promise<PageAnswer> => {
    const res = await fetch(new URL(path, h.hub.url), { redirect: 'manual', headers: cookie ? { cookie } : {} });
    return { status: res.status, location: res.headers.get('location'), setCookie: sessionCookie(res.headers), headers: res.headers, text: await res.text() };
  };
  const post = async (path: string, form: Record<string, string>, options: { cookie?: string; origin?: string } = {}): Promise<PageAnswer> => {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (options.cookie) headers.cookie = options.cookie;
    // A browser sends the page's Origin with every form post.
    headers.origin = options.origin ?? h.hub.url;
    const res = await fetch(new URL(path, h.hub.url), { method: 'POST', redirect: 'manual', headers, body: new URLSearchParams(form).toString() });
    return { status: res.status, location: res.headers.get('location'), setCookie: sessionCookie(res.headers), headers: res.headers, text: await res.text() };
  };
  /** Follows the page flow: /login form, the printed link's page, its button. Returns the cookie and where it led. */
  const signInByPage = async (email: string, next: string) => {
    const login = await get(`/login?next=${encodeURIComponent(next)}`);
    assert.equal(login.status, 200);
    assert.match(login.text, /name="email"/);
    const sent = await post('/login', { email, next });
    assert.equal(sent.status, 202, sent.text);
    assert.match(sent.text, /Check your email/);
    const link = new URL(h.lastLink(email));
    assert.equal(link.pathname, '/auth/verify');
    if (next.startsWith('/') && !next.startsWith('//')) assert.equal(link.searchParams.get('next'), next);
    else assert.equal(link.searchParams.get('next'), null, `next=${next} leaves the hub and is dropped`);
    const landing = await get(link.pathname + link.search);
    assert.equal(landing.status, 200);
    assert.equal(landing.setCookie, undefined, 'opening the link alone must not sign in');
    const token = /name="token" value="([^"]+)"/.exec(landing.text)?.[1];
    assert.equal(token, link.searchParams.get('token'));
    const signedIn = await post('/auth/verify', { token: token!, next: /name="next" value="([^"]*)"/.exec(landing.text)![1]! });
    assert.equal(signedIn.status, 303, signedIn.text);
    assert.ok(signedIn.setCookie, 'the button press signs in');
    return { cookie: signedIn.setCookie!, location: signedIn.location };
  };

  it('approves `connect up` in the browser: login, back to /device, pick the workspace, the agent is enrolled there', async () => {
    const code = await h.request('POST', '/v1/device/code', { body: { label: 'build-box', hostname: 'build-box.local', platform: 'linux' } });
    assert.equal(code.status, 200);
    const { user_code, device_code, verification_uri_complete } = code.body as Record<string, string>;
    const devicePath = new URL(verification_uri_complete!).pathname + new URL(verification_uri_complete!).search;

    // Not signed in: the page sends the browser to sign in, and back here afterwards.
    const anonymous = await get(devicePath);
    assert.equal(anonymous.status, 303);
    const next = new URL(anonymous.location!, h.hub.url).searchParams.get('next');
    assert.equal(next, devicePath);

    const email = newEmail();
    const { cookie, location } = await signInByPage(email, next!);
    assert.equal(location, devicePath);
    const team = await h.request('POST', '/v1/workspaces', { cookie, body: { name: 'build-team' } });
    assert.equal(team.status, 201, JSON.stringify(team.body));

    const form = await get(location!, cookie);
    assert.equal(form.status, 200);
    assert.equal(form.headers.get('x-frame-options'), 'DENY', 'the approval page may not be framed (clickjacking)');
    assert.match(form.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    assert.ok(form.text.includes('build-box.local'), 'the page shows which machine asks');
    assert.ok(form.text.includes(`value="${user_code}"`), 'the code is filled in');
    assert.ok(form.text.includes(`value="${team.body.id}"`), 'the new workspace can be picked');

    const pending = await h.request('POST', '/v1/device/token', { body: { device_code } });
    assert.equal(pending.body.error.code, 'AUTHORIZATION_PENDING');
    const approved = await post('/device', { user_code: user_code!.toLowerCase(), workspace_id: team.body.id }, { cookie });
    assert.equal(approved.status, 200, approved.text);
    assert.match(approved.text, /Device approved/);
    assert.match(approved.text, /build-team/);

    const enrolled = await h.request('POST', '/v1/device/token', { body: { device_code } });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    assert.equal(enrolled.body.workspaceId, team.body.id);
    const again = await post('/device', { user_code: user_code!, workspace_id: team.body.id }, { cookie });
    assert.equal(again.status, 404);
    assert.match(again.text, /unknown, expired or already approved/);
  });

  it('refuses approval without a session, into a workspace the user is not in, from another site, and for an expired code', async () => {
    const owner = await h.signIn(newEmail());
    const outsider = await h.signIn(newEmail());
    const code = (await h.request('POST', '/v1/device/code', { body: { label: 'victim' } })).body as Record<string, string>;

    const noSession = await post('/device', { user_code: code.user_code!, workspace_id: owner.workspaceId });
    assert.equal(noSession.status, 303);
    assert.match(noSession.location!, /^\/login\?next=/);

    const foreign = await post('/device', { user_code: code.user_code!, workspace_id: owner.workspaceId }, { cookie: outsider.cookie });
    assert.equal(foreign.status, 404);
    assert.match(foreign.text, /Workspace not found/);

    const crossSite = await post('/device', { user_code: code.user_code!, workspace_id: owner.workspaceId }, { cookie: owner.cookie, origin: 'https://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.match(crossSite.text, /another site/);

    const stillPending = await h.request('POST', '/v1/device/token', { body: { device_code: code.device_code } });
    assert.equal(stillPending.body.error.code, 'AUTHORIZATION_PENDING', 'nothing was approved by the refused posts');

    h.clock.advance(DEVICE_CODE_TTL_MS + 1000);
    const expiredForm = await get(`/device?code=${code.user_code}`, owner.cookie);
    assert.equal(expiredForm.status, 200);
    assert.match(expiredForm.text, /unknown, expired or already approved/);
    assert.ok(!expiredForm.text.includes('<dt>Machine</dt>'), 'an expired code shows no machine');
    const expired = await post('/device', { user_code: code.user_code!, workspace_id: owner.workspaceId }, { cookie: owner.cookie });
    assert.equal(expired.status, 404);
  });

  it('a sign-in link works once, and only leads to a path on this hub', async () => {
    const email = newEmail();
    const { location } = await signInByPage(email, '//evil.example/steal');
    assert.equal(location, '/', 'a next that leaves the hub is replaced by /');
    const token = h.lastLinkToken(email);
    const replay = await post('/auth/verify', { token, next: '/' });
    assert.equal(replay.status, 401);
    assert.equal(replay.setCookie, undefined);
    assert.match(replay.text, /Ask for a new link/);

    for (const bad of ['https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const sent = await post('/login', { email, next: bad });
      assert.equal(sent.status, 202);
      assert.equal(new URL(h.lastLink(email)).searchParams.get('next'), null, `next=${bad} is dropped`);
    }
  });

  it('escapes what a user typed and answers bad input with a page, not a crash', async () => {
    const user = await h.signIn(newEmail());
    const typed = '<script>alert(1)</script>';
    const form = await get(`/device?code=${encodeURIComponent(typed)}`, user.cookie);
    assert.equal(form.status, 200);
    assert.ok(!form.text.includes('<script>'), 'the typed code is escaped');
    assert.ok(form.text.includes('&lt;script&gt;'));

    const badEmail = await post('/login', { email: 'not an address' });
    assert.equal(badEmail.status, 400);
    assert.match(badEmail.headers.get('content-type')!, /text\/html/);
    const home = await get('/', user.cookie);
    assert.match(home.text, /Signed in as/);
    const out = await post('/logout', {}, { cookie: user.cookie });
    assert.equal(out.status, 303);
    const after = await get('/device', user.cookie);
    assert.equal(after.status, 303, 'signed out: the session no longer opens /device');
  });
});
