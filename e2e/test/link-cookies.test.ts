/**
 * Cookies of public links, with curl's cookie engine as the browser (`-c`/`-b` with a jar file, RFC 6265 domain and
 * path matching) and a real hub process: apps of two workspaces (X: the bootstrap one; Y: a user's own, made by
 * signing in) behind one link each on the same hub. In path mode every link shares
 * the hub's origin, so a cookie app Y sets must stay under Y's link (`Path=/l/<token>/`, no Domain) and app X must
 * get only the cookies set through X's link, never Y's, never the hub's own. In subdomain mode an app may not set a
 * cookie for the parent domain (it would reach every other link) nor the hub's session cookie.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { CreatedLink } from '@private-connect/api';
import { ApiClient } from '@private-connect/sdk';
import { closeHttpServer, enrolAgent, removeDirs, startHubProcess, tempDir, type AgentHome, type HubProcess, type Proc } from '../src/index.js';

const run = promisify(execFile);

/** An app that sets `cookies` on /set and answers the Cookie header it got on /echo. */
async function startCookieApp(cookies: string[]) {
  const server = http.createServer((req, res) => {
    if (req.url === '/set') res.setHeader('set-cookie', cookies);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ cookie: req.headers.cookie ?? null }));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => closeHttpServer(server),
  };
}

/** An API key of a second workspace: a new user's own, signed in with the link the hub prints (no SMTP). */
async function secondWorkspaceKey(hub: HubProcess, email: string): Promise<string> {
  const client = new ApiClient({ hubUrl: hub.url });
  const printedBefore = hub.proc.stderr().length;
  await client.requestLoginLink(email);
  let link: string | undefined;
  for (let waited = 0; !link && waited < 15_000; waited += 100) {
    link = new RegExp(`link for ${email.replace(/[.+]/g, '\\$&')}: (\\S+)`).exec(hub.proc.stderr().slice(printedBefore))?.[1];
    if (!link) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(link, `the hub printed no sign-in link for ${email}`);
  const signedIn = await client.signIn(new URL(link).searchParams.get('token')!);
  const user = new ApiClient({ hubUrl: hub.url, session: signedIn.session, workspaceId: signedIn.workspaceId });
  return (await user.createApiKey('workspace Y agents')).key;
}

describe('public link cookies stay with their own link (curl cookie jar, real hub)', () => {
  let hub: HubProcess;
  let owner: AgentHome;
  /** An agent of workspace Y. */
  let ownerY: AgentHome;
  let dir: string;
  let x: Awaited<ReturnType<typeof startCookieApp>>;
  let y: Awaited<ReturnType<typeof startCookieApp>>;
  const exposers: Proc[] = [];
  let linkX: CreatedLink;
  let linkY: CreatedLink;

  /** curl with the jar `jar` read and written: the status line's code, the Set-Cookie lines, and the app's view. */
  const browse = async (jar: string, url: string, args: string[] = []) => {
    const { stdout } = await run('curl', ['-sS', '--max-time', '30', '-D', '-', '-c', jar, '-b', jar, ...args, url], { encoding: 'utf8' });
    const split = stdout.indexOf('\r\n\r\n');
    const head = stdout.slice(0, split).split('\r\n');
    return {
      status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head[0]!)?.[1]),
      setCookie: head.filter((l) => /^set-cookie:/i.test(l)).map((l) => l.slice(l.indexOf(':') + 1).trim()),
      seen: (JSON.parse(stdout.slice(split + 4)) as { cookie: string | null }).cookie ?? '',
    };
  };

  const link = (agent: AgentHome, service: string): CreatedLink => {
    const made = agent.run(['link', service, '--expires', '1h']);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    return made.json() as CreatedLink;
  };

  before(async () => {
    hub = await startHubProcess({ env: { PUBLIC_BASE_DOMAIN: 'links.test' } });
    owner = await enrolAgent(hub, { label: 'apps of X' });
    ownerY = await enrolAgent({ url: hub.url, apiKey: await secondWorkspaceKey(hub, 'y-owner@example.com') }, { label: 'apps of Y' });
    dir = await tempDir('cookies');
    x = await startCookieApp(['x=from-x; Path=/; HttpOnly']);
    y = await startCookieApp([
      'a=from-y; Path=/',
      'wide=from-y; Domain=127.0.0.1; Path=/',
      'parent=from-y; Domain=links.test; Path=/',
      'pc_session=forged-by-y; Path=/',
      'deep=from-y; Path=/some/where; SameSite=Lax',
    ]);
    exposers.push(await owner.expose(`127.0.0.1:${x.port}`, 'app-x', ['--http']), await ownerY.expose(`127.0.0.1:${y.port}`, 'app-y', ['--http']));
    linkX = link(owner, 'app-x');
    linkY = link(ownerY, 'app-y');
    const listedByX = (owner.run(['link', 'ls']).json() as { links: Array<{ id: string }> }).links.map((l) => l.id);
    assert.ok(listedByX.includes(linkX.link.id) && !listedByX.includes(linkY.link.id), 'X and Y are two workspaces');
  });

  after(async () => {
    await Promise.all(exposers.map((p) => p.stop()));
    await x?.close();
    await y?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, owner?.home, ownerY?.home, dir);
  });

  test("path mode: Y's cookies are scoped to /l/<Y>/ and never sent to X's app; X gets only its own, Y gets its own back", async () => {
    const jar = join(dir, 'path-mode.jar');
    // What a browser that visited the hub before holds for its whole origin: the hub's session and an old app cookie.
    await appendFile(jar, ['127.0.0.1\tFALSE\t/\tFALSE\t0\tpc_session\thub-session-secret', '127.0.0.1\tFALSE\t/\tFALSE\t0\tstale\tfrom-before', ''].join('\n'));
    const setY = await browse(jar, `${linkY.url}set`);
    assert.equal(setY.status, 200);
    const setX = await browse(jar, `${linkX.url}set`);
    assert.equal(setX.status, 200);
    assert.doesNotMatch(setX.seen, /from-y|pc_session|hub-session-secret|stale/, `X's app got: ${setX.seen}`);
    assert.equal(setY.setCookie.length, 5, setY.setCookie.join('\n'));
    for (const line of setY.setCookie) {
      assert.match(line, new RegExp(`; Path=/l/${linkY.token}/(;|$)`), line);
      assert.doesNotMatch(line, /;\s*domain=/i, line);
      assert.doesNotMatch(line, /^pc_session=/, line);
    }

    const seenByX = (await browse(jar, `${linkX.url}echo`)).seen;
    assert.equal(seenByX, 'x=from-x', "X's app gets exactly the cookie it set");
    const seenByY = (await browse(jar, `${linkY.url}echo`)).seen.split('; ').sort();
    assert.deepEqual(seenByY, ['a=from-y', 'deep=from-y', 'parent=from-y', 'pc_session=forged-by-y', 'wide=from-y'], "Y's app gets its own cookies back under their own names");
    // The hub's own pages still get the hub's session cookie, and no app's cookie under the hub's name.
    const jarText = await readFile(jar, 'utf8');
    assert.match(jarText, /\t\/\tFALSE\t0\tpc_session\thub-session-secret/);
    assert.doesNotMatch(jarText, /\tpc_session\tforged-by-y/);
  });

  test('subdomain mode: a cookie for the parent domain is kept to the app own host, and the hub session cookie is dropped', async () => {
    const jar = join(dir, 'subdomain.jar');
    const host = (l: CreatedLink) => `${l.token}.links.test`;
    const at = (l: CreatedLink, path: string) => [`http://${host(l)}:${hub.port}${path}`, ['--resolve', `${host(l)}:${hub.port}:127.0.0.1`]] as const;
    const [urlY, argsY] = at(linkY, '/set');
    const setY = await browse(jar, urlY, [...argsY]);
    assert.equal(setY.status, 200);
    const [urlX, argsX] = at(linkX, '/echo');
    const seenByX = (await browse(jar, urlX, [...argsX])).seen;
    assert.doesNotMatch(seenByX, /from-y/, `X's app got: ${seenByX}`);
    assert.ok(!setY.setCookie.some((l) => /^pc_session=/.test(l)), 'no Set-Cookie for the hub session cookie');
    for (const line of setY.setCookie) assert.doesNotMatch(line, /;\s*domain=/i, line);
    const [echoY, echoArgsY] = at(linkY, '/echo');
    const seenByY = (await browse(jar, echoY, [...echoArgsY])).seen.split('; ').sort();
    assert.deepEqual(seenByY, ['a=from-y', 'parent=from-y', 'wide=from-y'], "Y's own host still gets its cookies (deep is for another path)");
  });
});
