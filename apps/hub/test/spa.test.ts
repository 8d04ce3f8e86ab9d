/** The dashboard build served by the hub (pages/spa.ts) and the web port serving the same application. */

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startIdentityHub, type IdentityHub } from './support/identity-hub.js';

const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

describe('dashboard build and web port', () => {
  let h: IdentityHub;
  let dist: string;

  before(async () => {
    dist = await mkdtemp(join(tmpdir(), 'web-dist-'));
    await mkdir(join(dist, 'assets'));
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>dashboard fixture</title>');
    await writeFile(join(dist, 'assets', 'x.js'), 'console.log(1)');
    h = await startIdentityHub({ WEB_DIST_DIR: dist });
  });

  after(async () => {
    await h?.dispose();
    await rm(dist, { recursive: true, force: true });
  });

  const html = { accept: 'text/html,application/xhtml+xml' };

  test('serves index.html, uncached and with the CSP, at / and for every client-side route on reload', async () => {
    for (const path of ['/', '/agents', '/services', '/keys', '/audit', '/shares', '/links', '/members', '/agents/123?tab=x']) {
      const res = await fetch(h.hub.url + path, { headers: html });
      assert.equal(res.status, 200, path);
      assert.match(await res.text(), /dashboard fixture/, path);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('content-security-policy'), CSP);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
    }
  });

  test('serves /assets/* with long cache headers; a missing asset is a 404, not the page', async () => {
    const res = await fetch(`${h.hub.url}/assets/x.js`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'console.log(1)');
    assert.match(res.headers.get('cache-control') ?? '', /max-age=31536000.*immutable/);
    assert.equal(res.headers.get('content-security-policy'), CSP);
    const missing = await fetch(`${h.hub.url}/assets/nope.js`, { headers: html });
    assert.equal(missing.status, 404);
  });

  test('leaves API routes, unknown API paths, server-rendered pages and non-HTML requests alone', async () => {
    assert.deepEqual(await (await fetch(`${h.hub.url}/healthz`, { headers: html })).json(), { ok: true });
    const api = await fetch(`${h.hub.url}/v1/nope`, { headers: html });
    assert.equal(api.status, 404);
    assert.equal(((await api.json()) as any).error.code, 'NOT_FOUND');
    const login = await fetch(`${h.hub.url}/login`, { headers: html });
    assert.equal(login.status, 200);
    assert.match(await login.text(), /<form/);
    const json = await fetch(`${h.hub.url}/agents`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 404);
    const unauth = await fetch(`${h.hub.url}/v1/agents`, { headers: html });
    assert.equal(unauth.status, 401);
  });

  test('the web port serves the same application: dashboard, API and session cookie', async () => {
    assert.ok(h.hub.webUrl && h.hub.webPort && h.hub.webPort !== h.hub.port);
    assert.ok(h.logs.some((l) => l.msg === 'web listening' && l.port === h.hub.webPort));
    const page = await fetch(`${h.hub.webUrl}/members`, { headers: html });
    assert.match(await page.text(), /dashboard fixture/);
    const signed = await h.signIn('web-port@example.com');
    const me = await fetch(`${h.hub.webUrl}/v1/me`, { headers: { cookie: signed.cookie } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as any).email, 'web-port@example.com');
  });

  test('without a build, / keeps the server-rendered page and client routes are a 404', async () => {
    const bare = await startIdentityHub({ WEB_DIST_DIR: join(dist, 'missing'), WEB_PORT: 'off' });
    try {
      assert.equal(bare.hub.webUrl, undefined);
      const home = await fetch(bare.hub.url + '/', { headers: html });
      assert.equal(home.status, 200);
      assert.match(await home.text(), /Sign in/);
      assert.equal((await fetch(bare.hub.url + '/agents', { headers: html })).status, 404);
    } finally {
      await bare.dispose();
    }
  });
});
