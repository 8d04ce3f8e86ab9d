/** Tests for the control message and OPEN payload parsers in src/control.ts. */

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseAgentMessage,
  parseErrorPayload,
  parseHubMessage,
  parseOpenNotice,
  parseOpenRequest,
  requireString,
  type ControlOp,
} from '../src/control.js';
import { ConnectError, ProtocolError, type ErrorCode } from '../src/errors.js';
import { FrameType, decodeFrame, encodeJsonFrame } from '../src/frame.js';
import { MAX_HELLO_HUBS, MAX_LABEL } from '../src/limits.js';

const ALL_OPS: ControlOp[] = ['expose', 'unexpose', 'resolve', 'reach', 'unreach', 'list', 'access', 'health', 'advertise', 'direct', 'direct_report', 'path'];

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Asserts a ProtocolError('BAD_MESSAGE') whose message matches `message` (a string must match exactly). */
function assertBadMessage(fn: () => unknown, message?: RegExp | string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.code, 'BAD_MESSAGE');
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}

/** Payloads that are not a JSON object at all; every parser refuses them. */
const NOT_OBJECTS: [string, Buffer][] = [
  ['an empty payload', Buffer.alloc(0)],
  ['text that is not JSON', Buffer.from('hello')],
  ['truncated JSON', Buffer.from('{"t":"hello"')],
  ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
  ['a JSON array', json([{ t: 'hello' }])],
  ['JSON null', json(null)],
  ['a JSON number', json(1)],
  ['a JSON string', json('hello')],
  ['JSON true', json(true)],
];

describe('parseAgentMessage', () => {
  test('parses a hello with every agent field', () => {
    const agent = { version: '0.1.0', label: 'laptop', hostname: 'laptop.local', platform: 'linux-x64' };
    assert.deepEqual(parseAgentMessage(json({ t: 'hello', v: 1, agent })), { t: 'hello', v: 1, agent });
  });

  test('parses a hello with only the agent version and adds no absent fields', () => {
    const msg = parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '0.1.0' } }));
    assert.deepEqual(msg, { t: 'hello', v: 1, agent: { version: '0.1.0' } });
    assert.equal(msg.t === 'hello' && Object.hasOwn(msg.agent, 'label'), false);
  });

  test('drops unknown fields of a hello agent', () => {
    const msg = parseAgentMessage(json({ t: 'hello', v: 2, agent: { version: '1', secret: 'x' }, extra: true }));
    assert.deepEqual(msg, { t: 'hello', v: 2, agent: { version: '1' } });
  });

  test('parses a hello that arrived in a CONTROL frame', () => {
    const frame = decodeFrame(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: 1, agent: { version: '0.1.0', label: 'ünïcødé ✈' } }));
    assert.deepEqual(parseAgentMessage(frame.payload), { t: 'hello', v: 1, agent: { version: '0.1.0', label: 'ünïcødé ✈' } });
  });

  test('refuses a hello whose version is not an integer', () => {
    for (const v of [undefined, null, 1.5, '1', [1], {}]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'hello', v, agent: { version: '1' } })), /hello\.v must be an integer/);
    }
  });

  test('refuses a hello without an agent object', () => {
    for (const agent of [undefined, null, 'laptop', 3]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent })), /hello\.agent must be an object/);
    }
    assertBadMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent: ['0.1.0'] })), /hello\.agent\.version must be a string/);
  });

  test('parses the number of hubs an agent knows, and refuses one outside 1..MAX_HELLO_HUBS', () => {
    assert.deepEqual(parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '1' }, hubs: 3 })), { t: 'hello', v: 1, agent: { version: '1' }, hubs: 3 });
    assert.equal((parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '1' }, hubs: MAX_HELLO_HUBS })) as { hubs?: number }).hubs, MAX_HELLO_HUBS);
    for (const hubs of [0, -1, MAX_HELLO_HUBS + 1, 1.5, '2', null, true, [2]]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '1' }, hubs })), /hello\.hubs must be a whole number from 1 to 64/);
    }
  });

  test('refuses a hello whose agent version is missing or not a string', () => {
    for (const version of [undefined, null, 1, {}, ['1']]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent: { version } })), /hello\.agent\.version must be a string/);
    }
  });

  test('refuses optional agent fields that are present but not strings', () => {
    for (const key of ['label', 'hostname', 'platform']) {
      for (const value of [null, 1, {}, ['x'], true]) {
        assertBadMessage(
          () => parseAgentMessage(json({ t: 'hello', v: 1, agent: { version: '1', [key]: value } })),
          new RegExp(`hello\\.agent\\.${key} must be a string`),
        );
      }
    }
  });

  test('accepts agent strings at their limits and refuses one character more', () => {
    const limits: [string, number][] = [
      ['version', 64],
      ['label', MAX_LABEL],
      ['hostname', MAX_LABEL],
      ['platform', 64],
    ];
    for (const [key, max] of limits) {
      const agent = (value: string) => ({ version: '1', [key]: value });
      const ok = parseAgentMessage(json({ t: 'hello', v: 1, agent: agent('x'.repeat(max)) }));
      assert.equal(ok.t === 'hello' && (ok.agent as unknown as Record<string, string>)[key]!.length, max);
      assertBadMessage(
        () => parseAgentMessage(json({ t: 'hello', v: 1, agent: agent('x'.repeat(max + 1)) })),
        new RegExp(`hello\\.agent\\.${key} is longer than ${max} characters`),
      );
      assertBadMessage(() => parseAgentMessage(json({ t: 'hello', v: 1, agent: agent('é'.repeat(10_000)) })), /is longer than/);
    }
  });

  test('parses a request for each op with its id and args', () => {
    const args: Record<ControlOp, Record<string, unknown>> = {
      expose: { name: 'prod-db', target: 'localhost:5432', replace: true },
      unexpose: { name: 'prod-db' },
      resolve: { name: 'prod-db' },
      reach: { name: 'prod-db', localPort: 15432 },
      unreach: { tunnelId: 't1' },
      list: {},
      access: { shareId: 's1', service: 'api', method: 'GET', path: '/v1', status: 200 },
      health: { service: 'api', ok: true, checks: [{ name: 'tcp', ok: true, detail: 'accepts connections', ms: 1.5 }] },
      advertise: { port: 41641, addrs: ['10.0.0.2', '127.0.0.1'] },
      direct: { name: 'prod-db' },
      direct_report: { streams: [{ from: 'a1', service: 'prod-db', openedAt: 1, ms: 2, bytesIn: 3, bytesOut: 4 }] },
      path: { name: 'prod-db', mode: 'relay', reason: 'no candidate answered' },
    };
    let id = 0;
    for (const op of ALL_OPS) {
      id++;
      assert.deepEqual(parseAgentMessage(json({ t: 'req', id, op, args: args[op] })), { t: 'req', id, op, args: args[op] });
    }
  });

  test('treats a request without args as empty args', () => {
    assert.deepEqual(parseAgentMessage(json({ t: 'req', id: 7, op: 'list' })), { t: 'req', id: 7, op: 'list', args: {} });
  });

  test('accepts request ids from 0 to Number.MAX_SAFE_INTEGER', () => {
    for (const id of [0, 1, Number.MAX_SAFE_INTEGER]) {
      const msg = parseAgentMessage(json({ t: 'req', id, op: 'list', args: {} }));
      assert.equal(msg.t === 'req' && msg.id, id);
    }
  });

  test('refuses a request id that is negative, fractional, unsafe or not a number', () => {
    for (const id of [undefined, null, -1, 1.5, '1', 2 ** 53, 1e300, [], {}, true]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'req', id, op: 'list', args: {} })), /req\.id must be a non-negative integer/);
    }
  });

  test('refuses a request with an unknown or missing op', () => {
    for (const op of [undefined, null, '', 'LIST', 'delete', 'toString', '__proto__', 'constructor', 1, ['list']]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'req', id: 1, op, args: {} })), /req\.op must be one of expose, unexpose, resolve, reach, unreach, list/);
    }
  });

  test('refuses request args that are not an object', () => {
    for (const args of [[], ['prod-db'], 'prod-db', 1, true]) {
      assertBadMessage(() => parseAgentMessage(json({ t: 'req', id: 1, op: 'resolve', args })), /req\.args must be an object/);
    }
  });

  test('refuses an unknown message type, naming it', () => {
    for (const t of ['welcome', 'reply', 'event', 'HELLO', 'Req', '', 1]) {
      assertBadMessage(() => parseAgentMessage(json({ t, v: 1, agent: { version: '1' } })), `unknown control message type ${JSON.stringify(t)}`);
    }
    assertBadMessage(() => parseAgentMessage(json({ v: 1 })), 'unknown control message type undefined');
  });

  test('refuses payloads that are not a JSON object', () => {
    for (const [what, payload] of NOT_OBJECTS) {
      assert.throws(() => parseAgentMessage(payload), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE', what);
    }
    assertBadMessage(() => parseAgentMessage(Buffer.from('nope')), /^control message is not valid JSON$/);
    assertBadMessage(() => parseAgentMessage(json([])), /^control message must be a JSON object$/);
  });
});

describe('parseHubMessage', () => {
  const welcome = { t: 'welcome', v: 1, agentId: 'ag_1', workspaceId: 'ws_1', connectionId: 'c_1', label: 'laptop' };

  test('parses a welcome', () => {
    assert.deepEqual(parseHubMessage(json(welcome)), welcome);
  });

  test('refuses a welcome without a numeric protocol version', () => {
    for (const v of [undefined, '1', 0, 1.5, null]) {
      assertBadMessage(() => parseHubMessage(json({ ...welcome, v })), /welcome\.v must be a protocol version number/);
    }
  });

  test('refuses a welcome with a missing or over-long field', () => {
    for (const key of ['agentId', 'workspaceId', 'connectionId', 'label']) {
      const { [key as keyof typeof welcome]: _, ...rest } = welcome;
      assertBadMessage(() => parseHubMessage(json(rest)), new RegExp(`welcome\\.${key} must be a string`));
      const max = key === 'label' ? MAX_LABEL : 64;
      assert.doesNotThrow(() => parseHubMessage(json({ ...welcome, [key]: 'x'.repeat(max) })));
      assertBadMessage(() => parseHubMessage(json({ ...welcome, [key]: 'x'.repeat(max + 1) })), new RegExp(`welcome\\.${key} is longer than ${max}`));
    }
  });

  test('parses a successful reply with its result', () => {
    for (const result of [{ services: [] }, { service: { id: 's1', name: 'db' } }, 0, 'text', null, [1, 2]]) {
      assert.deepEqual(parseHubMessage(json({ t: 'reply', id: 4, ok: true, result })), { t: 'reply', id: 4, ok: true, result });
    }
  });

  test('parses a failed reply with its error code and message', () => {
    const error = { code: 'SERVICE_NAME_TAKEN', message: 'another agent already exposes "prod-db"' };
    assert.deepEqual(parseHubMessage(json({ t: 'reply', id: 5, ok: false, error })), { t: 'reply', id: 5, ok: false, error });
  });

  test('turns an unknown error code in a reply into INTERNAL and keeps the message', () => {
    for (const code of ['NOPE', 'internal', 'toString', '__proto__', 42, null, undefined]) {
      const msg = parseHubMessage(json({ t: 'reply', id: 6, ok: false, error: { code, message: 'something broke' } }));
      assert.deepEqual(msg, { t: 'reply', id: 6, ok: false, error: { code: 'INTERNAL', message: 'something broke' } });
    }
  });

  test('treats a reply without ok: true as failed, with a readable error even when none is given', () => {
    for (const extra of [{}, { ok: 'true' }, { ok: 1 }, { ok: false, error: null }, { ok: false, error: 'boom' }, { ok: false, error: { code: 'NOT_FOUND', message: 5 } }]) {
      const msg = parseHubMessage(json({ t: 'reply', id: 8, ...extra }));
      assert.equal(msg.t === 'reply' && msg.ok, false);
      if (msg.t === 'reply' && !msg.ok) {
        assert.equal(msg.error.message, 'unknown error');
        assert.ok(msg.error.code === 'INTERNAL' || msg.error.code === 'NOT_FOUND');
      }
    }
  });

  test('cuts a reply error message to 1024 characters', () => {
    const msg = parseHubMessage(json({ t: 'reply', id: 1, ok: false, error: { code: 'INTERNAL', message: 'x'.repeat(5000) } }));
    assert.equal(msg.t === 'reply' && !msg.ok && msg.error.message.length, 1024);
  });

  test('refuses a reply without an integer id', () => {
    for (const id of [undefined, null, '1', 1.5, 2 ** 53]) {
      assertBadMessage(() => parseHubMessage(json({ t: 'reply', id, ok: true, result: {} })), /reply\.id must be an integer/);
    }
  });

  test('parses service_online and service_offline events', () => {
    for (const event of ['service_online', 'service_offline'] as const) {
      assert.deepEqual(parseHubMessage(json({ t: 'event', event, name: 'prod-db' })), { t: 'event', event, name: 'prod-db' });
    }
  });

  test('refuses an unknown event or an event without a name', () => {
    for (const event of ['service_deleted', '', undefined, 1]) {
      assertBadMessage(() => parseHubMessage(json({ t: 'event', event, name: 'prod-db' })), /unknown event/);
    }
    assertBadMessage(() => parseHubMessage(json({ t: 'event', event: 'service_online' })), /event\.name must be a string/);
    assertBadMessage(() => parseHubMessage(json({ t: 'event', event: 'service_online', name: 'x'.repeat(256) })), /event\.name is longer than 255/);
  });

  test('refuses an unknown message type, including agent messages', () => {
    for (const t of ['hello', 'req', 'WELCOME', 'toString', undefined]) {
      assertBadMessage(() => parseHubMessage(json({ ...welcome, t })), /unknown control message type/);
    }
  });

  test('refuses payloads that are not a JSON object', () => {
    for (const [what, payload] of NOT_OBJECTS) {
      assert.throws(() => parseHubMessage(payload), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE', what);
    }
  });
});

describe('parseOpenRequest', () => {
  test('reads the service name an agent wants to reach', () => {
    assert.deepEqual(parseOpenRequest(json({ service: 'prod-db' })), { service: 'prod-db' });
    assert.deepEqual(parseOpenRequest(json({ service: 'prod-db', extra: 1 })), { service: 'prod-db' });
  });

  test('refuses a missing, non-string or over-long service', () => {
    for (const service of [undefined, null, 1, ['prod-db'], {}]) {
      assertBadMessage(() => parseOpenRequest(json({ service })), /OPEN\.service must be a string/);
    }
    assert.doesNotThrow(() => parseOpenRequest(json({ service: 'x'.repeat(255) })));
    assertBadMessage(() => parseOpenRequest(json({ service: 'x'.repeat(256) })), /OPEN\.service is longer than 255/);
  });

  test('refuses payloads that are not a JSON object', () => {
    for (const [what, payload] of NOT_OBJECTS) {
      assert.throws(() => parseOpenRequest(payload), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE', what);
    }
    assertBadMessage(() => parseOpenRequest(Buffer.from('x')), /^OPEN payload is not valid JSON$/);
  });
});

describe('parseOpenNotice', () => {
  test('reads the service and who asks for it', () => {
    const notice = { service: 'prod-db', from: { agentId: 'ag_2', label: 'ci runner' } };
    assert.deepEqual(parseOpenNotice(json(notice)), notice);
  });

  test('fills an absent or partial from with empty strings', () => {
    for (const from of [undefined, null, {}]) {
      assert.deepEqual(parseOpenNotice(json({ service: 'db', from })), { service: 'db', from: { agentId: '', label: '' } });
    }
    assert.deepEqual(parseOpenNotice(json({ service: 'db', from: { agentId: 'a' } })), { service: 'db', from: { agentId: 'a', label: '' } });
  });

  test('reads the share policy and the opener address of a shared stream', () => {
    const notice = {
      service: 'api',
      from: { agentId: 'ag_9', label: 'contractor', ip: '203.0.113.7' },
      share: { id: 's1', name: 'acme', methods: ['GET', 'POST'], paths: ['/api/v1'], ratePerMin: 60 },
    };
    assert.deepEqual(parseOpenNotice(json(notice)), notice);
    assert.deepEqual(parseOpenNotice(json({ service: 'db', from: {}, share: { id: 's2', name: 'b' } })).share, { id: 's2', name: 'b' });
  });

  test('refuses a malformed share policy', () => {
    const base = { service: 'api', from: { agentId: 'a', label: 'b' } };
    assertBadMessage(() => parseOpenNotice(json({ ...base, share: 'all' })), /OPEN\.share must be an object/);
    assertBadMessage(() => parseOpenNotice(json({ ...base, share: { name: 'x' } })), /OPEN\.share\.id must be a string/);
    assertBadMessage(() => parseOpenNotice(json({ ...base, share: { id: 's', name: 'x', methods: 'GET' } })), /methods must be an array/);
    assertBadMessage(() => parseOpenNotice(json({ ...base, share: { id: 's', name: 'x', paths: Array(65).fill('/') } })), /at most 64/);
    assertBadMessage(() => parseOpenNotice(json({ ...base, share: { id: 's', name: 'x', ratePerMin: 0 } })), /ratePerMin must be a positive integer/);
  });

  test('refuses a missing or over-long service', () => {
    assertBadMessage(() => parseOpenNotice(json({ from: { agentId: 'a', label: 'b' } })), /OPEN\.service must be a string/);
    assertBadMessage(() => parseOpenNotice(json({ service: 'x'.repeat(256) })), /OPEN\.service is longer than 255/);
  });

  test('refuses payloads that are not a JSON object', () => {
    for (const [what, payload] of NOT_OBJECTS) {
      assert.throws(() => parseOpenNotice(payload), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE', what);
    }
  });
});

describe('parseErrorPayload', () => {
  test('reads the code and message of an OPEN_ERROR, RESET or GOAWAY payload', () => {
    assert.deepEqual(parseErrorPayload(json({ code: 'TARGET_UNREACHABLE', message: 'connect ECONNREFUSED 127.0.0.1:5432' })), {
      code: 'TARGET_UNREACHABLE',
      message: 'connect ECONNREFUSED 127.0.0.1:5432',
    });
    assert.deepEqual(parseErrorPayload(json({ code: 'SHUTTING_DOWN', message: 'bye', reconnectMs: 500 })), { code: 'SHUTTING_DOWN', message: 'bye' });
  });

  test('turns an unknown code into INTERNAL', () => {
    assert.deepEqual(parseErrorPayload(json({ code: 'WHO_KNOWS', message: 'm' })), { code: 'INTERNAL', message: 'm' });
    assert.deepEqual(parseErrorPayload(json({ message: 'm' })), { code: 'INTERNAL', message: 'm' });
  });

  test('fills in a message that is missing or not a string and cuts a long one to 1024 characters', () => {
    assert.deepEqual(parseErrorPayload(json({ code: 'PEER_GONE' })), { code: 'PEER_GONE', message: 'unknown error' });
    assert.deepEqual(parseErrorPayload(json({ code: 'PEER_GONE', message: { text: 'x' } })), { code: 'PEER_GONE', message: 'unknown error' });
    assert.equal(parseErrorPayload(json({ code: 'PEER_GONE', message: 'é'.repeat(2000) })).message.length, 1024);
  });

  test('reads JSON that is not an object as an INTERNAL error', () => {
    for (const value of [null, 1, 'text', [], true]) {
      assert.deepEqual(parseErrorPayload(json(value)), { code: 'INTERNAL', message: 'unknown error' });
    }
  });

  test('turns a payload that is not JSON into PROTOCOL_ERROR instead of throwing', () => {
    for (const payload of [Buffer.alloc(0), Buffer.from('garbage'), Buffer.from([0xff, 0xfe])]) {
      assert.deepEqual(parseErrorPayload(payload), { code: 'PROTOCOL_ERROR', message: 'unreadable error payload' });
    }
  });
});

describe('requireString', () => {
  function assertBadRequest(fn: () => unknown, message: RegExp): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code satisfies ErrorCode, 'BAD_REQUEST');
      assert.match(err.message, message);
      return true;
    });
  }

  test('returns a non-empty string argument', () => {
    assert.equal(requireString({ name: 'prod-db' }, 'name'), 'prod-db');
    assert.equal(requireString({ name: 'x'.repeat(255) }, 'name').length, 255);
    assert.equal(requireString({ name: 'abc' }, 'name', 3), 'abc');
  });

  test('refuses a missing, empty or non-string argument with BAD_REQUEST naming it', () => {
    for (const value of [undefined, null, '', 1, ['x'], {}]) {
      assertBadRequest(() => requireString({ name: value }, 'name'), /^name must be a non-empty string$/);
    }
  });

  test('refuses an argument longer than its limit', () => {
    assertBadRequest(() => requireString({ name: 'x'.repeat(256) }, 'name'), /name is longer than 255 characters/);
    assertBadRequest(() => requireString({ target: 'abcd' }, 'target', 3), /target is longer than 3 characters/);
  });
});
