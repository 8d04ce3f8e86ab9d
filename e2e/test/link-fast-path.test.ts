/**
 * The public links' fast path (apps/hub/src/sharing/link-fast.ts) from the outside: a hub process with
 * PUBLIC_BASE_DOMAIN (path and subdomain mode), `connect expose --http` of a probe app (e2e/src/probe-app.ts), links
 * made with `connect link`, and raw TCP clients and curl as the strangers who hold the URL. A connection whose first
 * request is a plain link request is served by the fast path; anything else hands the connection to Node's HTTP
 * server for good. Covered: keep-alive, pipelining, bodies, every response framing, forwarded headers, the hand-over
 * to the API and to a WebSocket upgrade, request smuggling in its usual forms (the app records every request it
 * parses, and a smuggled `GET /admin` outside the link's paths must never reach it), oversized and slow heads,
 * stalled bodies, clients that leave early or read nothing, and the stream gauges at rest after each of them.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { CreatedLink } from '@private-connect/api';
import { enrolAgent, removeDirs, startHubProcess, type AgentHome, type HubProcess } from '../src/harness.js';
import type { Proc } from '../src/processes.js';
import { BIG_SEED, FAST_BODY, PIECES, startProbeApp, type ProbeApp } from '../src/probe-app.js';
import { parseResponses, rawHttpClient, type RawHttpClient, type RawHttpOptions, type WireResponse } from '../src/raw-http.js';
import { eventually, expectedDigest } from '../src/tcp.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const BASE_DOMAIN = 'links.test';
/** HUB_HEADERS_TIMEOUT and HUB_REQUEST_TIMEOUT of the hub under test: small, so that slow clients are cut soon. */
const HEADERS_TIMEOUT = '2s';
const REQUEST_TIMEOUT = '4s';
/** A request outside every link's paths: hidden in bodies and heads, it must never reach the app. */
const SMUGGLED = 'GET /admin HTTP/1.1\r\nHost: app\r\n\r\n';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Resident memory of a process in bytes (VmRSS). */
function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

/** How a link is addressed: `/l/<token>/...` on the hub's address, or the whole path under `<token>.<domain>`. */
interface Mode {
  name: 'path' | 'subdomain';
  target(token: string, path: string): string;
  host(token: string): string;
}

interface RequestOptions {
  headers?: string[];
  body?: string | Buffer;
}

describe('public links on the fast path', () => {
  let hub: HubProcess;
  let agent: AgentHome;
  let app: ProbeApp;
  let exposer: Proc;
  /** Any method, paths under /app only. */
  let open: CreatedLink;
  /** GET only, paths under /app. */
  let getOnly: CreatedLink;

  const modes: Mode[] = [
    { name: 'path', target: (token, path) => `/l/${token}${path}`, host: () => `127.0.0.1:${hub.port}` },
    { name: 'subdomain', target: (_token, path) => path, host: (token) => `${token}.${BASE_DOMAIN}` },
  ];
  const pathMode = modes[0]!;

  /** The bytes of one request to `link` (Host, then `headers`, Content-Length when there is a body, the body). */
  const request = (mode: Mode, link: CreatedLink, method: string, path: string, options: RequestOptions = {}): Buffer => {
    const lines = [`${method} ${mode.target(link.token, path)} HTTP/1.1`, `Host: ${mode.host(link.token)}`, ...(options.headers ?? [])];
    const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
    if (options.body !== undefined && !(options.headers ?? []).some((h) => /^(content-length|transfer-encoding):/i.test(h))) lines.push(`Content-Length: ${body.length}`);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
  };
  const get = (mode: Mode, path: string, headers: string[] = []) => request(mode, open, 'GET', path, { headers });

  const client = () => rawHttpClient(hub.port);

  /** Asserts a 200 answer of /app/fast. */
  const assertFast = (res: WireResponse | undefined, what = '/app/fast') => {
    assert.ok(res, `${what}: the connection ended before an answer`);
    assert.equal(res.status, 200, `${what}: ${res.body.slice(0, 300)}`);
    assert.equal(res.body, FAST_BODY, what);
  };

  /**
   * Watches what the app parses from now on: `smuggled()` lists its requests for /admin (outside every link's
   * paths, so never checked and let through by the hub), after a moment for a smuggled request to arrive.
   */
  const watchApp = () => {
    const from = app.seen.length;
    return {
      async smuggled(): Promise<string[]> {
        await sleep(500);
        return app.seen.slice(from).filter((s) => s.includes('/admin'));
      },
      seen: () => app.seen.slice(from),
    };
  };
  /** Asserts that the app parsed no request for /admin since `watch` began. */
  const assertNothingSmuggled = async (watch: ReturnType<typeof watchApp>) => {
    const smuggled = await watch.smuggled();
    assert.deepEqual(smuggled, [], `the app parsed requests the hub never checked; it saw: ${JSON.stringify(watch.seen())}`);
  };

  /**
   * At rest the only streams open are the links' idle ones (connect_public_link_idle_streams, 0 without it), and the
   * app has one connection per idle stream (none left behind in the agent).
   */
  const streamsAtRest = async (timeoutMs = 20_000) => {
    let last = '';
    try {
      await eventually(async () => {
        const metrics = await hub.metrics();
        const open = metrics.get('connect_streams_open');
        const idle = metrics.get('connect_public_link_idle_streams') ?? 0;
        last = `connect_streams_open ${open}, connect_public_link_idle_streams ${idle}, the app's open connections ${app.connections.open}`;
        assert.equal(open, idle);
        // Each idle stream holds one connection to the app through the agent; nothing else may.
        assert.equal(app.connections.open, idle);
      }, timeoutMs);
    } catch {
      assert.fail(`streams are still open at rest after ${timeoutMs} ms: ${last}`);
    }
  };

  /** `curl` with the raw bytes of every answer (`-i --raw`), parsed; `head` lists the indexes of HEAD answers. */
  const curl = async (args: string[], head: number[] = []): Promise<{ answers: WireResponse[]; connects: number }> => {
    const { stdout, stderr } = await run('curl', ['-sS', '-i', '--raw', '--max-time', '30', '-w', '%{stderr}%{num_connects}\n', ...args], { encoding: 'latin1', maxBuffer: 64 * MiB });
    const connects = stderr.trim().split('\n').reduce((n, line) => n + Number(line), 0);
    return { answers: parseResponses(Buffer.from(stdout, 'latin1'), head), connects };
  };
  /** curl arguments that reach `path` of the open link in `mode` (subdomain mode resolves the name to the hub). */
  const curlUrl = (mode: Mode, path: string): string[] =>
    mode.name === 'path' ? [`${hub.url}/l/${open.token}${path}`] : ['--resolve', `${mode.host(open.token)}:${hub.port}:127.0.0.1`, `http://${mode.host(open.token)}:${hub.port}${path}`];

  /** POSTs `body` to /app/echo of the open link with curl (from stdin), resolves with the app's echo. */
  const curlUpload = (mode: Mode, body: Buffer) =>
    new Promise<unknown>((resolve, reject) => {
      const child = execFile('curl', ['-sS', '--fail', '--max-time', '30', '-H', 'content-type: application/octet-stream', '--data-binary', '@-', ...curlUrl(mode, '/app/echo')], { encoding: 'utf8' }, (err, stdout) => {
        if (err) return reject(err);
        try {
          resolve(JSON.parse(stdout));
        } catch (parseError) {
          reject(parseError);
        }
      });
      child.stdin!.end(body);
    });

  before(async () => {
    app = await startProbeApp();
    hub = await startHubProcess({ env: { PUBLIC_BASE_DOMAIN: BASE_DOMAIN, HUB_HEADERS_TIMEOUT: HEADERS_TIMEOUT, HUB_REQUEST_TIMEOUT: REQUEST_TIMEOUT } });
    agent = await enrolAgent(hub, { label: 'probe-app' });
    exposer = await agent.expose(`127.0.0.1:${app.port}`, 'probe', ['--http']);
    const link = (args: string[]) => {
      const made = agent.run(['link', 'probe', '--expires', '1h', ...args]);
      assert.equal(made.code, 0, made.stdout + made.stderr);
      return made.json() as CreatedLink;
    };
    open = link(['--paths', '/app']);
    getOnly = link(['--paths', '/app', '--methods', 'GET']);
  });

  after(async () => {
    await exposer?.stop();
    await app?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  for (const mode of modes) {
    describe(`${mode.name} mode`, () => {
      test('answers 50 keep-alive requests in a row on one connection', async () => {
        const c = await client();
        try {
          for (let i = 0; i < 50; i++) {
            c.write(get(mode, '/app/fast'));
            assertFast(await c.next(), `request ${i}`);
          }
          assert.equal(c.ended, false, 'the connection stays open');
        } finally {
          c.close();
        }
      });

      test('answers pipelined requests (all heads in one write) in order', async () => {
        const c = await client();
        try {
          const paths = Array.from({ length: 8 }, (_, i) => `/app/headers?n=${i}`);
          c.write(Buffer.concat(paths.map((p) => get(mode, p))));
          for (const path of paths) {
            const res = await c.next();
            assert.equal(res?.status, 200, res?.body);
            assert.equal((JSON.parse(res.body) as { url: string }).url, path);
          }
          // More than the hub reads ahead (64 KiB) in one write: it stops reading, and goes on as it answers.
          const many = Array.from({ length: 600 }, (_, i) => `/app/headers?many=${i}`);
          c.write(Buffer.concat(many.map((p) => get(mode, p, [`X-Pad: ${'p'.repeat(200)}`]))));
          for (const path of many) {
            const res = await c.next();
            assert.equal(res?.status, 200, res?.body);
            assert.equal((JSON.parse(res.body) as { url: string }).url, path);
          }
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next(), 'a request after the pipelined ones');
        } finally {
          c.close();
        }
      });

      test('a POST body with Content-Length reaches the app intact (SHA-256), and the connection goes on', async () => {
        const body = randomBytes(4 * MiB + 7);
        const c = await client();
        try {
          c.write(request(mode, open, 'POST', '/app/echo', { body, headers: ['Content-Type: application/octet-stream'] }));
          const res = await c.next();
          assert.equal(res?.status, 200, res?.body);
          assert.deepEqual(JSON.parse(res.body), { length: body.length, sha256: sha256(body) });
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next());
        } finally {
          c.close();
        }
      });

      test('HEAD, 204, 304 and chunked answers are framed right, one after another on one connection', async () => {
        const c = await client();
        try {
          c.write(request(mode, open, 'HEAD', '/app/fast'));
          const head = await c.next(20_000, true);
          assert.equal(head?.status, 200);
          assert.equal(head.headers['content-length'], '64', 'HEAD keeps the length of the GET answer');
          assert.equal(head.body, '');
          c.write(get(mode, '/app/204'));
          const noContent = await c.next();
          assert.deepEqual([noContent?.status, noContent?.headers['x-probe'], noContent?.body], [204, 'no content', '']);
          c.write(get(mode, '/app/304', ['If-None-Match: "probe"']));
          const notModified = await c.next();
          assert.deepEqual([notModified?.status, notModified?.headers.etag, notModified?.body], [304, '"probe"', '']);
          c.write(get(mode, '/app/chunked'));
          const chunked = await c.next();
          assert.equal(chunked?.status, 200);
          assert.equal(chunked.headers['transfer-encoding'], 'chunked');
          assert.equal(chunked.body, PIECES.join(''));
          // Nothing stray was left between the answers: the next request is answered cleanly.
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next());
          assert.equal(c.unread, '', 'no bytes beyond the answers');
        } finally {
          c.close();
        }
      });

      test('an answer delimited by the app closing its connection ends with the client connection closed', async () => {
        const c = await client();
        try {
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next());
          c.write(get(mode, '/app/close'));
          await c.closed();
          const res = await c.next();
          assert.equal(res?.status, 200);
          assert.equal(res.headers['content-length'], undefined);
          assert.equal(res.body, PIECES.join(''));
        } finally {
          c.close();
        }
      });

      test("the app sees X-Forwarded-For/Proto/Host/Prefix set by the hub, not the client's", async () => {
        const c = await client();
        try {
          const spoofed = ['X-Forwarded-For: 203.0.113.7', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example', 'X-Forwarded-Prefix: /spoofed', 'X-Real-IP: 203.0.113.8', 'Forwarded: for=203.0.113.9'];
          c.write(get(mode, '/app/headers?q=1', spoofed));
          const res = await c.next();
          assert.equal(res?.status, 200, res?.body);
          const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
          assert.equal(seen.url, '/app/headers?q=1');
          // The client's chain is kept in front; the address the hub saw is last.
          assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
          assert.equal(seen.headers['x-real-ip'], '127.0.0.1');
          assert.equal(seen.headers['x-forwarded-proto'], 'http');
          assert.equal(seen.headers['x-forwarded-host'], mode.host(open.token));
          assert.equal(seen.headers['x-forwarded-prefix'], mode.name === 'path' ? `/l/${open.token}` : undefined);
          assert.match(seen.headers.forwarded ?? '', /^for=127\.0\.0\.1;proto=http;host=/);
        } finally {
          c.close();
        }
      });

      test('Connection: close from the client closes the connection after the answer', async () => {
        const c = await client();
        try {
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next());
          c.write(get(mode, '/app/fast', ['Connection: close']));
          const res = await c.next();
          assertFast(res);
          assert.equal(res?.headers.connection, 'close');
          await c.closed();
        } finally {
          c.close();
        }
      });

      test('a refused request with a body, then a pipelined GET: the body is skipped, the GET answered', async () => {
        const watch = watchApp();
        const c = await client();
        try {
          // The refused body is a whole request: it must be dropped, never read as one.
          const refused = request(mode, getOnly, 'POST', '/app/echo', { body: SMUGGLED });
          c.write(Buffer.concat([refused, request(mode, getOnly, 'GET', '/app/headers?after=refusal')]));
          const first = await c.next();
          assert.equal(first?.status, 405, first?.body);
          assert.equal(first.headers.allow, 'GET');
          const second = await c.next();
          assert.equal(second?.status, 200, second?.body);
          assert.equal((JSON.parse(second.body) as { url: string }).url, '/app/headers?after=refusal');
          // The same with the body sent after the refusal was answered.
          c.write(request(mode, getOnly, 'POST', '/app/echo', { headers: [`Content-Length: ${SMUGGLED.length}`] }));
          const third = await c.next();
          assert.equal(third?.status, 405);
          c.write(Buffer.concat([Buffer.from(SMUGGLED), request(mode, getOnly, 'GET', '/app/fast')]));
          assertFast(await c.next());
        } finally {
          c.close();
        }
        await assertNothingSmuggled(watch);
      });

      test('curl: GET, HEAD, a POST body, chunked and close-delimited answers, and several requests on one connection', async () => {
        const fast = await curl([...curlUrl(mode, '/app/fast'), ...curlUrl(mode, '/app/chunked').slice(-1), ...curlUrl(mode, '/app/headers').slice(-1)]);
        assert.deepEqual(fast.answers.map((a) => a.status), [200, 200, 200]);
        assert.equal(fast.answers[0]!.body, FAST_BODY);
        assert.equal(fast.answers[1]!.headers['transfer-encoding'], 'chunked');
        assert.equal(fast.answers[1]!.body, PIECES.join(''));
        assert.equal(fast.connects, 1, 'curl kept its one connection for the three requests');
        const head = await curl(['-I', ...curlUrl(mode, '/app/fast')], [0]);
        assert.deepEqual([head.answers[0]?.status, head.answers[0]?.headers['content-length']], [200, '64']);
        const body = randomBytes(300_000);
        const posted = await curlUpload(mode, body);
        assert.deepEqual(posted, { length: body.length, sha256: sha256(body) });
        const closed = await curl(curlUrl(mode, '/app/close'));
        assert.equal(closed.answers[0]?.status, 200);
        assert.equal(closed.answers[0]?.body, PIECES.join(''));
      });
    });
  }

  describe('hand-over to Node', () => {
    for (const mode of modes) {
      test(`${mode.name} mode: a link request, then an API request on the same connection, answered by the API`, async () => {
        const c = await client();
        try {
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next());
          c.write(`GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\n\r\n`);
          const ready = await c.next();
          assert.equal(ready?.status, 200, ready?.body);
          assert.deepEqual(JSON.parse(ready.body), { ready: true, state: 'ready' });
          // Then a link request again (now read by Node's server), and both pipelined in one write.
          c.write(Buffer.concat([get(mode, '/app/fast'), Buffer.from(`GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\n\r\n`), get(mode, '/app/headers?n=3')]));
          assertFast(await c.next());
          assert.equal((await c.next())?.status, 200);
          assert.equal(JSON.parse((await c.next())!.body).url, '/app/headers?n=3');
        } finally {
          c.close();
        }
      });
    }

    test('an API request first, then link requests on the same connection: both served', async () => {
      for (const mode of modes) {
        const c = await client();
        try {
          c.write(`GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\n\r\n`);
          assert.equal((await c.next())?.status, 200);
          for (let i = 0; i < 3; i++) {
            c.write(get(mode, '/app/fast'));
            assertFast(await c.next(), `${mode.name} mode, request ${i}`);
          }
          c.write(request(mode, open, 'POST', '/app/echo', { body: 'through Node' }));
          assert.deepEqual(JSON.parse((await c.next())!.body), { length: 12, sha256: sha256('through Node') });
        } finally {
          c.close();
        }
      }
    });

    test('a WebSocket upgrade on a connection that started on the fast path is handed to Node and echoes', async () => {
      for (const mode of modes) {
        const c = await client();
        try {
          c.write(get(mode, '/app/fast'));
          assertFast(await c.next());
          const key = randomBytes(16).toString('base64');
          c.write(get(mode, '/app/ws', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${key}`]));
          const switched = await c.next();
          assert.equal(switched?.status, 101, switched?.body);
          assert.equal(switched.headers['sec-websocket-accept'], createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'));
          c.write(wsTextFrame(`hello over ${mode.name} mode`));
          const echoed = await eventually(async () => {
            const text = readWsText(c.unread);
            assert.ok(text !== undefined, 'no whole frame yet');
            return text;
          }, 10_000, 20);
          assert.equal(echoed, `hello over ${mode.name} mode`);
        } finally {
          c.close();
        }
      }
      await streamsAtRest();
    });
  });

  describe('attacks on a fast connection', () => {
    /** A connection that has served one link request (`fast`: on the fast path) or one API request (`node`: Node's). */
    const startedConnection = async (start: 'fast' | 'node' = 'fast', options: RawHttpOptions = {}): Promise<RawHttpClient> => {
      const c = await rawHttpClient(hub.port, options);
      if (start === 'fast') {
        c.write(get(pathMode, '/app/fast'));
        assertFast(await c.next(), 'the request that starts the fast connection');
      } else {
        c.write(`GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\n\r\n`);
        assert.equal((await c.next())?.status, 200, 'the API request that starts the connection');
      }
      return c;
    };

    /** Sends `bytes` on a connection that served a fast request; resolves with the answers until the hub closes. */
    const attack = async (bytes: string | Buffer): Promise<WireResponse[]> => {
      const c = await startedConnection();
      const answers: WireResponse[] = [];
      try {
        c.write(bytes);
        for (;;) {
          const res = await c.next(10_000).catch(() => undefined);
          if (!res) break;
          answers.push(res);
        }
      } finally {
        c.close();
      }
      return answers;
    };

    const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;
    const target = (path: string) => pathMode.target(open.token, path);
    const host = () => `Host: ${pathMode.host(open.token)}`;

    test('Content-Length with Transfer-Encoding (either order) is refused with 400 by Node', async () => {
      const watch = watchApp();
      const body = `0\r\n\r\n${SMUGGLED}`;
      for (const framing of [[`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked'], ['Transfer-Encoding: chunked', `Content-Length: ${body.length}`]]) {
        const answers = await attack(head([`POST ${target('/app/echo')} HTTP/1.1`, host(), ...framing]) + body);
        assert.deepEqual(answers.map((a) => a.status), [400], JSON.stringify(framing));
      }
      await assertNothingSmuggled(watch);
    });

    test('two Content-Lengths are refused with 400 by Node', async () => {
      const watch = watchApp();
      for (const lengths of [['Content-Length: 0', `Content-Length: ${SMUGGLED.length}`], [`Content-Length: ${SMUGGLED.length}`, `Content-Length: ${SMUGGLED.length}`]]) {
        const answers = await attack(head([`POST ${target('/app/echo')} HTTP/1.1`, host(), ...lengths]) + SMUGGLED);
        assert.deepEqual(answers.map((a) => a.status), [400], JSON.stringify(lengths));
      }
      await assertNothingSmuggled(watch);
    });

    test('an obs-fold line is refused with 400 by Node', async () => {
      const watch = watchApp();
      const answers = await attack(head([`POST ${target('/app/echo')} HTTP/1.1`, host(), 'X-Fold: a', ' Transfer-Encoding: chunked', `Content-Length: ${SMUGGLED.length}`]) + SMUGGLED);
      assert.deepEqual(answers.map((a) => a.status), [400]);
      await assertNothingSmuggled(watch);
    });

    test('a bare LF inside a head is refused with 400 by Node', async () => {
      const watch = watchApp();
      const answers = await attack(`POST ${target('/app/echo')} HTTP/1.1\r\n${host()}\r\nX-A: a\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
      assert.deepEqual(answers.map((a) => a.status), [400]);
      await assertNothingSmuggled(watch);
    });

    test('a head whose lines all end in a bare LF is refused with 400, as Node refuses it', async () => {
      // Node answers 400 at once. A fast path that waits for CRLFCRLF instead holds the head until
      // HUB_HEADERS_TIMEOUT, then answers 408 (first request) or closes without a word (a later one).
      for (const start of ['new', 'fast'] as const) {
        const c = start === 'new' ? await rawHttpClient(hub.port) : await startedConnection();
        try {
          c.write(`GET ${target('/app/fast?bare-lf')} HTTP/1.1\n${host()}\n\n`);
          const res = await c.next(10_000).catch(() => undefined);
          assert.equal(res?.status, 400, `on a ${start} connection: ${res ? `${res.status} ${res.body}` : 'closed without an answer'}`);
        } finally {
          c.close();
        }
      }
      assert.ok(!app.seen.some((s) => s.includes('bare-lf')), 'the app never sees it');
    });

    test('a chunked body holding a request reaches the app as body bytes; what follows its last chunk is checked', async () => {
      const watch = watchApp();
      const c = await startedConnection();
      try {
        const chunked = `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`;
        c.write(head([`POST ${target('/app/echo')} HTTP/1.1`, host(), 'Transfer-Encoding: chunked']) + chunked + SMUGGLED);
        const echo = await c.next();
        assert.equal(echo?.status, 200, echo?.body);
        assert.deepEqual(JSON.parse(echo.body), { length: SMUGGLED.length, sha256: sha256(SMUGGLED) });
        // The bytes after the body are the next request: `GET /admin` with Host `app` is no link request at all.
        const next = await c.next();
        assert.notEqual(next?.status, 200, next?.body);
      } finally {
        c.close();
      }
      await assertNothingSmuggled(watch);
    });

    test('a Connection header naming Content-Length does not turn the body into a request', async () => {
      const failures: string[] = [];
      for (const start of ['fast', 'node'] as const) {
        const watch = watchApp();
        const c = await startedConnection(start);
        let answer = 'no answer';
        try {
          c.write(request(pathMode, open, 'POST', '/app/echo', { headers: ['Connection: keep-alive, Content-Length', `Content-Length: ${SMUGGLED.length}`], body: SMUGGLED }));
          const res = await c.next(10_000).catch(() => undefined);
          if (res) answer = `${res.status} ${res.body.slice(0, 120)}`;
        } finally {
          c.close();
        }
        const smuggled = await watch.smuggled();
        if (smuggled.length > 0) failures.push(`on a ${start} connection the app parsed ${JSON.stringify(watch.seen())} (the client got: ${answer})`);
      }
      assert.deepEqual(failures, []);
    });

    test('a client that leaves in the middle of a body the app did not wait for leaves no half-read stream to the next client', async () => {
      const failures: string[] = [];
      for (const start of ['fast', 'node'] as const) {
        const watch = watchApp();
        // The app answers /app/fast without reading the body: the hub has sent the head and part of the body.
        const first = await startedConnection(start);
        first.write(request(pathMode, open, 'POST', '/app/fast', { headers: ['Content-Length: 2000'] }));
        first.write('x'.repeat(100));
        assertFast(await first.next());
        first.close();
        await sleep(500); // its stream goes back to the link's pool, or is closed
        // The next client's body ends with a request. Should it get that stream, the app reads the next client's head
        // and the start of its body as the rest of the old body, and then the request.
        const sled = '\r\n'.repeat(2000);
        const next = await rawHttpClient(hub.port);
        let answer = 'no answer';
        try {
          next.write(request(pathMode, open, 'POST', '/app/echo', { body: sled + SMUGGLED }));
          const res = await next.next(10_000).catch(() => undefined);
          if (res) answer = `${res.status} ${res.body.slice(0, 120)}`;
        } finally {
          next.close();
        }
        const smuggled = await watch.smuggled();
        if (smuggled.length > 0) failures.push(`after a ${start} connection the app parsed ${JSON.stringify(watch.seen())} (the next client got: ${answer})`);
      }
      assert.deepEqual(failures, []);
    });

    test('a head over 16 KiB gets 431 (or 400) from Node, and nothing reaches the app', async () => {
      const big = `X-Big: ${'a'.repeat(20 * 1024)}`;
      for (const start of ['new', 'fast'] as const) {
        const c = start === 'new' ? await rawHttpClient(hub.port) : await startedConnection();
        try {
          c.write(head([`GET ${target('/app/fast?huge-head')} HTTP/1.1`, host(), big]));
          const res = await c.next(10_000);
          assert.ok(res && [431, 400].includes(res.status), `on a ${start} connection: ${res?.status}`);
          await c.closed();
        } finally {
          c.close();
        }
      }
      assert.ok(!app.seen.some((s) => s.includes('huge-head')), 'the app never sees it');
    });

    test('a head trickled past HUB_HEADERS_TIMEOUT gets 408 or a close', async () => {
      for (const start of ['new', 'fast'] as const) {
        const c = start === 'new' ? await rawHttpClient(hub.port) : await startedConnection();
        try {
          c.write(`GET ${target('/app/fast?slow-head')} HTTP/1.1\r\n${host()}\r\nX-Slow: `);
          const deadline = Date.now() + 15_000;
          while (!c.ended && Date.now() < deadline) {
            c.write('a');
            await sleep(200);
          }
          assert.ok(c.ended, `the hub still reads the head after 15 s (on a ${start} connection)`);
          const res = await c.next().catch(() => undefined);
          if (res) assert.equal(res.status, 408);
        } finally {
          c.close();
        }
      }
      assert.ok(!app.seen.some((s) => s.includes('slow-head')), 'the app never sees it');
    });

    test('a body that stops halfway is cut after HUB_REQUEST_TIMEOUT, and its stream closed', async () => {
      const c = await startedConnection();
      try {
        c.write(request(pathMode, open, 'POST', '/app/echo?half-body', { headers: ['Content-Length: 1000'] }));
        c.write('x'.repeat(500));
        await c.closed(20_000);
        const res = await c.next().catch(() => undefined);
        if (res) assert.equal(res.status, 408);
      } finally {
        c.close();
      }
      await streamsAtRest();
    });

    test('a connection the hub ended is let go of even when the client never closes its side', async () => {
      // Node's server destroys a connection after `Connection: close` and after a 408; a client that keeps its
      // half open must not keep the hub's socket, nor the stream to the app of a request it never finished.
      const failures: string[] = [];
      const cases: Array<[string, 'new' | 'fast', (c: RawHttpClient) => void]> = [
        ['an answer to Connection: close', 'fast', (c) => c.write(get(pathMode, '/app/fast', ['Connection: close']))],
        ['a 408 for a body that stopped halfway', 'fast', (c) => c.write(Buffer.concat([request(pathMode, open, 'POST', '/app/echo?half-open', { headers: ['Content-Length: 1000'] }), Buffer.from('x'.repeat(500))]))],
        ['a 408 for a head that stopped halfway', 'new', (c) => c.write(`GET ${target('/app/fast?half-open-head')} HTTP/1.1\r\n${host()}\r\n`)],
      ];
      const clients: RawHttpClient[] = [];
      try {
        // The three at once: each waits 15 s for the hub to let go.
        await Promise.all(
          cases.map(async ([what, start, send]) => {
            const c = start === 'new' ? await rawHttpClient(hub.port, { keepOpen: true }) : await startedConnection('fast', { keepOpen: true });
            clients.push(c);
            send(c);
            await c.closed(20_000); // the hub ended its side
            // Once the hub has let go, what the client sends is refused (a reset, then EPIPE).
            const deadline = Date.now() + 15_000;
            while (!c.error && Date.now() < deadline) {
              c.write('x');
              await sleep(200);
            }
            if (!c.error) failures.push(`after ${what} the hub still holds the connection 15 s later`);
          }),
        );
        // While those clients are still there: no stream may be held for them.
        const metrics = await hub.metrics();
        const [open, idle] = [metrics.get('connect_streams_open'), metrics.get('connect_public_link_idle_streams') ?? 0];
        if (open !== idle) failures.push(`with those clients still there, ${open} streams are open and ${idle} idle`);
      } finally {
        for (const c of clients) c.close();
      }
      assert.deepEqual(failures, []);
      await streamsAtRest();
    });

    test('a client that sends a request and leaves before the answer leaves no stream open', async () => {
      for (const leave of ['reset', 'close', 'half-close'] as const) {
        const c = await rawHttpClient(hub.port);
        const marker = `/app/slow/1500?leave=${leave}`;
        c.write(get(pathMode, marker));
        await eventually(async () => assert.ok(app.seen.some((s) => s.endsWith(marker)), 'the app got the request'), 10_000, 20);
        if (leave === 'reset') c.reset();
        else if (leave === 'close') c.close(); // a FIN: to the hub the same as a half-close
        else {
          c.end();
          const res = await c.next(10_000);
          assert.equal(res?.status, 200, 'a half-closed client still gets its answer');
          await c.closed();
        }
      }
      // A reset tells the hub at once: the app sees its connection go.
      await eventually(async () => assert.ok(app.abandoned.includes('/app/slow/1500?leave=reset'), `the app's request of the client that reset is abandoned (${JSON.stringify(app.abandoned)})`), 10_000);
      await streamsAtRest();
    });

    test('a client that reads nothing of a large download does not grow the hub without bound; the link serves others meanwhile', async (t) => {
      const pid = hub.proc.child.pid!;
      const total = 256 * MiB;
      const warm = await curl([`${hub.url}/l/${open.token}/app/big/${MiB}`]);
      assert.equal(warm.answers[0]?.status, 200);
      const baseline = rss(pid);
      const stalled = net.connect(hub.port, '127.0.0.1');
      try {
        await new Promise<void>((resolve, reject) => stalled.once('connect', resolve).once('error', reject));
        stalled.pause(); // reads nothing
        stalled.write(get(pathMode, `/app/big/${total}`));
        let peak = baseline;
        for (let i = 0; i < 20; i++) {
          await sleep(250);
          peak = Math.max(peak, rss(pid));
        }
        const others = await curl([`${hub.url}/l/${open.token}/app/fast`]);
        assert.equal(others.answers[0]?.body, FAST_BODY, 'another client is served while one reads nothing');
        const growth = peak - baseline;
        t.diagnostic(`hub RSS ${(baseline / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB with a client reading nothing of ${total / MiB} MiB`);
        assert.ok(growth < 96 * MiB, `the hub grew by ${(growth / MiB).toFixed(1)} MiB while a client read nothing of ${total / MiB} MiB`);
        // A download that is read arrives intact (4 MiB, checked end to end).
        const small = await run('curl', ['-sS', '--max-time', '60', `${hub.url}/l/${open.token}/app/big/${4 * MiB}`], { encoding: 'buffer', maxBuffer: 16 * MiB });
        assert.equal(sha256(small.stdout), expectedDigest(4 * MiB, BIG_SEED));
      } finally {
        stalled.destroy();
      }
      await streamsAtRest();
    });
  });

  test('at the end no stream is open but the idle ones, and the app never parsed a request for /admin', async () => {
    await streamsAtRest();
    assert.deepEqual(app.seen.filter((s) => s.includes('/admin')), [], 'requests for /admin reached the app (see the failures above)');
  });
});

/** A masked WebSocket text frame (client to server) of a short message. */
function wsTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  assert.ok(payload.length < 126);
  const mask = randomBytes(4);
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i % 4]!;
  return frame;
}

/** The text of the first (short, unmasked) server frame in `bytes` (latin1), or undefined while it is incomplete. */
function readWsText(bytes: string): string | undefined {
  const buf = Buffer.from(bytes, 'latin1');
  if (buf.length < 2) return undefined;
  const length = buf[1]! & 0x7f;
  if (buf.length < 2 + length) return undefined;
  return buf.subarray(2, 2 + length).toString('utf8');
}
