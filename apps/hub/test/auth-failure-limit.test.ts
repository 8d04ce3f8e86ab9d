/**
 * Anonymous floods (issue 20, class 8): a made-up bearer or session cookie on every request must not buy a fresh
 * rate bucket each time. Failed and unknown credentials count against the client's address
 * (HUB_RATE_LIMIT_AUTH_FAILURES); past the limit that address gets 429, while other addresses are still served.
 * Requests leave from real addresses 127.0.0.2 and 127.0.0.3 to the hub on 127.0.0.1.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from './support/test-hub.js';
import { dbKind } from './support/test-database.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

function get(port: number, path: string, from: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, localAddress: from, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end();
  });
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A well-formed API key nobody was given. */
const madeUpKey = () => `pc_${[...randomBytes(32)].map((b) => BASE62[b % 62]).join('')}`;
const madeUpSession = () => `pc_session=${randomBytes(32).toString('hex')}`;

describe(`failed credentials count against the client address (${dbKind})`, () => {
  const LIMIT = 20;
  let t: TestHub;
  before(async () => {
    // The per-credential API limit stays high: only the failures limit may stop this flood.
    t = await startTestHub(undefined, { HUB_RATE_LIMIT_AUTH_FAILURES: `${LIMIT}/1m`, HUB_RATE_LIMIT_API: '10000/1m' });
  });
  after(async () => {
    await t?.close();
  });

  test('a flood of random bearers and cookies from one address gets 429 after the limit; a valid key from another address is served', async () => {
    const answers: Answer[] = [];
    for (let i = 0; i < LIMIT * 3; i++) {
      const headers: Record<string, string> = i % 2 === 0 ? { authorization: `Bearer ${madeUpKey()}` } : { cookie: madeUpSession() };
      answers.push(await get(t.hub.port, i % 3 === 0 ? '/v1/me' : '/v1/services', '127.0.0.2', headers));
    }
    const statuses = answers.map((a) => a.status);
    assert.deepEqual(statuses.slice(0, LIMIT), Array(LIMIT).fill(401), 'the first failures are answered 401');
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length >= LIMIT, `only ${limited.length} of ${answers.length} bogus requests got 429: ${statuses.join(',')}`);
    assert.deepEqual(new Set(statuses.slice(LIMIT + 1)), new Set([429]), statuses.join(','));
    for (const answer of limited) {
      assert.equal(answer.body.error?.code, 'RATE_LIMITED');
      assert.match(answer.body.error?.message ?? '', /too many .*this address.*try again in \d+ s/);
      assert.ok(Number(answer.headers['retry-after']) >= 1, String(answer.headers['retry-after']));
    }
    // Another address: its own count, and a valid key is served.
    const served = await get(t.hub.port, '/v1/me', '127.0.0.3', { authorization: `Bearer ${t.apiKey}` });
    assert.equal(served.status, 200, JSON.stringify(served.body));
    const stranger = await get(t.hub.port, '/v1/me', '127.0.0.3', { authorization: `Bearer ${madeUpKey()}` });
    assert.equal(stranger.status, 401);
  });
});
