/**
 * CSRF on the API, from the attacker's side (issue 20, class 4). A signed-in admin's browser carries the session
 * cookie to the hub whatever page makes it send a request: another site's, or a public link served as
 * `<token>.<PUBLIC_BASE_DOMAIN>` on the hub's own site. Requests here are what such pages can make a browser
 * send (form bodies, text/plain, JSON with a foreign Origin or Sec-Fetch-Site), over real sockets with node:http
 * so that every header is exactly the one written. Cookie requests that change state must be JSON from one of the
 * hub's own origins; bearer credentials are not affected; a GET of a sign-in link never signs in.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent } from '@private-connect/sdk';
import { findPendingDeviceCode } from '../src/store/device-codes.js';
import { startIdentityHub, type IdentityHub } from './support/identity-hub.js';
import { dbKind } from './support/test-database.js';

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One request with exactly these headers (node:http adds only Host, Connection and Content-Length). */
function raw(base: string, method: string, path: string, given: Record<string, string | undefined>, body?: string): Promise<RawAnswer> {
  const headers = Object.fromEntries(Object.entries(given).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const form = (fields: Record<string, string | string[]>) => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) params.append(k, one);
  return params.toString();
};

function assertCsrf(answer: RawAnswer, what: string): void {
  assert.equal(answer.status, 403, `${what}: ${answer.status} ${answer.text}`);
  assert.equal(answer.json?.error?.code, 'CSRF', `${what}: ${answer.text}`);
  assert.match(answer.json.error.message, /another site|which page|JSON/i, what);
}

describe(`CSRF: cookie sessions change state only with JSON from the hub's own origins (${dbKind})`, () => {
  const PUBLIC = 'http://hub.example.test';
  const BASE_DOMAIN = 'example.test';
  let h: IdentityHub;
  let owner: { cookie: string; workspaceId: string; userId: string };
  let apiKey = '';
  let agent: Agent;
  let echo: net.Server;
  /** The origin of one of the workspace's own public links in subdomain mode: same site as the hub, not its origin. */
  let linkOrigin = '';

  before(async () => {
    h = await startIdentityHub({ HUB_PUBLIC_URL: PUBLIC, PUBLIC_BASE_DOMAIN: BASE_DOMAIN });
    owner = await h.signIn('csrf-owner@example.com');
    const key = await raw(h.hub.url, 'POST', '/v1/api-keys', { cookie: owner.cookie, origin: h.hub.url, 'content-type': 'application/json' }, JSON.stringify({ name: 'setup' }));
    assert.equal(key.status, 201, key.text);
    apiKey = key.json.key;
    echo = net.createServer((s) => s.on('error', () => undefined).pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const enrolled = await raw(h.hub.url, 'POST', '/v1/agents/enroll', { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, JSON.stringify({ label: 'csrf-server' }));
    assert.equal(enrolled.status, 201, enrolled.text);
    agent = new Agent({ hubUrl: h.hub.url, token: enrolled.json.token, label: 'csrf-server' });
    await agent.expose('web', `127.0.0.1:${(echo.address() as net.AddressInfo).port}`);
    const link = await raw(h.hub.url, 'POST', '/v1/links', { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, JSON.stringify({ service: 'web' }));
    assert.equal(link.status, 201, link.text);
    assert.ok(link.json.subdomainUrl, link.text);
    linkOrigin = new URL(link.json.subdomainUrl).origin;
  });

  after(async () => {
    await agent?.close().catch(() => undefined);
    await new Promise((r) => echo?.close(r));
    await h?.dispose();
  });

  const bearerHeaders = () => ({ authorization: `Bearer ${apiKey}` });
  const count = async (path: string, field: string) => {
    const answer = await raw(h.hub.url, 'GET', path, bearerHeaders());
    assert.equal(answer.status, 200, answer.text);
    return (answer.json[field] as unknown[]).length;
  };
  const invitesMailedTo = (email: string) => h.console.filter((line) => line.includes(` link for ${email}: `)).length;
  const newUserCode = async () => {
    const code = await raw(h.hub.url, 'POST', '/v1/device/code', { 'content-type': 'application/json' }, JSON.stringify({ label: 'attacker-laptop' }));
    assert.equal(code.status, 200, code.text);
    return code.json.user_code as string;
  };

  /** The state-changing requests an attacker wants a signed-in admin to make, and how to see whether one happened. */
  let serial = 0;
  const attacks = () => [
    {
      what: 'create an API key',
      path: '/v1/api-keys',
      fields: { name: 'stolen' } as Record<string, string | string[]>,
      happened: async (before: number) => (await count('/v1/api-keys', 'apiKeys')) > before,
      state: () => count('/v1/api-keys', 'apiKeys'),
    },
    {
      what: 'create a share',
      path: '/v1/shares',
      fields: { name: `stolen-${++serial}`, services: ['web', 'web'], expiresIn: '1d' },
      happened: async (before: number) => (await count('/v1/shares', 'owned')) > before,
      state: () => count('/v1/shares', 'owned'),
    },
    {
      what: 'create a public link',
      path: '/v1/links',
      fields: { service: 'web' },
      happened: async (before: number) => (await count('/v1/links', 'links')) > before,
      state: () => count('/v1/links', 'links'),
    },
    {
      what: 'invite someone',
      path: `/v1/workspaces/${owner.workspaceId}/invites`,
      fields: { email: 'attacker@evil.example', role: 'admin' },
      happened: async (before: number) => invitesMailedTo('attacker@evil.example') > before,
      state: async () => invitesMailedTo('attacker@evil.example'),
    },
  ];

  it("refuses a cookie session's form post, text/plain post and JSON without the hub's Origin, and creates nothing", async () => {
    const foreign: Array<[string, Record<string, string>]> = [
      ['no Origin and no Sec-Fetch-Site', {}],
      ['Origin of another site', { origin: 'https://evil.example' }],
      ['Origin of a same-site public link', { origin: linkOrigin }],
      ['Origin null (a sandboxed page)', { origin: 'null' }],
      ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Sec-Fetch-Site same-site from the link', { 'sec-fetch-site': 'same-site', origin: linkOrigin }],
    ];
    for (const attack of attacks()) {
      const before = await attack.state();
      const cookie = { cookie: owner.cookie };
      // A cross-site <form> can send these without any preflight, Origin or not.
      for (const [type, body] of [
        ['application/x-www-form-urlencoded', form(attack.fields)],
        ['text/plain', JSON.stringify(attack.fields)],
        ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nstolen\r\n--x--\r\n`],
      ] as const) {
        for (const origin of [{}, { origin: 'https://evil.example' }, { origin: h.hub.url }]) {
          const answer = await raw(h.hub.url, 'POST', attack.path, { ...cookie, ...origin, 'content-type': type }, body);
          assert.ok(answer.status === 403 || answer.status === 415 || answer.status === 400, `${attack.what} as ${type} ${JSON.stringify(origin)}: ${answer.status} ${answer.text}`);
          assert.ok(answer.json?.error?.code === 'CSRF' || answer.json?.error?.code === 'BAD_REQUEST', answer.text);
        }
      }
      for (const [how, headers] of foreign) {
        const answer = await raw(h.hub.url, 'POST', attack.path, { ...cookie, ...headers, 'content-type': 'application/json' }, JSON.stringify(attack.fields));
        assertCsrf(answer, `${attack.what}, JSON with ${how}`);
      }
      assert.equal(await attack.happened(before), false, `${attack.what} happened`);
    }
  });

  it('refuses approving an attacker\'s device code from another site or as a form; the code stays pending', async () => {
    const userCode = await newUserCode();
    const body = { user_code: userCode, workspaceId: owner.workspaceId };
    const formAnswer = await raw(h.hub.url, 'POST', '/v1/device/approve', { cookie: owner.cookie, origin: linkOrigin, 'content-type': 'application/x-www-form-urlencoded' }, form(body));
    assert.ok(formAnswer.status >= 400 && formAnswer.status < 500, formAnswer.text);
    for (const headers of [{}, { origin: 'https://evil.example' }, { origin: linkOrigin }, { 'sec-fetch-site': 'cross-site' }]) {
      assertCsrf(await raw(h.hub.url, 'POST', '/v1/device/approve', { cookie: owner.cookie, ...headers, 'content-type': 'application/json' }, JSON.stringify(body)), `approve with ${JSON.stringify(headers)}`);
    }
    assert.ok(await findPendingDeviceCode(h.hub.db, userCode, h.clock.now()), 'the code was approved');
    // The same approval from the hub's own page works.
    const own = await raw(h.hub.url, 'POST', '/v1/device/approve', { cookie: owner.cookie, origin: h.hub.url, 'content-type': 'application/json' }, JSON.stringify(body));
    assert.equal(own.status, 200, own.text);
    assert.equal(await findPendingDeviceCode(h.hub.db, userCode, h.clock.now()), undefined);
  });

  it("serves the same cookie requests from the hub's own origins: API port, web port, HUB_PUBLIC_URL, or Sec-Fetch-Site same-origin", async () => {
    const own: Array<[string, Record<string, string>]> = [
      ['the API port', { origin: h.hub.url }],
      ['the web port', { origin: h.hub.webUrl! }],
      ['HUB_PUBLIC_URL', { origin: PUBLIC }],
      ['the Host it is served at', { origin: PUBLIC, host: 'hub.example.test' }],
      ['Sec-Fetch-Site same-origin', { 'sec-fetch-site': 'same-origin' }],
    ];
    for (const [how, headers] of own) {
      for (const attack of attacks()) {
        const before = await attack.state();
        const answer = await raw(h.hub.url, 'POST', attack.path, { cookie: owner.cookie, ...headers, 'content-type': 'application/json' }, JSON.stringify(attack.fields));
        assert.ok(answer.status === 201 || answer.status === 202, `${attack.what} from ${how}: ${answer.status} ${answer.text}`);
        assert.ok(await attack.happened(before), `${attack.what} from ${how} did not happen`);
      }
    }
    // A state change without a body (revoking a key) needs the JSON content type too, and the Origin.
    const key = await raw(h.hub.url, 'POST', '/v1/api-keys', { cookie: owner.cookie, origin: h.hub.url, 'content-type': 'application/json' }, JSON.stringify({ name: 'to revoke' }));
    const path = `/v1/api-keys/${key.json.id}`;
    assertCsrf(await raw(h.hub.url, 'DELETE', path, { cookie: owner.cookie, origin: 'https://evil.example' }), 'revoke from another site');
    assertCsrf(await raw(h.hub.url, 'DELETE', path, { cookie: owner.cookie, origin: h.hub.url }), 'revoke without a JSON content type');
    const revoked = await raw(h.hub.url, 'DELETE', path, { cookie: owner.cookie, origin: h.hub.url, 'content-type': 'application/json' });
    assert.equal(revoked.status, 204, revoked.text);
  });

  it('serves bearer API keys without any Origin, and refuses form and text bodies on /v1 for them too', async () => {
    const before = await count('/v1/api-keys', 'apiKeys');
    const made = await raw(h.hub.url, 'POST', '/v1/api-keys', { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, JSON.stringify({ name: 'script' }));
    assert.equal(made.status, 201, made.text);
    // A foreign Origin does not matter to a bearer credential: a page cannot make a browser send it.
    const foreign = await raw(h.hub.url, 'POST', '/v1/api-keys', { authorization: `Bearer ${apiKey}`, origin: 'https://evil.example', 'content-type': 'application/json' }, JSON.stringify({ name: 'script 2' }));
    assert.equal(foreign.status, 201, foreign.text);
    for (const [type, body] of [['application/x-www-form-urlencoded', 'name=formed'], ['text/plain', '{"name":"texted"}']]) {
      const answer = await raw(h.hub.url, 'POST', '/v1/api-keys', { authorization: `Bearer ${apiKey}`, 'content-type': type! }, body);
      assert.ok(answer.status === 415 || answer.status === 400, `${type}: ${answer.status} ${answer.text}`);
      assert.equal(answer.json?.error?.code, 'BAD_REQUEST', answer.text);
      assert.match(answer.json.error.message, /application\/json/);
    }
    assert.equal(await count('/v1/api-keys', 'apiKeys'), before + 2);
  });

  it('a GET of a sign-in link never sets a session; the confirmation page signs in only from its own origin', async () => {
    const email = 'csrf-victim@example.com';
    const login = await raw(h.hub.url, 'POST', '/v1/auth/login', { 'content-type': 'application/json' }, JSON.stringify({ email }));
    assert.equal(login.status, 202, login.text);
    const token = h.lastLinkToken(email);
    // Login CSRF: an attacker's page makes the browser open the attacker's own link. No cookie, link not used up.
    const got = await raw(h.hub.url, 'GET', `/v1/auth/verify?token=${token}`, {});
    assert.equal(got.headers['set-cookie'], undefined, `GET /v1/auth/verify set ${got.headers['set-cookie']}`);
    assert.ok(got.status === 303 || got.status === 200, got.text);
    if (got.status === 303) assert.equal(new URL(got.headers.location!, h.hub.url).pathname, '/auth/verify');
    const page = await raw(h.hub.url, 'GET', `/auth/verify?token=${token}`, {});
    assert.equal(page.status, 200);
    assert.equal(page.headers['set-cookie'], undefined);

    const fields = form({ token, next: '/' });
    const formType = { 'content-type': 'application/x-www-form-urlencoded' };
    for (const headers of [{}, { origin: 'https://evil.example' }, { origin: linkOrigin }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site', origin: linkOrigin }]) {
      const answer = await raw(h.hub.url, 'POST', '/auth/verify', { ...formType, ...headers }, fields);
      assert.equal(answer.status, 403, `page POST with ${JSON.stringify(headers)}: ${answer.status} ${answer.text}`);
      assert.equal(answer.headers['set-cookie'], undefined);
      assert.match(answer.text, /another site|which page/i);
    }
    // The API's POST follows the same rule for browsers.
    for (const headers of [{ origin: 'https://evil.example' }, { origin: linkOrigin }, { 'sec-fetch-site': 'cross-site' }]) {
      const answer = await raw(h.hub.url, 'POST', `/v1/auth/verify?token=${token}`, headers);
      assertCsrf(answer, `POST /v1/auth/verify with ${JSON.stringify(headers)}`);
      assert.equal(answer.headers['set-cookie'], undefined);
    }
    // The button on the page, pressed in the hub's own origin: signed in (the link was never used up above).
    const pressed = await raw(h.hub.url, 'POST', '/auth/verify', { ...formType, origin: h.hub.url }, fields);
    assert.equal(pressed.status, 303, pressed.text);
    assert.match(String(pressed.headers['set-cookie']), /pc_session=[0-9a-f]/);
  });

  it('refuses a signed-in form post to the pages (sign out, device approval) from another site', async () => {
    const userCode = await newUserCode();
    const fields = form({ user_code: userCode, workspace_id: owner.workspaceId });
    for (const headers of [{}, { origin: 'https://evil.example' }, { origin: linkOrigin }, { 'sec-fetch-site': 'cross-site' }]) {
      const answer = await raw(h.hub.url, 'POST', '/device', { cookie: owner.cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, fields);
      assert.equal(answer.status, 403, `${JSON.stringify(headers)}: ${answer.text}`);
    }
    assert.ok(await findPendingDeviceCode(h.hub.db, userCode, h.clock.now()), 'the code was approved');
    const out = await raw(h.hub.url, 'POST', '/logout', { cookie: owner.cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, '');
    assert.equal(out.status, 403, out.text);
    const me = await raw(h.hub.url, 'GET', '/v1/me', { cookie: owner.cookie });
    assert.equal(me.status, 200, 'the session survived');
  });
});

describe(`CSRF behind a trusted proxy: the origin the browser used comes from X-Forwarded-Host and -Proto (${dbKind})`, () => {
  let h: IdentityHub;
  before(async () => {
    h = await startIdentityHub({ TRUST_PROXY: 'loopback' });
  });
  after(async () => {
    await h?.dispose();
  });

  it("serves a cookie change from the proxy's public origin and still refuses another site's", async () => {
    const owner = await h.signIn('proxied@example.com');
    // Over https the session cookie is named __Host-pc_session (auth/session-cookie.ts); this sign-in was over http.
    const cookie = owner.cookie.replace(/^pc_session=/, '__Host-pc_session=');
    const proxied = { 'x-forwarded-host': 'hub.proxy.test', 'x-forwarded-proto': 'https', cookie, 'content-type': 'application/json' };
    const own = await raw(h.hub.url, 'POST', '/v1/api-keys', { ...proxied, origin: 'https://hub.proxy.test' }, JSON.stringify({ name: 'behind a proxy' }));
    assert.equal(own.status, 201, own.text);
    assertCsrf(await raw(h.hub.url, 'POST', '/v1/api-keys', { ...proxied, origin: 'http://hub.proxy.test' }, JSON.stringify({ name: 'scheme differs' })), 'http origin for an https hub');
    assertCsrf(await raw(h.hub.url, 'POST', '/v1/api-keys', { ...proxied, origin: 'https://evil.example' }, JSON.stringify({ name: 'evil' })), 'another site');
  });
});
