/** Refusals of the control message schemas: every named limit, wrong types and unknown messages, with their codes. */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentMessage, parseControlArgs, parseControlResult, parseGoAway, parseHubMessage, parseOpenNotice, parseOpenRequest, type ControlOp } from '../src/control.js';
import { ConnectError, ProtocolError } from '../src/errors.js';
import {
  MAX_ACCESS_REPORT_COUNT,
  MAX_ADDRESS,
  MAX_AGENT_VERSION,
  MAX_ERROR_MESSAGE,
  MAX_HTTP_METHOD,
  MAX_ID,
  MAX_REPORTED_PATH,
  MAX_SERVICE_REF,
  MAX_SHARE_NAME,
  MAX_SHARE_PATH,
  MAX_SHARE_RULES,
  MAX_TARGET,
  MAX_TIME_TEXT,
  MAX_TOKEN,
} from '../src/limits.js';
import { check, s } from '../src/schema.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');
const x = (n: number) => 'x'.repeat(n);

function refusedRequest(op: ControlOp, args: unknown, message: RegExp): void {
  assert.throws(
    () => parseControlArgs(op, args),
    (err: unknown) => err instanceof ConnectError && err.code === 'BAD_REQUEST' && message.test(err.message),
    `${op} ${JSON.stringify(args).slice(0, 120)}`,
  );
}

function refusedMessage(parse: () => unknown, message: RegExp): void {
  assert.throws(parse, (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE' && message.test(err.message), String(message));
}

const access = { shareId: 's1', service: 'api', method: 'GET', path: '/v1', status: 200 };

describe('control request arguments', () => {
  test('accepts each op at its limits, dropping arguments it does not know', () => {
    assert.deepEqual(parseControlArgs('expose', { name: x(MAX_SERVICE_REF), target: x(MAX_TARGET), protocol: 'http', hubPort: true, extra: 1 }), {
      name: x(MAX_SERVICE_REF),
      target: x(MAX_TARGET),
      protocol: 'http',
      hubPort: true,
    });
    assert.deepEqual(parseControlArgs('reach', { name: 'db', localPort: 65535 }), { name: 'db', localPort: 65535 });
    assert.deepEqual(parseControlArgs('unreach', { tunnelId: x(MAX_ID) }), { tunnelId: x(MAX_ID) });
    assert.deepEqual(parseControlArgs('list', { anything: true }), {});
    const full = { ...access, method: x(MAX_HTTP_METHOD), path: x(MAX_REPORTED_PATH), ip: x(MAX_ADDRESS), count: MAX_ACCESS_REPORT_COUNT };
    assert.deepEqual(parseControlArgs('access', full), full);
  });

  test('refuses a field one character past its named limit, naming the field and the limit', () => {
    refusedRequest('expose', { name: x(MAX_SERVICE_REF + 1), target: 'localhost:1' }, new RegExp(`^name is longer than ${MAX_SERVICE_REF} characters$`));
    refusedRequest('expose', { name: 'db', target: x(MAX_TARGET + 1) }, new RegExp(`^target is longer than ${MAX_TARGET} characters$`));
    refusedRequest('resolve', { name: x(MAX_SERVICE_REF + 1) }, /^name is longer than/);
    refusedRequest('unreach', { tunnelId: x(MAX_ID + 1) }, new RegExp(`^tunnelId is longer than ${MAX_ID}`));
    refusedRequest('access', { ...access, shareId: x(MAX_ID + 1) }, /^shareId is longer than/);
    refusedRequest('access', { ...access, method: x(MAX_HTTP_METHOD + 1) }, new RegExp(`^method is longer than ${MAX_HTTP_METHOD}`));
    refusedRequest('access', { ...access, path: x(MAX_REPORTED_PATH + 1) }, new RegExp(`^path is longer than ${MAX_REPORTED_PATH}`));
    refusedRequest('access', { ...access, ip: x(MAX_ADDRESS + 1) }, new RegExp(`^ip is longer than ${MAX_ADDRESS}`));
    refusedRequest('access', { ...access, count: MAX_ACCESS_REPORT_COUNT + 1 }, /^count must be a whole number of requests from 1 to 1000000$/);
  });

  test('refuses arguments of the wrong type, naming what was expected', () => {
    refusedRequest('expose', { name: 'db' }, /^target must be a non-empty string$/);
    refusedRequest('expose', { name: 'db', target: 'h:1', protocol: 'udp' }, /^protocol must be "tcp" or "http"$/);
    refusedRequest('expose', { name: 'db', target: 'h:1', replace: 'yes' }, /^replace must be true or false$/);
    refusedRequest('expose', { name: 'db', target: 'h:1', hubPort: 1 }, /^hubPort must be true or false$/);
    refusedRequest('expose', { name: ['db'], target: 'h:1' }, /^name must be a non-empty string$/);
    for (const localPort of ['80', -1, 65536, 1.5, null, undefined]) {
      refusedRequest('reach', { name: 'db', localPort }, /^localPort must be an integer from 0 to 65535$/);
    }
    for (const status of [99, 600, '200', 200.5]) refusedRequest('access', { ...access, status }, /^status must be an HTTP status from 100 to 599$/);
    refusedRequest('access', { ...access, ip: 7 }, /^ip must be an address of at most 64 characters$/);
    refusedRequest('access', { ...access, count: 0 }, /^count must be/);
    refusedRequest('health', { service: 'db', checks: 'tcp' }, /^checks must be an array of 1 to 16 checks$/);
  });

  test('refuses arguments that are not an object', () => {
    for (const args of [null, [], 'db', 1]) refusedRequest('resolve', args, /^the arguments must be an object$/);
  });

  test('reads an argument named like an Object.prototype member only as the agent sent it', () => {
    const args = JSON.parse('{"__proto__": {"name": "evil"}, "tunnelId": "t"}') as unknown;
    assert.deepEqual(parseControlArgs('unreach', args), { tunnelId: 't' });
    refusedRequest('resolve', JSON.parse('{"__proto__": {"name": "evil"}}'), /^name must be a non-empty string$/);
  });
});

describe('control messages', () => {
  test('refuses an unknown message type or op with BAD_MESSAGE', () => {
    refusedMessage(() => parseAgentMessage(json({ t: 'bye' })), /^unknown control message type "bye"$/);
    refusedMessage(() => parseHubMessage(json({ t: 'hello', v: 1 })), /^unknown control message type "hello"$/);
    refusedMessage(() => parseAgentMessage(json({ t: 'req', id: 1, op: 'delete', args: {} })), /^req\.op must be one of /);
    refusedMessage(() => parseHubMessage(json({ t: 'event', event: 'service_gone', name: 'db' })), /^unknown event/);
  });

  test('refuses hello and hub message fields past their named limits', () => {
    refusedMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '1', platform: x(MAX_AGENT_VERSION + 1) } })), /^hello\.agent\.platform is longer than 64/);
    refusedMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '1' }, plain: 'yes' })), /^hello\.plain must be true or false$/);
    const welcome = { t: 'welcome', v: 1, agentId: 'a', workspaceId: 'w', connectionId: 'c', label: 'l' };
    refusedMessage(() => parseHubMessage(json({ ...welcome, tokenExpiresAt: x(MAX_TIME_TEXT + 1) })), /^welcome\.tokenExpiresAt is longer than/);
    refusedMessage(() => parseHubMessage(json({ ...welcome, tokenExpiresInMs: 'soon' })), /^welcome\.tokenExpiresInMs must be an integer$/);
    const token = { t: 'token', token: x(MAX_TOKEN), expiresAt: 'then', expiresInMs: 1 };
    assert.equal(parseHubMessage(json(token)).t, 'token');
    refusedMessage(() => parseHubMessage(json({ ...token, token: x(MAX_TOKEN + 1) })), new RegExp(`^token\\.token is longer than ${MAX_TOKEN}`));
  });

  test('refuses OPEN and GOAWAY payload fields past their named limits', () => {
    refusedMessage(() => parseOpenRequest(json({ service: 'db', plain: 1 })), /^OPEN\.plain must be true or false$/);
    const base = { service: 'api', from: { agentId: 'a', label: 'b' } };
    const share = { id: 's', name: x(MAX_SHARE_NAME) };
    assert.deepEqual(parseOpenNotice(json({ ...base, share })).share, share);
    refusedMessage(() => parseOpenNotice(json({ ...base, share: { ...share, name: x(MAX_SHARE_NAME + 1) } })), /^OPEN\.share\.name is longer than 63/);
    refusedMessage(() => parseOpenNotice(json({ ...base, share: { ...share, methods: Array(MAX_SHARE_RULES + 1).fill('GET') } })), /at most 64 strings/);
    refusedMessage(() => parseOpenNotice(json({ ...base, share: { ...share, paths: [x(MAX_SHARE_PATH + 1)] } })), /^OPEN\.share\.paths\[0\] is longer than 512/);
    refusedMessage(() => parseOpenNotice(json({ ...base, from: { ...base.from, ip: x(MAX_ADDRESS + 1) } })), /^OPEN\.from\.ip is longer than 64/);
    refusedMessage(() => parseOpenNotice(json({ ...base, from: 'hub' })), /^OPEN\.from must be an object$/);
    assert.equal(parseGoAway(json({ code: 'SHUTTING_DOWN', message: x(MAX_ERROR_MESSAGE) })).message.length, MAX_ERROR_MESSAGE);
    refusedMessage(() => parseGoAway(json({ code: 'SHUTTING_DOWN', message: x(MAX_ERROR_MESSAGE + 1) })), /^GOAWAY\.message is longer than 1024/);
  });
});

describe('control results', () => {
  const service = { id: 's1', name: 'db', target: 'localhost:5432', agentId: 'a1', agentLabel: 'laptop', online: true };

  test('reads each op\'s result, dropping fields it does not know', () => {
    const health = { ok: false, checkedAt: '2026-01-01T00:00:00.000Z', checks: [{ name: 'tcp', ok: false, detail: 'refused' }] };
    assert.deepEqual(parseControlResult('reach', { service: { ...service, health, extra: 1 }, tunnelId: 't1' }), { service: { ...service, health }, tunnelId: 't1' });
    assert.deepEqual(parseControlResult('list', { services: [service, { ...service, protocol: 'http', hubPort: 23000, e2e: 'optional' }] }).services.length, 2);
    assert.deepEqual(parseControlResult('unexpose', { anything: true }), {});
  });

  test('refuses a malformed result with BAD_MESSAGE, naming the field', () => {
    refusedMessage(() => parseControlResult('resolve', {}), /^resolve result\.service must be an object$/);
    refusedMessage(() => parseControlResult('expose', { service: { ...service, online: 'yes' } }), /^expose result\.service\.online must be true or false$/);
    refusedMessage(() => parseControlResult('reach', { service, tunnelId: x(MAX_ID + 1) }), /^reach result\.tunnelId is longer than 64/);
    refusedMessage(() => parseControlResult('list', { services: [{ ...service, agentId: x(MAX_ID + 1) }] }), /^list result\.services\[0\]\.agentId is longer than/);
    refusedMessage(() => parseControlResult('list', null), /^list result must be an object$/);
  });
});

describe('schema check', () => {
  const refuse = (message: string) => new Error(message);
  const schema = s.object({
    name: s.string({ max: 3, min: 1 }),
    tags: s.optional(s.array(s.enum(['a', 'b']), 0, 2), { nullIsAbsent: true }),
    on: s.flag(),
    n: s.default(s.integer(1, 9), 5),
  });

  test('fills defaults, leaves out absent optional fields and false flags', () => {
    assert.deepEqual(check(schema, { name: 'abc', tags: null, on: false }, 'm', refuse), { name: 'abc', n: 5 });
    assert.deepEqual(check(schema, { name: 'abc', tags: ['b'], on: true, n: 9 }, 'm', refuse), { name: 'abc', tags: ['b'], on: true, n: 9 });
  });

  test('names the nested field that does not fit', () => {
    assert.throws(() => check(schema, { name: 'abc', tags: ['a', 'c'] }, 'm', refuse), /^Error: m\.tags\[1\] must be one of a, b$/);
    assert.throws(() => check(schema, { name: 'abc', tags: ['a', 'a', 'a'] }, 'm', refuse), /^Error: m\.tags must be an array of at most 2 items$/);
    assert.throws(() => check(schema, { name: 'abcd' }, 'm', refuse), /^Error: m\.name is longer than 3 characters$/);
    assert.throws(() => check(schema, { name: 'a', n: 0 }, 'm', refuse), /^Error: m\.n must be a whole number from 1 to 9$/);
    assert.throws(() => check(schema, { name: 'a', on: 'yes' }, 'm', refuse), /^Error: m\.on must be true or false$/);
  });
});
