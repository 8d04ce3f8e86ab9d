import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalTarget, checkHttpRequest, parsePaths } from '../src/http-rules.js';

const refusal = (target: string) => {
  const read = canonicalTarget(target);
  return read.ok ? 'allowed' : read.error.code;
};

describe('canonicalTarget', () => {
  it('refuses every spelling of a path that a backend could resolve above the allowed prefix', () => {
    const attacks = [
      '/api/v1/..%2f..%2fsecret.txt',
      '/api/v1/..%2F..%2Fsecret.txt',
      '/api/v1/%2e%2e/%2e%2e/secret.txt',
      '/api/v1/%2E%2E/secret.txt',
      '/api/v1/.%2e/secret.txt',
      '/api/v1/%2e./secret.txt',
      '/api/v1/%2e%2e%2fsecret.txt',
      '/api/v1/../../secret.txt',
      '/api/v1/..',
      '/api/v1/..;jsessionid=1/secret.txt',
      '/api/v1/..%5csecret.txt',
      '/api/v1/..\\secret.txt',
    ];
    for (const target of attacks) assert.equal(refusal(target), 'AMBIGUOUS_PATH', target);
  });

  it('refuses a NUL, a # and a % that is not an escape', () => {
    for (const target of ['/api/v1/a%00.txt', '/api/v1/a\0', '/api/v1/a#/../../x', '/api/v1/%zz', '/api/v1/%4', '/api/v1/100%']) {
      assert.equal(refusal(target), 'AMBIGUOUS_PATH', JSON.stringify(target));
    }
  });

  it('refuses what is not a path with BAD_REQUEST', () => {
    for (const target of ['', 'api', '*', 'http://evil/api/v1', '//evil/api/v1']) assert.equal(refusal(target), 'BAD_REQUEST', target);
  });

  it('checks the decoded path and forwards the raw one without . segments', () => {
    assert.deepEqual(canonicalTarget('/api/v%31/x?q=%2f..'), { ok: true, path: '/api/v1/x', target: '/api/v%31/x?q=%2f..' });
    assert.deepEqual(canonicalTarget('/api/./v1/%2e/x'), { ok: true, path: '/api/v1/x', target: '/api/v1/x' });
    assert.deepEqual(canonicalTarget('/api/v1/.'), { ok: true, path: '/api/v1/', target: '/api/v1/' });
    assert.deepEqual(canonicalTarget('/caf%C3%A9'), { ok: true, path: '/café', target: '/caf%C3%A9' });
    assert.deepEqual(canonicalTarget('/'), { ok: true, path: '/', target: '/' });
  });

  it('leaves the query alone: limits are on the path', () => {
    const read = canonicalTarget('/x?next=/../admin&y=%zz');
    assert.ok(read.ok);
    assert.equal(read.target, '/x?next=/../admin&y=%zz');
  });
});

describe('checkHttpRequest', () => {
  const rules = { methods: ['GET'], paths: parsePaths(['/api/v1']) };

  it('allows an escaped spelling of an allowed path, on segment boundaries only', () => {
    assert.deepEqual(checkHttpRequest(rules, 'GET', '/api/v%31/users'), { ok: true, path: '/api/v1/users', target: '/api/v%31/users' });
    const outside = checkHttpRequest(rules, 'GET', '/api/v10');
    assert.ok(!outside.ok && outside.error.code === 'PATH_NOT_ALLOWED');
    const escaped = checkHttpRequest(rules, 'GET', '/api/v1%31');
    assert.ok(!escaped.ok && escaped.error.code === 'PATH_NOT_ALLOWED');
  });

  it('refuses an ambiguous path before the method and path limits, with status 400', () => {
    const answer = checkHttpRequest(rules, 'DELETE', '/api/v1/..%2fadmin');
    assert.ok(!answer.ok);
    assert.equal(answer.error.code, 'AMBIGUOUS_PATH');
    assert.equal(answer.error.status, 400);
  });

  it('names the decoded path on a refusal of the limits, for the audit log', () => {
    const answer = checkHttpRequest(rules, 'POST', '/api/v%31/x');
    assert.ok(!answer.ok);
    assert.equal(answer.error.code, 'METHOD_NOT_ALLOWED');
    assert.equal(answer.path, '/api/v1/x');
  });
});

describe('parsePaths', () => {
  it('stores prefixes decoded and refuses an ambiguous one', () => {
    assert.deepEqual(parsePaths(['/api/v%31/', '/a/./b']), ['/api/v1', '/a/b']);
    for (const bad of ['/api/..', '/api/%2e%2e', '/a%2fb', '/a%zz']) assert.throws(() => parsePaths([bad]), { code: 'BAD_REQUEST' }, bad);
  });

  it('keeps an escaped ? or # inside the prefix instead of cutting the prefix short there', () => {
    const paths = parsePaths(['/api%3Fx', '/b%23c']);
    assert.deepEqual(paths, ['/api?x', '/b#c']);
    const below = checkHttpRequest({ paths }, 'GET', '/api/admin');
    assert.ok(!below.ok && below.error.code === 'PATH_NOT_ALLOWED');
  });
});
