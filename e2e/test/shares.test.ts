/**
 * Service shares across workspaces, with real processes: a hub (`connect-hub`), `connect` agents of three
 * workspaces, psql and curl. Workspace X exposes a TCP echo service, PostgreSQL, an HTTP service and a service it
 * does not share; it shares some of them; workspace Y joins with the code and reaches exactly the shared services
 * as `<alias>/<service>`, and is refused everything else: the unshared service, X's listing, more connections or
 * requests than the rate, HTTP methods and paths outside the share, anything after revocation or expiry. A third
 * workspace cannot join a code that was used. X's audit log has the whole story.
 *
 * Workspaces Y and Z are made the way people make them: sign in by magic link (printed by the hub without SMTP),
 * then an API key, then `connect up`.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { ServiceInfo } from '@private-connect/protocol';
import type { AuditEntry, CreatedShare, JoinedShareInfo } from '@private-connect/api';
import { connect, echoServer, enrolAgent, eventually, newWorkspace, removeDirs, roundTrip, startHubProcess, type AgentHome, type HubProcess, type Proc, type TcpServer } from '../src/index.js';

const run = promisify(execFile);
const X_LABEL = 'x-owner-server';

/** The error line of a failed `connect --json` command. */
function errorOf(result: { code: number; stdout: string; stderr: string }): { code: string; message: string } {
  assert.equal(result.code, 1, `${result.stdout}${result.stderr}`);
  const line = result.stdout.split('\n').find((l) => l.includes('"type":"error"'));
  assert.ok(line, result.stdout + result.stderr);
  return JSON.parse(line) as { code: string; message: string };
}

/** Connects to a reach port: 'closed' when the agent refused the stream (the socket ends or resets without data). */
async function tryEcho(port: number, text: string): Promise<string> {
  const reply = await roundTrip(port, text).catch((err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? Buffer.alloc(0) : Promise.reject(err)));
  return reply.length === 0 ? 'closed' : reply.toString();
}

/** A connection through a reach port that has echoed once; it is kept open. */
async function openEcho(port: number): Promise<net.Socket> {
  const socket = await connect(port);
  socket.on('error', () => undefined); // cut later, on purpose
  socket.write('held\n');
  await new Promise((resolve) => socket.once('data', resolve));
  return socket;
}

/** The stream refusals a `connect reach` process reported, by code. */
const refusals = (proc: Proc, code: string) => proc.lines.filter((l) => typeof l === 'object' && l.type === 'stream_refused' && l.code === code) as Array<Record<string, unknown>>;

/** curl through a reach port: status, headers and body. */
async function curl(port: number, path: string, extra: string[] = []): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-s', '--path-as-is', '-D', '-', ...extra, `http://127.0.0.1:${port}${path}`]);
  const [headers, ...rest] = stdout.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers!)?.[1]), headers: headers!, body: rest.join('\r\n\r\n') };
}

describe('sharing services with another workspace', () => {
  let hub: HubProcess;
  let x: AgentHome;
  let y: AgentHome;
  let z: AgentHome;
  let yWorkspace = '';
  let echo: TcpServer;
  let other: TcpServer;
  let web: HttpServer;
  let webPort = 0;
  let otherConnections = 0;
  let first: CreatedShare;
  let echoReach: { proc: Proc; port: number };
  let held: net.Socket;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    hub = await startHubProcess();
    const [wy, wz] = [await newWorkspace(hub, 'yvonne@partner.example'), await newWorkspace(hub, 'zoe@third.example')];
    yWorkspace = wy.workspaceId;
    x = await enrolAgent(hub, { label: X_LABEL });
    y = await enrolAgent({ url: hub.url, apiKey: wy.apiKey }, { label: 'y-laptop' });
    z = await enrolAgent({ url: hub.url, apiKey: wz.apiKey }, { label: 'z-laptop' });
    echo = await echoServer();
    other = await echoServer();
    other.server.on('connection', () => otherConnections++);
    web = createHttpServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, url: req.url })));
    webPort = await new Promise<number>((resolve) => web.listen(0, '127.0.0.1', () => resolve((web.address() as net.AddressInfo).port)));
    for (const [target, name, extra] of [
      [`127.0.0.1:${echo.port}`, 'echo', []],
      ['127.0.0.1:5432', 'db', []],
      [`127.0.0.1:${webPort}`, 'web', ['--http']],
      [`127.0.0.1:${other.port}`, 'other', []],
    ] as const) {
      const proc = await x.expose(target, name, [...extra]);
      stops.push(() => proc.stop());
    }
  });

  after(async () => {
    held?.destroy();
    for (const stop of stops.reverse()) await stop();
    await echo?.close();
    await other?.close();
    web?.closeAllConnections();
    await new Promise((resolve) => (web ? web.close(resolve) : resolve(undefined)));
    await hub?.stop();
    await removeDirs(hub?.dataDir, x?.home, y?.home, z?.home);
  });

  test('X shares echo and db; Y joins with the code and reaches both by the share\'s name, psql included', async () => {
    const shared = x.run(['share', 'echo', 'db', '--name', 'acme-contractor', '--expires', '7d', '--rate', '6']);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    first = shared.json() as CreatedShare & { join: string };
    assert.match(first.code, /^pcs_[A-Za-z0-9]{32}$/);
    assert.equal((first as CreatedShare & { join: string }).join, `connect join ${first.code}`);

    const joined = y.run(['join', first.code]);
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    const { share, reach } = joined.json() as { share: JoinedShareInfo; reach: string[] };
    assert.equal(share.alias, 'acme-contractor');
    assert.deepEqual(reach, ['connect reach acme-contractor/echo', 'connect reach acme-contractor/db']);

    echoReach = await y.reach('acme-contractor/echo', ['--port', '0']);
    stops.push(() => echoReach.proc.stop());
    assert.equal(await tryEcho(echoReach.port, 'hello from workspace y\n'), 'hello from workspace y\n', JSON.stringify(echoReach.proc.lines));

    const db = await y.reach('acme-contractor/db', ['--port', '0']);
    stops.push(() => db.proc.stop());
    const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(db.port), '-U', 'postgres', '-d', 'postgres', '-tAc', 'select 40+2'], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
    });
    assert.equal(stdout.trim(), '42');
  });

  test('Y is refused the unshared service (as acme-contractor/other and as other) and its listing shows nothing else of X', async () => {
    const before = otherConnections;
    for (const name of ['acme-contractor/other', 'other', 'acme-contractor/web', 'someone/echo']) {
      // The CLI adds a pointer to connect ls, and "did you mean" for a name close to one Y may reach.
      const error = errorOf(y.run(['reach', name, '--port', '0'])) as { type: string; code: string; message: string };
      assert.deepEqual([error.type, error.code], ['error', 'SERVICE_NOT_FOUND']);
      assert.match(error.message, new RegExp(`^Service not found: ${name}; (did you mean acme-contractor/(db|echo)\\? )?connect ls lists the services you can reach$`));
    }
    assert.equal(otherConnections, before, 'the unshared service was never dialled');
    const listing = y.run(['ls']);
    assert.equal(listing.code, 0, listing.stderr);
    const { services, shared } = listing.json() as { services: ServiceInfo[]; shared: Array<{ name: string }> };
    assert.deepEqual(services, [], "Y's own services: none");
    assert.deepEqual(shared.map((s) => s.name), ['acme-contractor/echo', 'acme-contractor/db']);
    for (const secret of ['other', X_LABEL, String(echo.port), 'web', '5432']) assert.ok(!listing.stdout.includes(secret), `Y's listing shows ${secret}`);
  });

  test('HTTP through a share: curl gets the allowed GET, 405 for another method, 403 outside the paths, 400 for a .. segment, 429 over the rate', async () => {
    const shared = x.run(['share', 'web', '--name', 'partner-api', '--methods', 'GET', '--paths', '/api/v1', '--rate', '5', '--expires', '1d']);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    const { code } = shared.json() as CreatedShare;
    const joined = y.run(['join', code, '--as', 'api']);
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    assert.deepEqual((joined.json() as { reach: string[] }).reach, ['connect reach api/web']);
    const reach = await y.reach('api/web', ['--port', '0']);
    stops.push(() => reach.proc.stop());

    const ok = await curl(reach.port, '/api/v1/items?page=2');
    assert.equal(ok.status, 200, ok.headers);
    assert.deepEqual(JSON.parse(ok.body), { method: 'GET', url: '/api/v1/items?page=2' });
    const post = await curl(reach.port, '/api/v1/items', ['-X', 'POST', '--data', 'x=1']);
    assert.equal(post.status, 405);
    assert.equal(JSON.parse(post.body).error.code, 'METHOD_NOT_ALLOWED');
    const outside = await curl(reach.port, '/admin');
    assert.equal(outside.status, 403);
    assert.equal(JSON.parse(outside.body).error.code, 'PATH_NOT_ALLOWED');
    // A .. segment is refused outright (400), not resolved and checked: the service could resolve it another way.
    const climbing = await curl(reach.port, '/api/v1/../../admin');
    assert.equal(climbing.status, 400);
    assert.equal(JSON.parse(climbing.body).error.code, 'AMBIGUOUS_PATH');
    // Four requests so far against five a minute: within a few more, one gets 429 with Retry-After.
    let limited = await curl(reach.port, '/api/v1/items');
    for (let i = 0; i < 4 && limited.status !== 429; i++) limited = await curl(reach.port, '/api/v1/items');
    assert.equal(limited.status, 429, limited.headers);
    assert.match(limited.headers, /\r\nretry-after: \d+/i);
    assert.equal(JSON.parse(limited.body).error.code, 'RATE_LIMITED');
  });

  test('TCP: new connections over --rate are refused with RATE_LIMITED', async () => {
    // Held open for the revocation test; opened before the rate runs out.
    held = await openEcho(echoReach.port);
    const outcomes: string[] = [];
    for (let i = 0; i < 8 && !outcomes.includes('closed'); i++) outcomes.push(await tryEcho(echoReach.port, `n${i}\n`));
    assert.ok(outcomes.includes('closed'), `no connection was refused: ${outcomes.join(', ')}`);
    const [refused] = await eventually(async () => {
      const found = refusals(echoReach.proc, 'RATE_LIMITED');
      assert.ok(found.length > 0, 'the reach process reports RATE_LIMITED');
      return found;
    });
    assert.match(String(refused!.message), /the share "acme-contractor" allows 6 new connections a minute/);
  });

  test('a third workspace cannot join a code that was used', () => {
    const third = errorOf(z.run(['join', first.code]));
    assert.equal(third.code, 'SHARE_ALREADY_JOINED');
    assert.ok(!third.message.includes(yWorkspace));
  });

  test('revoking cuts the open connection at once; then new connections and reaches get SHARE_REVOKED', async () => {
    const closed = new Promise((resolve) => held.once('close', resolve));
    const revoked = x.run(['share', 'revoke', first.share.id]);
    assert.equal(revoked.code, 0, revoked.stdout + revoked.stderr);
    await closed;
    assert.equal(await tryEcho(echoReach.port, 'after\n'), 'closed');
    await eventually(async () => assert.ok(refusals(echoReach.proc, 'SHARE_REVOKED').length > 0));
    const again = errorOf(y.run(['reach', 'acme-contractor/db', '--port', '0']));
    assert.deepEqual([again.code, again.message], ['SHARE_REVOKED', 'the share "acme-contractor" was revoked by its owner; ask them for a new one']);
  });

  test('after its expiry a share refuses with SHARE_EXPIRED, saying when, and its open connection is cut', async () => {
    const shared = x.run(['share', 'echo', '--name', 'brief', '--expires', '5s']);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    const { code, share } = shared.json() as CreatedShare;
    assert.equal(y.run(['join', code]).code, 0);
    const reach = await y.reach('brief/echo', ['--port', '0']);
    stops.push(() => reach.proc.stop());
    const open = await openEcho(reach.port);
    const cut = new Promise((resolve) => open.once('close', resolve));
    await cut; // the hub's sweep ends it once the share has expired
    assert.equal(await tryEcho(reach.port, 'late\n'), 'closed');
    const expired = errorOf(y.run(['reach', 'brief/echo', '--port', '0']));
    assert.deepEqual([expired.code, expired.message], ['SHARE_EXPIRED', `the share "brief" expired at ${share.expiresAt}; ask its owner for a new one`]);
  });

  test("X's audit log has share.create, share.join, share.access (address; method, path and status for HTTP) and share.revoke", async () => {
    const events = await eventually(async () => {
      const answer = await fetch(`${hub.url}/v1/audit?limit=500`, { headers: { authorization: `Bearer ${hub.apiKey}` } });
      const list = ((await answer.json()) as { events: AuditEntry[] }).events;
      assert.ok(list.some((e) => e.action === 'share.access' && e.metadata.status === 429), 'the 429 is reported');
      return list;
    });
    const of = (action: string) => events.filter((e) => e.action === action && e.targetId === first.share.id);
    assert.equal(of('share.create').length, 1);
    assert.deepEqual(of('share.join').map((e) => [e.actorType, e.actorId, e.metadata.alias]), [['share', yWorkspace, 'acme-contractor']]);
    assert.equal(of('share.revoke').length, 1);
    const tcp = of('share.access');
    assert.ok(tcp.some((e) => e.metadata.service === 'echo' && e.metadata.result === 'open'));
    assert.ok(tcp.some((e) => e.metadata.service === 'db' && e.metadata.result === 'open'));
    assert.ok(tcp.some((e) => e.metadata.result === 'RATE_LIMITED'));
    assert.ok(tcp.some((e) => e.metadata.result === 'SHARE_REVOKED'));
    for (const e of tcp) assert.equal(e.ip, '127.0.0.1');
    const http = events.filter((e) => e.action === 'share.access' && e.metadata.method !== undefined);
    const seen = http.map((e) => `${e.metadata.method} ${e.metadata.path} ${e.metadata.status}`);
    for (const line of ['GET /api/v1/items 200', 'POST /api/v1/items 405', 'GET /admin 403', 'GET /api/v1/../../admin 400', 'GET /api/v1/items 429']) assert.ok(seen.includes(line), `${line} in ${seen.join(' | ')}`);
    for (const e of http) assert.deepEqual([e.ip, e.actorId, e.metadata.service], ['127.0.0.1', yWorkspace, 'web']);
    // Y's own log has its join; it holds nothing of X's other services.
    assert.ok(!JSON.stringify(events.filter((e) => e.action.startsWith('share.'))).includes('"other"'));
  });
});
