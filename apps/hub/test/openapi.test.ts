/**
 * GET /openapi.json: generated from the routes the hub registers and the schemas it validates with, so every API
 * route is in it, nothing else is, and what it says about a request is what the hub enforces.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { ROUTE_SCHEMAS } from '@private-connect/api';
import { renderApiReference } from '../src/api/api-reference.js';
import { ROUTE_SUMMARIES } from '../src/api/openapi.js';
import { MAX_AUDIT_PAGE } from '../src/store/audit.js';
import { startTestHub, type TestHub } from './support/test-hub.js';

/** Fastify's `/v1/agents/:id` is OpenAPI's `/v1/agents/{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');

describe('OpenAPI document', () => {
  let h: TestHub;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let doc: any;
  before(async () => {
    h = await startTestHub();
    const answer = await h.http('GET', '/openapi.json');
    assert.equal(answer.status, 200);
    doc = answer.body;
  });
  after(() => h.close());

  test('is an OpenAPI 3.1 document of this hub, readable without credentials', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'Private Connect hub API');
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['bearer', 'session']);
  });

  test('lists every API route the hub registers, with its method, and no page, asset or itself', () => {
    const api = h.hub.routes.filter((r) => /^[A-Z]+ (\/v1\/|\/healthz$|\/readyz$|\/metrics$)/.test(r));
    assert.ok(api.length >= 30, `only ${api.length} API routes registered?`);
    const listed = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) if (method !== 'head') listed.add(`${method.toUpperCase()} ${path}`);
    }
    const missing = api.map((r) => r.replace(/ (.*)$/, (_, url: string) => ` ${openApiPath(url)}`)).filter((r) => !listed.has(r));
    assert.deepEqual(missing, []);
    const extra = [...listed].filter((r) => !/ (\/v1\/|\/healthz$|\/readyz$|\/metrics$)/.test(r));
    assert.deepEqual(extra, [], 'pages, assets and /openapi.json itself are not API routes');
  });

  test('path parameters are named as in the route', () => {
    const op = doc.paths['/v1/agents/{id}/rotate-token']?.post;
    assert.ok(op, 'POST /v1/agents/{id}/rotate-token is documented');
    const params = (op.parameters ?? []).filter((p: { in: string }) => p.in === 'path').map((p: { name: string }) => p.name);
    assert.deepEqual(params, ['id']);
  });

  test('a request body and a query are described by the schemas the hub validates with', async () => {
    const body = doc.paths['/v1/api-keys'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required, ['name']);
    assert.equal(body.properties.name.maxLength, 128);
    // What the document says is refused, the hub refuses.
    for (const bad of [{}, { name: 'x'.repeat(129) }]) {
      const refused = await h.http('POST', '/v1/api-keys', { token: h.apiKey, body: bad });
      assert.equal(refused.status, 400, JSON.stringify(bad));
      assert.equal(refused.body.error.code, 'BAD_REQUEST');
    }

    const limit = doc.paths['/v1/audit'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    assert.equal(limit.in, 'query');
    assert.equal(limit.schema.maximum, MAX_AUDIT_PAGE);
    const tooMany = await h.http('GET', `/v1/audit?limit=${MAX_AUDIT_PAGE + 1}`, { token: h.apiKey });
    assert.equal(tooMany.status, 400);
  });

  test('every request is described by its schema in @private-connect/api, the one the SDK client is typed with', () => {
    // The document is what the hub validates with (the test above): equal to the shared schema means one definition.
    const plain = (schema: unknown) => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
    for (const [route, parts] of Object.entries(ROUTE_SCHEMAS)) {
      const [method, url] = route.split(' ') as [string, string];
      const op = doc.paths[openApiPath(url)]?.[method.toLowerCase()];
      assert.ok(op, `${route} is documented`);
      if ('body' in parts) assert.deepEqual(op.requestBody.content['application/json'].schema, plain(parts.body), route);
      if ('querystring' in parts) {
        const shared = plain(parts.querystring) as { properties: Record<string, Record<string, unknown>>; required?: string[] };
        const query = (op.parameters as Array<{ name: string; in: string; required: boolean; schema: Record<string, unknown>; description?: string }>).filter((p) => p.in === 'query');
        assert.deepEqual(query.map((p) => p.name).sort(), Object.keys(shared.properties).sort(), route);
        for (const p of query) {
          const { description, ...schema } = shared.properties[p.name]!;
          assert.deepEqual(p.schema, schema, `${route} ?${p.name}`);
          assert.equal(p.required, shared.required?.includes(p.name) ?? false);
          if (description !== undefined) assert.equal(p.description, description);
        }
      }
    }
  });

  test('every documented route has its one-line summary, and no summary names a route that is gone', () => {
    const api = h.hub.routes.filter((r) => /^[A-Z]+ (\/v1\/|\/healthz$|\/readyz$|\/metrics$)/.test(r));
    assert.deepEqual(api.filter((r) => !ROUTE_SUMMARIES[r]), [], 'add a line to ROUTE_SUMMARIES in apps/hub/src/api/openapi.ts');
    assert.deepEqual(Object.keys(ROUTE_SUMMARIES).filter((r) => !api.includes(r)), []);
    for (const ops of Object.values(doc.paths as Record<string, Record<string, { summary?: string }>>)) {
      for (const op of Object.values(ops)) assert.ok(op.summary);
    }
  });

  test('docs/api.md is the reference this hub generates (npm run docs:api rewrites it)', () => {
    const committed = readFileSync(new URL('../../../../docs/api.md', import.meta.url), 'utf8');
    assert.equal(committed, renderApiReference(doc), 'docs/api.md is out of date: run `npm run docs:api`');
  });
});
