/**
 * The session cookie's name over https: `__Host-pc_session`, which browsers take only with Secure, Path=/ and no
 * Domain from the hub's own host, so a sibling host (a subdomain-mode public link) cannot set or shadow it. Over https
 * the hub reads only that name: a plain `pc_session` there may have been set by any host of the parent domain.
 * Here https is what a TLS proxy in front of the hub says (TRUST_PROXY=loopback, X-Forwarded-Proto: https).
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '@private-connect/sdk';
import { startIdentityHub, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';

describe(`the session cookie is __Host-pc_session over https (${dbKind})`, () => {
  let h: IdentityHub;
  const https = { 'x-forwarded-proto': 'https' };

  before(async () => {
    h = await startIdentityHub({ TRUST_PROXY: 'loopback' });
  });

  after(async () => {
    await h?.dispose();
  });

  /** Signs `email` in over `headers` (https or not) and returns the Set-Cookie line of the session. */
  const signIn = async (email: string, headers: Record<string, string>): Promise<string> => {
    assert.equal((await h.request('POST', '/v1/auth/login', { body: { email }, headers })).status, 202);
    const verify = await h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(h.lastLinkToken(email))}`, { headers });
    assert.equal(verify.status, 200, JSON.stringify(verify.body));
    const line = verify.headers.getSetCookie().find((c) => /^(__Host-)?pc_session=/.test(c));
    assert.ok(line, verify.headers.getSetCookie().join('\n'));
    return line;
  };

  test('signing in over https sets __Host-pc_session (Secure, Path=/, no Domain); only that name is read there', async () => {
    const line = await signIn('secure@example.com', https);
    assert.match(line, /^__Host-pc_session=[^;]+;/);
    assert.match(line, /;\s*Secure(;|$)/i);
    assert.match(line, /;\s*Path=\/(;|$)/);
    assert.doesNotMatch(line, /;\s*Domain=/i);
    const value = line.split(';')[0]!.slice('__Host-pc_session='.length);

    const me = await h.request('GET', '/v1/me', { cookie: `__Host-pc_session=${value}`, headers: https });
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.email, 'secure@example.com');
    // The plain name over https: what any sibling host could have set for the parent domain.
    assert.equal((await h.request('GET', '/v1/me', { cookie: `pc_session=${value}`, headers: https })).status, 401);
    // A plain cookie beside the real one changes nothing; beside a forged __Host- one it does not help either.
    assert.equal((await h.request('GET', '/v1/me', { cookie: `pc_session=forged; __Host-pc_session=${value}`, headers: https })).status, 200);
    assert.equal((await h.request('GET', '/v1/me', { cookie: `__Host-pc_session=forged; pc_session=${value}`, headers: https })).status, 401);

    const out = await h.request('POST', '/v1/auth/logout', { cookie: `__Host-pc_session=${value}`, headers: { ...https, origin: `https://127.0.0.1:${h.hub.port}` } });
    assert.equal(out.status, 204, JSON.stringify(out.body));
    const cleared = out.headers.getSetCookie().find((c) => c.startsWith('__Host-pc_session='));
    assert.ok(cleared, out.headers.getSetCookie().join('\n'));
    assert.match(cleared, /;\s*Secure(;|$)/i, 'a browser drops a __Host- cookie only with Secure');
  });

  test('over plain http the name stays pc_session', async () => {
    const line = await signIn('plain@example.com', {});
    assert.match(line, /^pc_session=[^;]+;/);
    const value = line.split(';')[0]!.slice('pc_session='.length);
    assert.equal((await h.request('GET', '/v1/me', { cookie: `pc_session=${value}` })).status, 200);
  });

  test('the SDK signs in and acts with the session whichever name the hub uses (https HUB_PUBLIC_URL, plain http to the hub)', async () => {
    const behindTls = await startIdentityHub({ HUB_PUBLIC_URL: 'https://hub.example' });
    try {
      const client = new ApiClient({ hubUrl: behindTls.hub.url });
      await client.requestLoginLink('sdk@example.com');
      const signedIn = await client.signIn(behindTls.lastLinkToken('sdk@example.com'));
      const me = await client.me();
      assert.equal(me.kind === 'user' ? me.email : me.kind, 'sdk@example.com');
      assert.ok(signedIn.session.length > 0);
      await client.signOut();
    } finally {
      await behindTls.dispose();
    }
  });
});
