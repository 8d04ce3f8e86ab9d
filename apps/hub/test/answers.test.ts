/**
 * Every REST route's answer has a schema (in /openapi.json, from @private-connect/api's ROUTE_SCHEMAS), and what the
 * hub answers is what the schema says: each route is driven once the way that succeeds (and the errors met on the
 * way are checked too), and every answer is validated against the schema documented for its status.
 *
 * A route without a case here fails the last test: a new route must come with its case.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { HubStreamEvent, ROUTE_SCHEMAS } from '@private-connect/api';
import { startIdentityHub, type IdentityHub } from './support/identity-hub.js';
import { connectAgent, type TestAgentSocket } from './support/test-hub.js';

/** Fastify's `/v1/agents/:id` is OpenAPI's `/v1/agents/{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');
const isApiRoute = (route: string) => /^[A-Z]+ (\/v1\/|\/healthz$|\/readyz$|\/metrics$)/.test(route);

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

// ajv-formats is CommonJS: its default export is the module object under Node's ESM interop.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

describe('REST answers and their schemas', () => {
  let h: IdentityHub;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let doc: any;
  const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
  const compiled = new Map<unknown, ValidateFunction>();
  /** Route → the answers it gave, to be checked against its schemas. */
  const seen = new Map<string, Answer[]>();

  /** One request; the answer is recorded under `route` ("METHOD /path" with Fastify's `:param`s). */
  const call = async (route: string, path: string, options: { cookie?: string; bearer?: string; body?: unknown; readFirstEvent?: boolean } = {}): Promise<Answer & { json: any }> => {
    const method = route.split(' ')[0]!;
    const headers: Record<string, string> = {};
    if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
    if (options.cookie) headers.cookie = options.cookie;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.cookie && method !== 'GET') {
      headers.origin = h.hub.url;
      headers['content-type'] = 'application/json';
    }
    const abort = new AbortController();
    const res = await fetch(h.hub.url + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), redirect: 'manual', signal: abort.signal });
    let text = '';
    if (options.readFirstEvent && res.status === 200) {
      // An event stream does not end: read up to the end of its first event.
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) {
        text += decoder.decode(chunk as Uint8Array, { stream: true });
        if (text.includes('\n\n')) break;
      }
      abort.abort();
    } else {
      text = await res.text();
    }
    const answer = { status: res.status, contentType: res.headers.get('content-type') ?? '', text };
    seen.set(route, [...(seen.get(route) ?? []), answer]);
    let json: unknown;
    try {
      json = answer.contentType.includes('json') ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { ...answer, json };
  };

  const ok = (answer: Answer, status: number) => assert.equal(answer.status, status, answer.text);

  /** The documented answer of `route` for `status` (its own status, else 4XX / 5XX). */
  const documented = (route: string, status: number): { description?: string; content?: Record<string, { schema: unknown }> } | undefined => {
    const [method, url] = route.split(' ') as [string, string];
    const responses = doc.paths[openApiPath(url)]?.[method.toLowerCase()]?.responses ?? {};
    return responses[String(status)] ?? responses[`${String(status)[0]}XX`];
  };

  const validator = (schema: unknown): ValidateFunction => {
    let validate = compiled.get(schema);
    if (!validate) compiled.set(schema, (validate = ajv.compile(schema as object)));
    return validate;
  };

  before(async () => {
    h = await startIdentityHub();
    doc = (await call('GET /openapi.json', '/openapi.json')).json;
  });
  after(() => h?.dispose());

  test('every API route has a schema for its answers in /openapi.json, the one in @private-connect/api', () => {
    const api = h.hub.routes.filter(isApiRoute);
    assert.ok(api.length >= 30, `only ${api.length} API routes registered?`);
    assert.deepEqual(api.filter((r) => !(r in ROUTE_SCHEMAS)), [], 'add the route to ROUTE_SCHEMAS in packages/api/src/routes.ts');
    assert.deepEqual(Object.keys(ROUTE_SCHEMAS).filter((r) => !api.includes(r)), [], 'ROUTE_SCHEMAS names routes the hub does not have');
    // As @fastify/swagger writes a schema into the document: JSON, with `const: x` as `enum: [x]`.
    const plain = (schema: unknown) => JSON.parse(JSON.stringify(schema), (key, value) => (value && typeof value === 'object' && !Array.isArray(value) && 'const' in value ? (({ const: c, ...rest }) => ({ ...rest, enum: [c] }))(value) : value)) as unknown;
    for (const route of api) {
      const response = ROUTE_SCHEMAS[route as keyof typeof ROUTE_SCHEMAS].response as Record<string, { content?: Record<string, { schema: unknown }> }>;
      const [method, url] = route.split(' ') as [string, string];
      const op = doc.paths[openApiPath(url)]?.[method.toLowerCase()];
      assert.ok(op?.responses, `${route} has no answers in /openapi.json`);
      const success = Object.keys(response).filter((status) => /^[23]\d\d$/.test(status));
      assert.ok(success.length > 0, `${route} has no success answer`);
      for (const status of Object.keys(response)) {
        const listed = op.responses[status.toUpperCase()];
        assert.ok(listed, `${route} ${status} is not in /openapi.json`);
        const shared = response[status]!;
        if (shared.content) {
          for (const [mediaType, { schema }] of Object.entries(shared.content)) assert.deepEqual(listed.content?.[mediaType]?.schema, plain(schema), `${route} ${status} ${mediaType}`);
        } else if ((shared as { type?: string }).type === 'null') {
          assert.equal(listed.content, undefined, `${route} ${status} has no body`);
        } else {
          assert.deepEqual(listed.content?.['application/json']?.schema, plain(shared), `${route} ${status}`);
        }
      }
    }
  });

  test('every route answers what its schema says: driven once each, every answer validated', async () => {
    // A signed-in owner (alice), her API key and an agent exposing a service that reported its health.
    const alice = await h.signIn('alice-answers@example.com');
    const aliceKey = await call('POST /v1/api-keys', '/v1/api-keys', { cookie: alice.cookie, body: { name: 'answers key' } });
    ok(aliceKey, 201);
    const key = aliceKey.json.key as string;
    const spareKey = await call('POST /v1/api-keys', '/v1/api-keys', { bearer: key, body: { name: 'spare key' } });
    ok(spareKey, 201);
    await call('GET /v1/api-keys', '/v1/api-keys', { bearer: key });
    ok(await call('DELETE /v1/api-keys/:id', `/v1/api-keys/${spareKey.json.id}`, { bearer: key }), 204);
    await call('DELETE /v1/api-keys/:id', '/v1/api-keys/not-a-key', { bearer: key });

    const enrolled = await call('POST /v1/agents/enroll', '/v1/agents/enroll', { bearer: key, body: { label: 'answers-agent', hostname: 'host', platform: 'linux' } });
    ok(enrolled, 201);
    let agent: TestAgentSocket | undefined;
    try {
      agent = await connectAgent(h.hub.port, enrolled.json.token);
      const exposed = await agent.request('expose', { name: 'web', target: '127.0.0.1:9', protocol: 'http' });
      assert.ok(exposed.t === 'reply' && exposed.ok, JSON.stringify(exposed));
      await agent.request('health', { service: 'web', ok: true, checks: [{ name: 'tcp', ok: true, detail: 'connected', ms: 1 }] });

      await call('GET /healthz', '/healthz');
      await call('GET /readyz', '/readyz');
      ok(await call('GET /metrics', '/metrics'), 200);
      for (const credential of [{ bearer: key }, { bearer: enrolled.json.token as string }, { cookie: alice.cookie }]) ok(await call('GET /v1/me', '/v1/me', credential), 200);
      await call('GET /v1/me', '/v1/me');
      ok(await call('GET /v1/agents', '/v1/agents', { bearer: key }), 200);
      const services = await call('GET /v1/services', '/v1/services', { bearer: key });
      ok(services, 200);
      const web = services.json.services.find((s: { name: string }) => s.name === 'web');
      assert.ok(web?.health, 'the service carries its health report');
      ok(await call('GET /v1/services/:id/diagnostics', `/v1/services/${web.id}/diagnostics?limit=5`, { bearer: key }), 200);
      await call('GET /v1/services/:id/diagnostics', `/v1/services/${web.id}/diagnostics?limit=0`, { bearer: key });
      const event = await call('GET /v1/events', '/v1/events', { bearer: key, readFirstEvent: true });
      ok(event, 200);
      const block = event.text.slice(0, event.text.indexOf('\n\n')).split('\n');
      const hello = { event: block.find((l) => l.startsWith('event:'))!.slice(6).trim(), data: JSON.parse(block.find((l) => l.startsWith('data:'))!.slice(5)) };
      assert.ok(validator(HubStreamEvent)(hello), `the first event is a HubStreamEvent: ${JSON.stringify(validator(HubStreamEvent).errors)}`);
      ok(await call('POST /v1/agents/:id/rotate-token', `/v1/agents/${enrolled.json.agentId}/rotate-token`, { bearer: key }), 200);

      // Shares: alice shares the service; dave, in his own workspace, joins it.
      const share = await call('POST /v1/shares', '/v1/shares', { bearer: key, body: { name: 'answers-share', services: ['web'], expiresIn: '1d', methods: ['GET'], paths: ['/api'], rate: 60 } });
      ok(share, 201);
      const dave = await h.signIn('dave-answers@example.com');
      const joined = await call('POST /v1/shares/join', '/v1/shares/join', { cookie: dave.cookie, body: { code: share.json.code, alias: 'alice' } });
      ok(joined, 201);
      ok(await call('GET /v1/shares', '/v1/shares', { bearer: key }), 200);
      ok(await call('GET /v1/shares', '/v1/shares', { cookie: dave.cookie }), 200);
      ok(await call('DELETE /v1/shares/:id', `/v1/shares/${share.json.share.id}`, { bearer: key }), 204);

      // Public links.
      const link = await call('POST /v1/links', '/v1/links', { bearer: key, body: { service: 'web', expiresIn: '1d', methods: 'GET,HEAD', rate: 10 } });
      ok(link, 201);
      ok(await call('GET /v1/links', '/v1/links', { bearer: key }), 200);
      ok(await call('DELETE /v1/links/:id', `/v1/links/${link.json.link.id}`, { bearer: key }), 204);

      // A second agent rotates its own token, then is revoked.
      const doomed = await call('POST /v1/agents/enroll', '/v1/agents/enroll', { bearer: key, body: { label: 'doomed' } });
      ok(await call('POST /v1/agents/me/rotate-token', '/v1/agents/me/rotate-token', { bearer: doomed.json.token }), 201);
      ok(await call('DELETE /v1/agents/:id', `/v1/agents/${doomed.json.agentId}`, { bearer: key }), 204);
    } finally {
      agent?.ws.close();
    }

    ok(await call('GET /v1/audit', '/v1/audit?limit=50', { bearer: key }), 200);
    await call('GET /v1/audit', '/v1/audit?limit=100000', { bearer: key });

    // Sign-in: a link mailed, the GET that leads to the page, the POST that opens a session, and signing out.
    ok(await call('POST /v1/auth/login', '/v1/auth/login', { body: { email: 'bob-answers@example.com' } }), 202);
    const token = h.lastLinkToken('bob-answers@example.com');
    ok(await call('GET /v1/auth/verify', `/v1/auth/verify?token=${encodeURIComponent(token)}`), 303);
    const bob = await call('POST /v1/auth/verify', `/v1/auth/verify?token=${encodeURIComponent(token)}`);
    ok(bob, 200);
    await call('POST /v1/auth/verify', `/v1/auth/verify?token=${encodeURIComponent(token)}`);
    const second = await h.signIn('bob-answers@example.com');
    ok(await call('POST /v1/auth/logout', '/v1/auth/logout', { cookie: second.cookie }), 204);

    // Device login: a code, approved by alice, redeemed for an agent token.
    const code = await call('POST /v1/device/code', '/v1/device/code', { body: { label: 'device' } });
    ok(code, 200);
    await call('POST /v1/device/token', '/v1/device/token', { body: { device_code: code.json.device_code } });
    ok(await call('POST /v1/device/approve', '/v1/device/approve', { cookie: alice.cookie, body: { user_code: code.json.user_code } }), 200);
    ok(await call('POST /v1/device/token', '/v1/device/token', { body: { device_code: code.json.device_code } }), 200);

    // Workspaces, members and invitations.
    ok(await call('GET /v1/workspaces', '/v1/workspaces', { cookie: alice.cookie }), 200);
    ok(await call('GET /v1/workspaces', '/v1/workspaces', { bearer: key }), 200);
    ok(await call('POST /v1/workspaces', '/v1/workspaces', { cookie: alice.cookie, body: { name: 'second' } }), 201);
    const ws = alice.workspaceId;
    ok(await call('GET /v1/workspaces/:id', `/v1/workspaces/${ws}`, { cookie: alice.cookie }), 200);
    ok(await call('PATCH /v1/workspaces/:id', `/v1/workspaces/${ws}`, { cookie: alice.cookie, body: { directPaths: true } }), 200);
    ok(await call('POST /v1/workspaces/:id/invites', `/v1/workspaces/${ws}/invites`, { cookie: alice.cookie, body: { email: 'carol-answers@example.com', role: 'member' } }), 202);
    const carol = await call('POST /v1/auth/verify', `/v1/auth/verify?token=${encodeURIComponent(h.lastLinkToken('carol-answers@example.com'))}`);
    ok(carol, 200);
    const pending = await call('POST /v1/workspaces/:id/invites', `/v1/workspaces/${ws}/invites`, { cookie: alice.cookie, body: { email: 'erin-answers@example.com' } });
    ok(pending, 202);
    ok(await call('GET /v1/workspaces/:id/invitations', `/v1/workspaces/${ws}/invitations`, { cookie: alice.cookie }), 200);
    ok(await call('DELETE /v1/workspaces/:id/invitations/:invitationId', `/v1/workspaces/${ws}/invitations/${pending.json.id}`, { cookie: alice.cookie }), 204);
    ok(await call('GET /v1/workspaces/:id/members', `/v1/workspaces/${ws}/members`, { cookie: alice.cookie }), 200);
    ok(await call('DELETE /v1/workspaces/:id/members/:userId', `/v1/workspaces/${ws}/members/${carol.json.userId}`, { cookie: alice.cookie }), 204);
    await call('DELETE /v1/workspaces/:id/members/:userId', `/v1/workspaces/${ws}/members/${carol.json.userId}`, { cookie: alice.cookie });

    // Every route had a case, and every answer is what its schema says.
    const api = h.hub.routes.filter(isApiRoute);
    assert.deepEqual(api.filter((r) => !seen.has(r)), [], `routes without a case: add them to ${import.meta.url}`);
    for (const route of api) {
      assert.ok(seen.get(route)!.some((a) => a.status < 400), `${route}: no case answered with success`);
      for (const answer of seen.get(route)!) {
        const what = `${route} answered ${answer.status} ${answer.text.slice(0, 300)}`;
        const spec = documented(route, answer.status);
        assert.ok(spec, `${what}: no schema for this status`);
        if (!spec.content) {
          assert.equal(answer.text, '', `${what}: documented without a body`);
          continue;
        }
        const mediaType = answer.contentType.split(';')[0]!.trim();
        const schema = spec.content[mediaType]?.schema;
        assert.ok(schema, `${what}: ${mediaType} is not documented (${Object.keys(spec.content).join(', ')})`);
        const body = mediaType.includes('json') ? JSON.parse(answer.text) : answer.text;
        const validate = validator(schema);
        assert.ok(validate(body), `${what}: ${ajv.errorsText(validate.errors)}`);
      }
    }
  });
});
