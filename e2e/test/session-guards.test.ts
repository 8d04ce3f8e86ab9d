/**
 * A hub process, attacked the way issue 20 found it open (classes 4, 8 and 12), with curl and plain sockets:
 * - CSRF: a signed-in admin's cookie on a form post (what `curl --data` sends, as a cross-site <form> would), or on
 *   JSON from another site's or a same-site public link's Origin, creates nothing (403 CSRF); the hub's own Origin
 *   and a bearer API key work; opening a sign-in link by GET sets no session.
 * - Floods: a fresh made-up bearer or cookie on every request from one address gets 429 past
 *   HUB_RATE_LIMIT_AUTH_FAILURES; a valid key from another address is served.
 * - Removed members: the event stream of a member ends as soon as an admin removes them.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { eventually, newApiKey, startHubProcess, type HubProcess } from '../src/index.js';

const run = promisify(execFile);
const FAILURE_LIMIT = 20;

/** curl, as a person or a script uses it: the status and body of one request. */
async function curl(args: string[]): Promise<{ status: number; body: string; headers: string }> {
  const { stdout } = await run('curl', ['-s', '-D', '-', '-o', '-', '-w', '\n%{http_code}', ...args]);
  const cut = stdout.lastIndexOf('\n');
  const whole = stdout.slice(0, cut);
  const split = whole.indexOf('\r\n\r\n');
  return { status: Number(stdout.slice(cut + 1)), headers: whole.slice(0, split), body: whole.slice(split + 4) };
}

/** A GET from a chosen local address (127.0.0.x) with exactly these headers. */
function getFrom(url: string, from: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: from, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

describe('a hub process guards cookie sessions, counts failed credentials per address, and cuts removed members', () => {
  let hub: HubProcess;
  const owner = { cookie: '', workspaceId: '' };
  let linkOrigin = '';

  const printedToken = async (email: string, from: number) =>
    eventually(async () => {
      const line = hub.proc.stderr().slice(from).split('\n').reverse().find((l) => l.includes(` link for ${email}: `));
      if (!line) throw new Error(`no link printed for ${email}`);
      return new URL(line.trim().split(' ').pop()!).searchParams.get('token')!;
    });
  /** The sign-in a script does (SDK signIn): POST the link's token, no browser headers. */
  const signIn = async (email: string, token: string) => {
    const verify = await fetch(`${hub.url}/v1/auth/verify?token=${token}`, { method: 'POST' });
    assert.equal(verify.status, 200, `${email}: ${await verify.clone().text()}`);
    const body = (await verify.json()) as { workspaceId: string; userId: string };
    return { cookie: verify.headers.getSetCookie()[0]!.split(';')[0]!, ...body };
  };
  const askLink = async (email: string) => {
    const from = hub.proc.stderr().length;
    const login = await fetch(`${hub.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
    assert.equal(login.status, 202);
    return printedToken(email, from);
  };
  const keyCount = async () => {
    const list = await fetch(`${hub.url}/v1/api-keys`, { headers: { cookie: owner.cookie } });
    return ((await list.json()) as { apiKeys: unknown[] }).apiKeys.length;
  };

  before(async () => {
    hub = await startHubProcess({ env: { HUB_RATE_LIMIT_AUTH_FAILURES: `${FAILURE_LIMIT}/1m`, PUBLIC_BASE_DOMAIN: 'links.localhost' } });
    Object.assign(owner, await signIn('owner@example.test', await askLink('owner@example.test')));
    linkOrigin = `http://${randomBytes(16).toString('hex')}.links.localhost`;
  });
  after(async () => {
    await hub?.stop();
  });

  test("CSRF: the admin's cookie creates no API key from a form, another site or a same-site link; the hub's own page and a bearer key do", async () => {
    const before = await keyCount();
    const url = `${hub.url}/v1/api-keys`;
    const cookie = ['-H', `Cookie: ${owner.cookie}`];
    const form = await curl([...cookie, '-H', `Origin: ${hub.url}`, '--data', 'name=stolen', url]);
    assert.equal(form.status, 403, form.body);
    assert.equal(JSON.parse(form.body).error.code, 'CSRF');
    const json = ['-H', 'Content-Type: application/json', '--data', '{"name":"stolen"}'];
    for (const origin of [[], ['-H', 'Origin: https://evil.example'], ['-H', `Origin: ${linkOrigin}`], ['-H', 'Sec-Fetch-Site: cross-site']]) {
      const answer = await curl([...cookie, ...origin, ...json, url]);
      assert.equal(answer.status, 403, `${origin.join(' ')}: ${answer.body}`);
      assert.equal(JSON.parse(answer.body).error.code, 'CSRF');
    }
    assert.equal(await keyCount(), before, 'an API key was created');
    const own = await curl([...cookie, '-H', `Origin: ${hub.webUrl}`, ...json, url]);
    assert.equal(own.status, 201, own.body);
    const bearer = await curl(['-H', `Authorization: Bearer ${hub.apiKey}`, ...json, url]);
    assert.equal(bearer.status, 201, bearer.body);

    const email = 'link-victim@example.test';
    const token = await askLink(email);
    const opened = await curl([`${hub.url}/v1/auth/verify?token=${token}`]);
    assert.doesNotMatch(opened.headers, /set-cookie/i, 'a GET of the link signed in');
    await signIn(email, token);
  });

  test('a flood of made-up bearers and cookies from one address gets 429; a valid key from another address is served', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < FAILURE_LIMIT * 2; i++) {
      const headers: Record<string, string> = i % 2 === 0 ? { authorization: `Bearer ${newApiKey()}` } : { cookie: `pc_session=${randomBytes(32).toString('hex')}` };
      statuses.push(await getFrom(`${hub.url}/v1/me`, '127.0.0.2', headers));
    }
    assert.deepEqual(new Set(statuses.slice(0, FAILURE_LIMIT)), new Set([401]), statuses.join(','));
    assert.deepEqual(new Set(statuses.slice(FAILURE_LIMIT)), new Set([429]), statuses.join(','));
    assert.equal(await getFrom(`${hub.url}/v1/me`, '127.0.0.3', { authorization: `Bearer ${hub.apiKey}` }), 200);
  });

  test("a removed member's event stream ends at once", async () => {
    const email = 'member@example.test';
    const from = hub.proc.stderr().length;
    const invite = await fetch(`${hub.url}/v1/workspaces/${owner.workspaceId}/invites`, {
      method: 'POST',
      headers: { cookie: owner.cookie, origin: hub.url, 'content-type': 'application/json' },
      body: JSON.stringify({ email }),
    });
    assert.equal(invite.status, 202, await invite.clone().text());
    const member = await signIn(email, await printedToken(email, from));
    assert.equal(member.workspaceId, owner.workspaceId);
    const stream = await fetch(`${hub.url}/v1/events?workspace=${owner.workspaceId}`, { headers: { cookie: member.cookie, accept: 'text/event-stream' } });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    const hello = await reader.read();
    assert.match(Buffer.from(hello.value!).toString(), /event: hello/);
    const removed = await fetch(`${hub.url}/v1/workspaces/${owner.workspaceId}/members/${member.userId}`, {
      method: 'DELETE',
      headers: { cookie: owner.cookie, origin: hub.url, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(removed.status, 204, await removed.clone().text());
    // The hub's recheck comes every 30 s; the guard only keeps a broken hub from hanging the suite.
    let hung = false;
    const guard = setTimeout(() => {
      hung = true;
      void reader.cancel();
    }, 15_000);
    try {
      for (;;) {
        const next = await reader.read();
        if (next.done) break;
      }
    } finally {
      clearTimeout(guard);
    }
    assert.equal(hung, false, "the removed member's stream did not end");
    const me = await fetch(`${hub.url}/v1/me`, { headers: { cookie: member.cookie, 'x-workspace-id': owner.workspaceId } });
    assert.equal(me.status, 404, 'the member is out of the workspace');
  });
});
