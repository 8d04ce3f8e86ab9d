/**
 * The first start owns the hub: its one-time setup link (store/setup-links.ts, pages/setup-page.ts) makes whoever
 * signs in through it owner of the bootstrap workspace, once, for 24 hours; and every link a person gets points at
 * the dashboard URL the banner prints (public-urls.ts), so that its session cookie lands where the dashboard is.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { createSetupLink, SETUP_LINK_TTL_MS } from '../src/store/setup-links.js';
import { printWelcome } from '../src/welcome.js';
import { startIdentityHub, sessionCookie, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';

const newEmail = (what: string) => `${what}-${randomBytes(4).toString('hex')}@example.com`;

interface PageAnswer {
  status: number;
  location: string | null;
  cookie: string | undefined;
  text: string;
}

describe(`setup link: the first start owns the hub (${dbKind})`, () => {
  let h: IdentityHub;
  let bootstrap: string;
  before(async () => {
    h = await startIdentityHub();
    assert.ok(h.hub.bootstrap, 'a first start on an empty database bootstraps');
    bootstrap = h.hub.bootstrap.workspaceId;
  });
  after(async () => {
    await h?.dispose();
  });

  const get = async (path: string, cookie?: string): Promise<PageAnswer> => {
    const res = await fetch(new URL(path, h.hub.url), { redirect: 'manual', headers: cookie ? { cookie } : {} });
    return { status: res.status, location: res.headers.get('location'), cookie: sessionCookie(res.headers), text: await res.text() };
  };
  const post = async (path: string, form: Record<string, string>, origin = h.hub.url): Promise<PageAnswer> => {
    const res = await fetch(new URL(path, h.hub.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, location: res.headers.get('location'), cookie: sessionCookie(res.headers), text: await res.text() };
  };
  /** A new setup link for the bootstrap workspace, as `connect-hub setup-link` makes it (earlier ones stop working). */
  const freshSetupToken = async () => (await h.hub.db.withSystem((tx) => createSetupLink(tx, bootstrap, h.clock.now()))).token;
  /** Asks for a sign-in link on the setup page; returns the link printed for `email`. */
  const askLink = async (setupToken: string, email: string): Promise<URL> => {
    const sent = await post('/setup', { token: setupToken, email });
    assert.equal(sent.status, 202, sent.text);
    return new URL(h.lastLink(email));
  };
  /** Presses Sign in on the page a link opens. */
  const press = async (link: URL): Promise<PageAnswer> => {
    const landing = await get(link.pathname + link.search);
    assert.equal(landing.status, 200);
    assert.equal(landing.cookie, undefined, 'opening the link alone must not sign in');
    return post('/auth/verify', { token: link.searchParams.get('token')!, next: link.searchParams.get('next') ?? '/' });
  };
  const workspacesOf = async (cookie: string) =>
    ((await h.request('GET', '/v1/workspaces', { cookie })).body.workspaces as Array<{ id: string; role: string }>).map((w) => [w.id, w.role]);
  const memberOfBootstrap = async (email: string) =>
    h.hub.db.withSystem((tx) => tx.query<{ role: string }>('select m.role from workspace_members m join users u on u.id = m.user_id where u.email = $1 and m.workspace_id = $2', [email, bootstrap]));

  it('the first start makes a setup link that works for 24 hours, printed beside the API key on the dashboard URL', () => {
    const setup = h.hub.bootstrap!;
    assert.equal(setup.setupExpiresAt.getTime() - h.clock.now().getTime(), SETUP_LINK_TTL_MS);
    assert.equal(SETUP_LINK_TTL_MS, 24 * 3_600_000);
    assert.ok(h.hub.webPort, 'the test hub has a web port');
    assert.equal(h.hub.dashboardUrl, `http://localhost:${h.hub.webPort}`);
    let banner = '';
    printWelcome(h.hub, loadConfig({ HUB_PORT: '0', WEB_PORT: '0', HUB_HOST: '127.0.0.1' }), new Writable({ write: (c, _e, cb) => ((banner += c.toString()), cb()) }));
    assert.match(banner, new RegExp(`running on http://localhost:${h.hub.port} `));
    assert.ok(banner.includes(`Dashboard: http://localhost:${h.hub.webPort}\n`), banner);
    assert.ok(banner.includes(`    http://localhost:${h.hub.webPort}/setup?token=${setup.setupToken}\n`), banner);
    assert.match(banner, /works ONCE, for 24 hours/);
    assert.ok(banner.includes(setup.apiKey));
    assert.ok(!JSON.stringify(h.logs).includes(setup.setupToken), 'the setup link stays out of the log');
  });

  it('makes whoever signs in through it owner of the bootstrap workspace (audited), with no empty workspace of their own', async () => {
    const token = h.hub.bootstrap!.setupToken;
    const page = await get(`/setup?token=${encodeURIComponent(token)}`);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /owner/);
    assert.match(page.text, /<strong>default<\/strong>/);
    const email = newEmail('owner');
    const link = await askLink(token, email);
    assert.equal(link.origin, h.hub.dashboardUrl, 'the sign-in link points at the dashboard URL');
    assert.equal(link.searchParams.get('next'), `/welcome?workspace=${bootstrap}`);
    const signedIn = await press(link);
    assert.equal(signedIn.status, 303, signedIn.text);
    assert.equal(signedIn.location, `/welcome?workspace=${bootstrap}`);
    const cookie = signedIn.cookie!;
    const me = await h.request('GET', '/v1/me', { cookie });
    assert.equal(me.body.workspaceId, bootstrap, 'the bootstrap workspace is the default one');
    assert.equal(me.body.role, 'owner');
    assert.deepEqual(await workspacesOf(cookie), [[bootstrap, 'owner']]);
    // An owner manages members: what the bootstrap API key could not do.
    const invite = await h.request('POST', `/v1/workspaces/${bootstrap}/invites`, { cookie, body: { email: newEmail('invitee'), role: 'member' } });
    assert.equal(invite.status, 202, JSON.stringify(invite.body));
    const audit = await h.hub.db.withWorkspace(bootstrap, (tx) =>
      tx.query<{ actor_type: string; actor_id: string; target_id: string; metadata: Record<string, unknown> }>(`select actor_type, actor_id, target_id, metadata from audit_log where action = 'member.add'`),
    );
    assert.deepEqual(audit.map((a) => [a.actor_type, a.actor_id, a.target_id, a.metadata.role, a.metadata.via, a.metadata.email]), [['user', me.body.userId, me.body.userId, 'owner', 'setup', email]]);
  });

  it('works once: afterwards the page, a new link request and a sign-in link asked for before are refused with LINK_USED', async () => {
    const token = await freshSetupToken();
    const [first, second] = [newEmail('first'), newEmail('second')];
    const firstLink = await askLink(token, first);
    const secondLink = await askLink(token, second);
    assert.equal((await press(firstLink)).status, 303);
    assert.deepEqual(await memberOfBootstrap(first), [{ role: 'owner' }]);

    const late = await press(secondLink);
    assert.equal(late.status, 401);
    assert.match(late.text, /setup link was already used/);
    assert.equal(late.cookie, undefined);
    assert.deepEqual(await memberOfBootstrap(second), [], 'the second person got nothing');
    const api = await h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(secondLink.searchParams.get('token')!)}`);
    assert.equal(api.status, 401);
    assert.equal(api.body.error.code, 'LINK_USED');

    const page = await get(`/setup?token=${encodeURIComponent(token)}`);
    assert.equal(page.status, 401);
    assert.match(page.text, /This setup link does not work/);
    assert.match(page.text, /data-code="LINK_USED"/);
    assert.match(page.text, /connect-hub make-owner/);
    const third = newEmail('third');
    const again = await post('/setup', { token, email: third });
    assert.equal(again.status, 401);
    assert.throws(() => h.lastLink(third), /no link printed/);
  });

  it('expires after 24 hours, also for a sign-in link asked for just before (LINK_EXPIRED)', async () => {
    const token = await freshSetupToken();
    h.clock.advance(SETUP_LINK_TTL_MS - 60_000);
    const email = newEmail('late');
    const link = await askLink(token, email);
    h.clock.advance(2 * 60_000);
    const refused = await press(link);
    assert.equal(refused.status, 401);
    assert.match(refused.text, /setup link has expired/);
    assert.deepEqual(await memberOfBootstrap(email), []);
    const page = await get(`/setup?token=${encodeURIComponent(token)}`);
    assert.equal(page.status, 401);
    assert.match(page.text, /data-code="LINK_EXPIRED"/);
    assert.match(page.text, /connect-hub setup-link/);
  });

  it('a new setup link makes the earlier unused one stop working', async () => {
    const older = await freshSetupToken();
    const newer = await freshSetupToken();
    assert.match((await get(`/setup?token=${encodeURIComponent(older)}`)).text, /data-code="LINK_EXPIRED"/);
    assert.equal((await get(`/setup?token=${encodeURIComponent(newer)}`)).status, 200);
  });

  it('refuses any other token: unknown, missing, too long, a sign-in link of /login, and the setup token at /v1/auth/verify', async () => {
    for (const path of ['/setup', `/setup?token=${randomBytes(32).toString('base64url')}`, `/setup?token=${'a'.repeat(5000)}`]) {
      const page = await get(path);
      assert.equal(page.status, 401, path);
      assert.match(page.text, /data-code="UNAUTHORIZED"/, path);
    }
    const email = newEmail('login');
    await h.request('POST', '/v1/auth/login', { body: { email } });
    const loginToken = h.lastLinkToken(email);
    assert.equal((await get(`/setup?token=${encodeURIComponent(loginToken)}`)).status, 401, 'a sign-in link is not a setup link');
    const stranger = newEmail('stranger');
    assert.equal((await post('/setup', { token: randomBytes(32).toString('base64url'), email: stranger })).status, 401);
    assert.throws(() => h.lastLink(stranger), /no link printed/);
    const setupToken = await freshSetupToken();
    const asLogin = await h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(setupToken)}`);
    assert.equal(asLogin.status, 401, 'a setup link is not a sign-in link');
    assert.equal(asLogin.body.error.code, 'UNAUTHORIZED');
  });

  it('refuses a bad address with the form again, and a form post from another site', async () => {
    const token = await freshSetupToken();
    const bad = await post('/setup', { token, email: 'not-an-address' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /expected an email address/);
    assert.match(bad.text, /name="email"/);
    const email = newEmail('csrf');
    const forged = await post('/setup', { token, email }, 'https://evil.example');
    assert.equal(forged.status, 403);
    assert.throws(() => h.lastLink(email), /no link printed/);
  });

  it('a sign-in without the setup link still gets a workspace of its own, not the bootstrap one', async () => {
    const email = newEmail('plain');
    const { cookie, workspaceId } = await h.signIn(email);
    assert.notEqual(workspaceId, bootstrap);
    assert.deepEqual(await workspacesOf(cookie), [[workspaceId, 'owner']]);
    assert.deepEqual(await memberOfBootstrap(email), []);
  });

  it('an existing user who signs in through a setup link keeps their workspace and becomes owner of the bootstrap one', async () => {
    const email = newEmail('existing');
    const { workspaceId: own } = await h.signIn(email);
    const link = await askLink(await freshSetupToken(), email);
    const signedIn = await press(link);
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.location, `/welcome?workspace=${bootstrap}`, 'the dashboard is told to show the bootstrap workspace');
    assert.deepEqual((await workspacesOf(signedIn.cookie!)).sort(), [[bootstrap, 'owner'], [own, 'owner']].sort());
  });

  it('points every link a person gets at the dashboard URL: sign-in, invitation and device approval', async () => {
    const email = newEmail('links');
    await h.request('POST', '/v1/auth/login', { body: { email } });
    assert.equal(new URL(h.lastLink(email)).origin, `http://localhost:${h.hub.webPort}`);
    const { cookie, workspaceId } = await h.signIn(newEmail('inviter'));
    const invitee = newEmail('invitee');
    assert.equal((await h.request('POST', `/v1/workspaces/${workspaceId}/invites`, { cookie, body: { email: invitee, role: 'member' } })).status, 202);
    assert.equal(new URL(h.lastLink(invitee)).origin, h.hub.dashboardUrl);
    const device = await h.request('POST', '/v1/device/code', { body: { label: 'box' } });
    assert.equal(new URL(device.body.verification_uri).origin, h.hub.dashboardUrl);
  });
});

describe(`dashboard URL without a web port, and with HUB_PUBLIC_URL (${dbKind})`, () => {
  it('is the hub port on localhost with WEB_PORT=off', async () => {
    const h = await startIdentityHub({ WEB_PORT: 'off' });
    try {
      assert.equal(h.hub.dashboardUrl, `http://localhost:${h.hub.port}`);
      const email = newEmail('off');
      await h.request('POST', '/v1/auth/login', { body: { email } });
      assert.equal(new URL(h.lastLink(email)).origin, h.hub.dashboardUrl);
    } finally {
      await h.dispose();
    }
  });

  it('sends /welcome, where a setup sign-in lands, to the home page when the hub has no dashboard build', async () => {
    const h = await startIdentityHub({ WEB_DIST_DIR: '/nonexistent/web-dist' });
    try {
      const res = await fetch(`${h.hub.url}/welcome?workspace=${h.hub.bootstrap!.workspaceId}`, { redirect: 'manual', headers: { accept: 'text/html' } });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/');
    } finally {
      await h.dispose();
    }
  });

  it('is HUB_PUBLIC_URL when set, for the banner and the setup link too', async () => {
    const h = await startIdentityHub({ HUB_PUBLIC_URL: 'https://hub.example.com' });
    try {
      assert.equal(h.hub.dashboardUrl, 'https://hub.example.com');
      let banner = '';
      printWelcome(h.hub, loadConfig({ HUB_PUBLIC_URL: 'https://hub.example.com' }), new Writable({ write: (c, _e, cb) => ((banner += c.toString()), cb()) }));
      assert.ok(banner.includes('Dashboard: https://hub.example.com\n'), banner);
      assert.ok(banner.includes(`https://hub.example.com/setup?token=${h.hub.bootstrap!.setupToken}`), banner);
    } finally {
      await h.dispose();
    }
  });
});
