/**
 * An in-process hub on a test database with a ManualClock, a captured log and a captured console (where sign-in
 * links are printed without SMTP_URL), plus HTTP helpers for sign-in.
 */

import { Writable } from 'node:stream';
import { ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { startHub, type Hub } from '../../src/hub.js';
import { collectJsonLines, createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export interface IdentityHub {
  hub: Hub;
  clock: ManualClock;
  logs: Array<Record<string, unknown>>;
  /** What the hub printed on its console (links). */
  console: string[];
  /** The token of the most recent link printed for this address (the embedded no-SMTP delivery). */
  lastLinkToken(email: string): string;
  /** The full link most recently printed for this address. */
  lastLink(email: string): string;
  request(method: string, path: string, options?: { cookie?: string; body?: unknown; headers?: Record<string, string> }): Promise<Answer>;
  /** Asks for a login link and follows it; returns the session cookie (`pc_session=...`). */
  signIn(email: string): Promise<{ cookie: string; userId: string; workspaceId: string }>;
  dispose(): Promise<void>;
}

export async function startIdentityHub(env: NodeJS.ProcessEnv = {}, shared?: TestDatabase): Promise<IdentityHub> {
  const t = shared ?? (await createTestDatabase());
  const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
  const { sink, lines: logs } = collectJsonLines();
  const printed: string[] = [];
  const consoleSink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      printed.push(...chunk.toString().split('\n').filter(Boolean));
      callback();
    },
  });
  const config = loadConfig({
    HUB_PORT: '0',
    WEB_PORT: '0',
    HUB_HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    HUB_RATE_LIMIT_LOGIN_IP: '100000/1m',
    HUB_RATE_LIMIT_LOGIN_EMAIL: '100000/1m',
    HUB_RATE_LIMIT_API: '100000/1m',
    HUB_RATE_LIMIT_DEVICE_IP: '100000/1m',
    HUB_RATE_LIMIT_AUTH_FAILURES: '100000/1m',
    ...env,
  });
  let hub: Hub;
  try {
    hub = await startHub(config, { db: t.db, clock, logger: createLogger('info', sink), console: consoleSink });
  } catch (err) {
    if (!shared) await t.dispose();
    throw err;
  }

  const lastLink = (email: string): string => {
    const line = [...printed].reverse().find((l) => l.includes(` link for ${email}: `));
    if (!line) throw new Error(`no link printed for ${email}`);
    return line.slice(line.lastIndexOf(' ') + 1);
  };
  const request: IdentityHub['request'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.cookie) headers.cookie = options.cookie;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    // A signed-in browser on the hub's own page (the dashboard) sends its Origin and JSON on every state change.
    if (options.cookie && method !== 'GET' && method !== 'HEAD') {
      headers.origin ??= hub.url;
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(hub.url + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), redirect: 'manual' });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, headers: res.headers, body };
  };
  const ih: IdentityHub = {
    hub,
    clock,
    logs,
    console: printed,
    lastLink,
    lastLinkToken: (email) => new URL(lastLink(email)).searchParams.get('token')!,
    request,
    async signIn(email) {
      const login = await request('POST', '/v1/auth/login', { body: { email } });
      if (login.status !== 202) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
      const verify = await request('POST', `/v1/auth/verify?token=${encodeURIComponent(ih.lastLinkToken(email))}`);
      if (verify.status !== 200) throw new Error(`verify: ${verify.status} ${JSON.stringify(verify.body)}`);
      return { cookie: sessionCookie(verify.headers)!, userId: verify.body.userId, workspaceId: verify.body.workspaceId };
    },
    async dispose() {
      try {
        await hub.close();
      } finally {
        if (!shared) await t.dispose();
      }
    },
  };
  return ih;
}

/** `pc_session=<value>` from a response's Set-Cookie (`__Host-pc_session=` from a hub served over https), or undefined. */
export function sessionCookie(headers: Headers): string | undefined {
  return sessionSetCookie(headers)?.split(';')[0];
}

/** The Set-Cookie line of the session cookie (named `__Host-pc_session` over https). */
export function sessionSetCookie(headers: Headers): string | undefined {
  return headers.getSetCookie().find((c) => /^(__Host-)?pc_session=/.test(c));
}
