/**
 * Fuzz properties of the JSON parsers (control.ts, errors.ts, the OPEN / OPEN_OK / GOAWAY payloads, share and link
 * rules): each returns a value of the documented shape, checked here field by field, or throws a ConnectError with
 * its code; a valid message survives encode → parse unchanged. Part of fuzzProperties() (fuzz-properties.ts).
 */

import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ConnectError,
  ERROR_CODES,
  FrameType,
  E2E_SESSION_ID_BYTES,
  MAX_GOAWAY_RECONNECT_MS,
  MAX_HANDSHAKE_BYTES,
  MAX_HEALTH_CHECKS,
  MAX_HEALTH_TEXT,
  MAX_LABEL,
  MAX_REPORTED_PATH,
  ProtocolError,
  checkHttpRequest,
  closeReason,
  errorFromBody,
  isErrorCode,
  parseAgentMessage,
  parseCloseReason,
  parseControlArgs,
  parseControlResult,
  parseDuration,
  parseErrorPayload,
  parseGoAway,
  parseHealthReport,
  parseHubMessage,
  parseAnswer,
  parseMethods,
  parseOffer,
  parseOpenAccept,
  parseOpenNotice,
  parseOpenRequest,
  parsePaths,
  parseReachName,
  parseTarget,
  readJsonPayload,
  requireString,
  validateServiceName,
  type ErrorCode,
} from '../src/index.js';
import {
  HOSTILE_KEYS,
  OPS,
  answer,
  base64Of,
  helloMessage as hello,
  hostileValue,
  jsonPayload,
  nearValid,
  offer,
  openRequestMessage as openRequest,
  refusedOr,
  requestMessage as request,
  safeInt,
  text,
  type FuzzProperty,
} from './fuzz-arbitraries.js';

const CODES = fc.constantFrom(...(Object.keys(ERROR_CODES) as ErrorCode[]));

const hubMessage = fc.oneof(
  fc.record(
    {
      t: fc.constant('welcome'),
      v: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      agentId: text(64),
      workspaceId: text(64),
      connectionId: text(64),
      label: text(MAX_LABEL),
      tokenExpiresAt: text(64),
      tokenExpiresInMs: safeInt,
    },
    { requiredKeys: ['t', 'v', 'agentId', 'workspaceId', 'connectionId', 'label'] },
  ),
  fc.record({ t: fc.constant('reply'), id: safeInt, ok: fc.constant(true), result: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ t: fc.constant('reply'), id: safeInt, ok: fc.constant(false), error: fc.record({ code: CODES, message: text(1024) }) }),
  fc.record({ t: fc.constant('token'), token: text(256, 1), expiresAt: text(64), expiresInMs: safeInt }),
  fc.record({ t: fc.constant('event'), event: fc.constantFrom('service_online', 'service_offline'), name: text(255) }),
  fc.record({ t: fc.constant('end_sessions'), agentId: text(64), shareId: text(64), reason: text(1024) }, { requiredKeys: ['t', 'reason'] }),
);
const sharePolicy = fc.record(
  { id: text(64), name: text(63), methods: fc.array(text(16), { maxLength: 64 }), paths: fc.array(text(512), { maxLength: 8 }), ratePerMin: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) },
  { requiredKeys: ['id', 'name'] },
);
const openNotice = fc.record(
  {
    service: text(255),
    from: fc.record({ agentId: text(64), label: text(MAX_LABEL), ip: text(64), identityKey: base64Of(32), staticKey: base64Of(32) }, { requiredKeys: ['agentId', 'label'] }),
    share: sharePolicy,
    e2e: offer,
    plain: fc.constant(true),
  },
  { requiredKeys: ['service', 'from'] },
);
const openAccept = fc.record({ e2e: answer });
/** A resolve or reach result whose service lists its exposing agent's keys (ServiceInfo.keys). */
const serviceWithKeys = fc.record(
  {
    id: text(64),
    name: text(255),
    target: text(64),
    agentId: text(64),
    agentLabel: text(MAX_LABEL),
    online: fc.boolean(),
    keys: fc.record({ identityKey: base64Of(32), staticKey: base64Of(32), staticSig: base64Of(64) }),
  },
  { requiredKeys: ['id', 'name', 'target', 'agentId', 'agentLabel', 'online'] },
);
const keyedResult = fc.oneof(
  fc.record({ op: fc.constant('resolve' as const), result: fc.record({ service: serviceWithKeys }) }),
  fc.record({ op: fc.constant('reach' as const), result: fc.record({ service: serviceWithKeys, tunnelId: text(64, 1) }) }),
);
const goAway = fc.record({ code: CODES, message: text(1024), reconnectMs: fc.integer({ min: 0, max: MAX_GOAWAY_RECONNECT_MS }) });
const healthArgs = fc.record({
  service: text(255, 1),
  ok: fc.boolean(),
  checks: fc.array(
    fc.record(
      { name: fc.stringMatching(/^[a-z][a-z0-9_-]{0,31}$/), ok: fc.boolean(), detail: text(MAX_HEALTH_TEXT), hint: text(MAX_HEALTH_TEXT), ms: fc.double({ min: 0, max: 3_600_000, noNaN: true }) },
      { requiredKeys: ['name', 'ok', 'detail'] },
    ),
    { minLength: 1, maxLength: MAX_HEALTH_CHECKS },
  ),
});

const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');
/** What the receiver sees of a message: its JSON round trip. */
const normal = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

// Shapes of what the parsers return, checked field by field.
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
function isStr(v: unknown, max: number, min = 0): boolean {
  return typeof v === 'string' && v.length >= min && v.length <= max;
}
function onlyKeys(obj: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) assert.ok(keys.includes(k), `unexpected key ${JSON.stringify(k)}`);
}
function isKey(v: unknown, bytes = 32): boolean {
  return typeof v === 'string' && Buffer.from(v, 'base64').length === bytes && Buffer.from(v, 'base64').toString('base64') === v;
}
/** Base64 of 1..MAX_HANDSHAKE_BYTES bytes, canonical. */
function isHandshake(v: unknown): boolean {
  if (typeof v !== 'string' || v.length === 0) return false;
  const raw = Buffer.from(v, 'base64');
  return raw.length <= MAX_HANDSHAKE_BYTES && raw.toString('base64') === v;
}
function checkOfferShape(e2e: unknown): void {
  if (e2e === undefined) return;
  assert.ok(isObject(e2e) && e2e.v === 2, 'e2e offer version');
  if ('hs' in e2e) {
    onlyKeys(e2e, ['v', 'hs']);
    assert.ok(isHandshake(e2e.hs), 'e2e offer hs');
  } else {
    onlyKeys(e2e, ['v', 'sid', 'n']);
    assert.ok(isKey(e2e.sid, E2E_SESSION_ID_BYTES), 'e2e offer sid');
    assert.ok(Number.isSafeInteger(e2e.n) && (e2e.n as number) >= 1, 'e2e offer n');
  }
}
function checkAnswerShape(e2e: unknown): void {
  if (e2e === undefined) return;
  assert.ok(isObject(e2e) && e2e.v === 2, 'e2e answer version');
  onlyKeys(e2e, ['v', 'hs']);
  if ('hs' in e2e) assert.ok(isHandshake(e2e.hs), 'e2e answer hs');
}

function checkAgentMessage(msg: ReturnType<typeof parseAgentMessage>): void {
  if (msg.t === 'hello') {
    onlyKeys(msg as unknown as Record<string, unknown>, ['t', 'v', 'agent', 'identityKey', 'staticKey', 'staticSig', 'plain', 'hubs']);
    assert.ok(Number.isInteger(msg.v), 'hello.v');
    onlyKeys(msg.agent as unknown as Record<string, unknown>, ['version', 'label', 'hostname', 'platform']);
    assert.ok(isStr(msg.agent.version, 64), 'hello.agent.version');
    for (const [k, max] of [['label', MAX_LABEL], ['hostname', MAX_LABEL], ['platform', 64]] as const) {
      if (k in msg.agent) assert.ok(isStr(msg.agent[k], max), `hello.agent.${k}`);
    }
    if ('identityKey' in msg) assert.ok(isKey(msg.identityKey), 'hello.identityKey');
    if ('staticKey' in msg) assert.ok(isKey(msg.staticKey), 'hello.staticKey');
    if ('staticSig' in msg) assert.ok(isKey(msg.staticSig, 64), 'hello.staticSig');
    return;
  }
  assert.equal(msg.t, 'req');
  assert.ok(Number.isSafeInteger(msg.id) && msg.id >= 0, 'req.id');
  assert.ok(OPS.includes(msg.op), 'req.op');
  assert.ok(isObject(msg.args), 'req.args');
}

function checkHubMessage(msg: ReturnType<typeof parseHubMessage>): void {
  switch (msg.t) {
    case 'welcome':
      assert.ok(Number.isSafeInteger(msg.v) && msg.v >= 1);
      assert.ok(isStr(msg.agentId, 64) && isStr(msg.workspaceId, 64) && isStr(msg.connectionId, 64) && isStr(msg.label, MAX_LABEL));
      if ('tokenExpiresAt' in msg) assert.ok(isStr(msg.tokenExpiresAt, 64));
      if ('tokenExpiresInMs' in msg) assert.ok(Number.isSafeInteger(msg.tokenExpiresInMs));
      return;
    case 'reply':
      assert.ok(Number.isSafeInteger(msg.id));
      if (!msg.ok) assert.ok(isErrorCode(msg.error.code) && isStr(msg.error.message, 1024));
      else assert.equal(msg.ok, true);
      return;
    case 'token':
      assert.ok(isStr(msg.token, 256, 1) && isStr(msg.expiresAt, 64) && Number.isSafeInteger(msg.expiresInMs));
      return;
    case 'event':
      assert.ok(['service_online', 'service_offline'].includes(msg.event) && isStr(msg.name, 255));
      return;
    case 'end_sessions':
      onlyKeys(msg as unknown as Record<string, unknown>, ['t', 'agentId', 'shareId', 'reason']);
      assert.ok(isStr(msg.reason, 1024), 'end_sessions.reason');
      if ('agentId' in msg) assert.ok(isStr(msg.agentId, 64), 'end_sessions.agentId');
      if ('shareId' in msg) assert.ok(isStr(msg.shareId, 64), 'end_sessions.shareId');
      return;
    default:
      assert.fail(`unknown message type ${JSON.stringify((msg as { t: unknown }).t)}`);
  }
}

function checkOpenNotice(n: ReturnType<typeof parseOpenNotice>): void {
  assert.ok(isStr(n.service, 255), 'OPEN.service');
  assert.ok(typeof n.from.agentId === 'string' && typeof n.from.label === 'string', 'OPEN.from');
  if ('ip' in n.from) assert.ok(isStr(n.from.ip, 64), 'OPEN.from.ip');
  if ('identityKey' in n.from) assert.ok(isKey(n.from.identityKey), 'OPEN.from.identityKey');
  if ('staticKey' in n.from) assert.ok(isKey(n.from.staticKey), 'OPEN.from.staticKey');
  if (n.share) {
    const s = n.share;
    assert.ok(isStr(s.id, 64) && isStr(s.name, 63), 'OPEN.share');
    if (s.methods) assert.ok(s.methods.length <= 64 && s.methods.every((m) => isStr(m, 16)), 'OPEN.share.methods');
    if (s.paths) assert.ok(s.paths.length <= 64 && s.paths.every((p) => isStr(p, 512)), 'OPEN.share.paths');
    if ('ratePerMin' in s) assert.ok(Number.isSafeInteger(s.ratePerMin) && s.ratePerMin! >= 1, 'OPEN.share.ratePerMin');
  }
  checkOfferShape(n.e2e);
  if ('plain' in n) assert.equal(n.plain, true);
}

/** Parsing `payload` gives a value that passes `check`, or a ProtocolError('BAD_MESSAGE'). */
function parses<T>(parse: (payload: Buffer) => T, check: (value: T) => void) {
  return (payload: Buffer) => {
    const value = refusedOr(() => parse(payload), ['BAD_MESSAGE'], ProtocolError);
    if (value !== undefined) check(value);
  };
}

export const controlProperties = (): FuzzProperty[] => [
  {
    name: 'readJsonPayload gives a JSON object or BAD_MESSAGE',
    property: fc.property(jsonPayload(hostileValue), fc.constantFrom(FrameType.CONTROL, FrameType.OPEN, FrameType.RESET), (payload, type) => {
      const value = refusedOr(() => readJsonPayload({ type, flags: 0, streamId: 0, payload }), ['BAD_MESSAGE'], ProtocolError);
      if (value !== undefined) assert.ok(isObject(value));
    }),
  },
  {
    name: 'parseAgentMessage gives a well-formed hello or request, or BAD_MESSAGE',
    property: fc.property(jsonPayload(fc.oneof(hello, request)), parses(parseAgentMessage, checkAgentMessage)),
  },
  {
    name: 'parseAgentMessage returns a valid hello or request unchanged',
    property: fc.property(fc.oneof(hello, request), (msg) => assert.deepEqual(parseAgentMessage(json(msg)), normal(msg))),
  },
  {
    name: 'parseHubMessage gives a well-formed welcome, reply, token, event or end_sessions, or BAD_MESSAGE',
    property: fc.property(jsonPayload(hubMessage), parses(parseHubMessage, checkHubMessage)),
  },
  {
    name: 'parseHubMessage returns a valid hub message unchanged',
    property: fc.property(hubMessage, (msg) => assert.deepEqual(parseHubMessage(json(msg)), normal(msg))),
  },
  {
    name: 'parseOpenRequest, parseOpenNotice and parseOpenAccept give well-formed payloads or BAD_MESSAGE',
    property: fc.property(jsonPayload(fc.oneof(openRequest, openNotice, openAccept)), (payload) => {
      parses(parseOpenRequest, (r) => {
        assert.ok(isStr(r.service, 255));
        checkOfferShape(r.e2e);
      })(payload);
      parses(parseOpenNotice, checkOpenNotice)(payload);
      parses(parseOpenAccept, (a) => {
        onlyKeys(a as Record<string, unknown>, ['e2e']);
        checkAnswerShape(a.e2e);
      })(payload);
    }),
  },
  {
    name: 'parseOffer and parseAnswer give a v2 offer or answer, or BAD_MESSAGE',
    property: fc.property(fc.oneof(nearValid(offer), nearValid(answer), hostileValue), (value) => {
      const parsedOffer = refusedOr(() => parseOffer(value), ['BAD_MESSAGE'], ProtocolError);
      if (parsedOffer !== undefined) checkOfferShape(parsedOffer);
      const parsedAnswer = refusedOr(() => parseAnswer(value), ['BAD_MESSAGE'], ProtocolError);
      if (parsedAnswer !== undefined) checkAnswerShape(parsedAnswer);
    }),
  },
  {
    name: 'valid OPEN and OPEN_OK payloads parse back unchanged',
    property: fc.property(openRequest, openNotice, openAccept, (request, notice, accept) => {
      assert.deepEqual(parseOpenRequest(json(request)), normal(request));
      assert.deepEqual(parseOpenNotice(json(notice)), normal(notice));
      assert.deepEqual(parseOpenAccept(json(accept)), normal(accept));
    }),
  },
  {
    name: 'parseGoAway gives a code, a message and a bounded wait, or BAD_MESSAGE; a valid one parses unchanged',
    property: fc.property(jsonPayload(goAway), goAway, (payload, valid) => {
      parses(parseGoAway, (g) => {
        assert.ok(isErrorCode(g.code) && isStr(g.message, 1024));
        assert.ok(Number.isSafeInteger(g.reconnectMs) && g.reconnectMs >= 0 && g.reconnectMs <= MAX_GOAWAY_RECONNECT_MS);
      })(payload);
      assert.deepEqual(parseGoAway(json(valid)), normal(valid));
    }),
  },
  {
    name: 'parseErrorPayload and errorFromBody never throw and always give a known code',
    property: fc.property(jsonPayload(fc.record({ code: CODES, message: text(1100) })), hostileValue, (payload, body) => {
      const parsed = parseErrorPayload(payload);
      assert.ok(isErrorCode(parsed.code) && isStr(parsed.message, 1024));
      const err = errorFromBody(body);
      assert.ok(err instanceof ConnectError && isErrorCode(err.code) && typeof err.message === 'string');
    }),
  },
  {
    name: 'closeReason fits 123 bytes and parseCloseReason reads its code back; any reason parses or is undefined',
    property: fc.property(CODES, fc.string({ unit: 'binary', maxLength: 160 }), fc.string({ unit: 'binary', maxLength: 130 }), (code, message, anyReason) => {
      const reason = closeReason(code, message);
      assert.ok(Buffer.byteLength(reason) <= 123, `${Buffer.byteLength(reason)} bytes`);
      const back = parseCloseReason(reason);
      assert.equal(back?.code, code);
      if (Buffer.byteLength(`${code}: ${message}`) <= 123) assert.equal(back.message, message);
      const other = parseCloseReason(anyReason);
      if (other) assert.ok(isErrorCode(other.code) && typeof other.message === 'string');
    }),
  },
  {
    name: 'parseControlArgs gives every op arguments within their named limits, or BAD_REQUEST; what it gives parses unchanged',
    property: fc.property(fc.constantFrom(...OPS), jsonPayload(hostileValue), (op, payload) => {
      let args: unknown;
      try {
        args = JSON.parse(payload.toString('utf8'));
      } catch {
        return; // not JSON: the control parser refuses it before any op sees it
      }
      const parsed = refusedOr(() => parseControlArgs(op, args), ['BAD_REQUEST']);
      if (parsed === undefined) return;
      assert.ok(isObject(parsed));
      for (const value of Object.values(parsed)) if (typeof value === 'string') assert.ok(value.length >= 1 && value.length <= MAX_REPORTED_PATH);
      assert.deepEqual(parseControlArgs(op, parsed), parsed);
    }),
  },
  {
    name: 'resolve and reach results with the agent\'s keys parse unchanged, and near-valid ones give well-formed keys or BAD_MESSAGE',
    property: fc.property(keyedResult, nearValid(keyedResult), (valid, broken) => {
      assert.deepEqual(parseControlResult(valid.op, normal(valid.result)), normal(valid.result));
      if (!isObject(broken) || (broken.op !== 'resolve' && broken.op !== 'reach')) return;
      const parsed = refusedOr(() => parseControlResult(broken.op as 'resolve' | 'reach', broken.result), ['BAD_MESSAGE'], ProtocolError);
      const keys = (parsed as { service?: { keys?: Record<string, unknown> } } | undefined)?.service?.keys;
      if (keys) {
        onlyKeys(keys, ['identityKey', 'staticKey', 'staticSig']);
        assert.ok(isKey(keys.identityKey) && isKey(keys.staticKey) && isKey(keys.staticSig, 64), 'service.keys');
      }
    }),
  },
  {
    name: 'parseControlResult gives each op a result of its shape, or BAD_MESSAGE',
    property: fc.property(fc.constantFrom(...OPS), hostileValue, (op, result) => {
      const parsed = refusedOr(() => parseControlResult(op, result), ['BAD_MESSAGE'], ProtocolError);
      if (parsed === undefined) return;
      assert.ok(isObject(parsed));
      assert.deepEqual(parseControlResult(op, parsed), parsed);
    }),
  },
  {
    name: 'parseHealthReport and requireString give checked values or BAD_REQUEST',
    property: fc.property(jsonPayload(healthArgs), fc.constantFrom(...HOSTILE_KEYS), (payload, key) => {
      let args: unknown;
      try {
        args = JSON.parse(payload.toString('utf8'));
      } catch {
        return; // not JSON: the control parser refuses it before any op sees it
      }
      if (!isObject(args)) return;
      const report = refusedOr(() => parseHealthReport(args as Record<string, unknown>), ['BAD_REQUEST']);
      if (report) {
        assert.ok(isStr(report.service, 255, 1) && report.checks.length >= 1 && report.checks.length <= MAX_HEALTH_CHECKS);
        for (const c of report.checks) {
          assert.ok(/^[a-z][a-z0-9_-]{0,31}$/.test(c.name) && typeof c.ok === 'boolean' && isStr(c.detail, MAX_HEALTH_TEXT));
          if (c.hint !== undefined) assert.ok(isStr(c.hint, MAX_HEALTH_TEXT));
          if (c.ms !== undefined) assert.ok(Number.isFinite(c.ms) && c.ms >= 0 && c.ms <= 3_600_000);
        }
        assert.equal(report.ok, report.checks.every((c) => c.ok));
      }
      const value = refusedOr(() => requireString(args as Record<string, unknown>, key, 64), ['BAD_REQUEST']);
      if (value !== undefined) assert.ok(isStr(value, 64, 1));
    }),
  },
  {
    name: 'names, targets and link rules give values or coded errors; an allowed path has no dot segments left',
    property: fc.property(
      fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.webPath(), fc.stringMatching(/^(\/(\.|\.\.|%2[eE]|\.%2e|%2e\.|[a-z]+|\/)*)+(\?[a-z=&.\/]*)?$/)),
      hostileValue,
      fc.string({ maxLength: 8 }),
      (input, rules, method) => {
        const name = refusedOr(() => validateServiceName(input), ['INVALID_NAME']);
        if (name !== undefined) assert.match(name, /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/);
        refusedOr(() => parseReachName(input), ['INVALID_NAME']);
        const target = refusedOr(() => parseTarget(input), ['INVALID_TARGET']);
        if (target) assert.ok(Number.isInteger(target.port) && target.port >= 1 && target.port <= 65535);
        refusedOr(() => parseDuration(input), ['BAD_REQUEST']);
        const methods = refusedOr(() => parseMethods(rules), ['BAD_REQUEST']);
        const paths = refusedOr(() => parsePaths(isObject(rules) ? rules.paths : rules), ['BAD_REQUEST']);
        const check = checkHttpRequest({ methods, paths }, method, input);
        if (!check.ok) {
          assert.ok(['BAD_REQUEST', 'AMBIGUOUS_PATH', 'METHOD_NOT_ALLOWED', 'PATH_NOT_ALLOWED'].includes(check.error.code));
          return;
        }
        const path = check.target.split('?')[0]!;
        assert.ok(path.startsWith('/'));
        for (const segment of path.split('/')) assert.ok(!/^(\.|%2e){1,2}$/i.test(segment), `dot segment left in ${check.target}`);
      },
    ),
  },
];
