/**
 * docs/api.md, the REST API reference, rendered from the hub's OpenAPI document (openapi.ts): the routes, the
 * schemas the hub validates requests with and the answers it serialises, so the reference cannot drift from the code. `npm run docs:api` writes
 * it; a test fails when the committed file differs from what the hub generates.
 */

/** The parts of an OpenAPI 3.1 document this renderer reads. */
interface Schema {
  type?: string | string[];
  format?: string;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  anyOf?: Schema[];
  description?: string;
}
interface Response {
  description?: string;
  content?: Record<string, { schema?: Schema }>;
}
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
  description?: string;
}
interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, Response>;
}
export interface OpenApiDocument {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
}

const METHOD_ORDER = ['get', 'post', 'put', 'patch', 'delete'];

/** One line for a schema: its type and every constraint the hub checks. */
function describeSchema(schema: Schema | undefined): string {
  if (!schema) return 'any';
  const type = Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? 'any');
  const parts = [type === 'array' && schema.items ? `array of ${describeSchema(schema.items)}` : type];
  if (schema.enum) parts.push(`one of ${schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ')}`);
  if (schema.format) parts.push(`format ${schema.format}`);
  if (schema.pattern) parts.push(`pattern \`${schema.pattern}\``);
  for (const [key, label] of [
    ['minimum', 'min'],
    ['maximum', 'max'],
    ['minLength', 'min length'],
    ['maxLength', 'max length'],
    ['minItems', 'min items'],
    ['maxItems', 'max items'],
  ] as const) {
    if (schema[key] !== undefined) parts.push(`${label} ${schema[key]}`);
  }
  return parts.join(', ');
}

/** What an answer holds, in a few words: an object's fields, the objects it may be, a media type, or no body. */
function describeAnswer(response: Response): string {
  const json = response.content?.['application/json']?.schema;
  const fields = (schema: Schema) => `{ ${Object.keys(schema.properties ?? {}).join(', ')} }`;
  if (json?.anyOf) return json.anyOf.map(fields).join(' or ');
  if (json) return fields(json);
  const mediaType = Object.keys(response.content ?? {})[0];
  return mediaType ?? response.description ?? 'no body';
}

/** The success answers of an operation, one line; the error answers are the same everywhere (see the top). */
function answersLine(op: Operation): string | undefined {
  const success = Object.entries(op.responses ?? {}).filter(([status]) => /^[23]\d\d$/.test(status));
  if (success.length === 0) return undefined;
  return `Answers: ${success.map(([status, response]) => `\`${status}\` ${describeAnswer(response)}`).join('; ')}.`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function fieldTable(rows: Array<[string, string, boolean, string | undefined]>): string[] {
  return ['| name | in | required | type and limits |', '|---|---|---|---|', ...rows.map(([name, where, required, type]) => `| \`${name}\` | ${where} | ${required ? 'yes' : 'no'} | ${cell(type ?? '')} |`)];
}

/** The whole reference as markdown, paths grouped by tag, in a stable order. */
export function renderApiReference(doc: OpenApiDocument): string {
  const out: string[] = [
    `# ${doc.info.title}`,
    '',
    '<!-- Generated from GET /openapi.json by `npm run docs:api` (apps/hub/src/api/api-reference.ts); do not edit. -->',
    '',
    doc.info.description ?? '',
    '',
    'Every request takes `Authorization: Bearer <API key or agent token>`, or the dashboard session cookie, except',
    'the login, device and health routes. What each credential may do is in security.md. The machine-readable',
    'form of this page is `GET /openapi.json` on any hub.',
    '',
    'Bodies are JSON only (`Content-Type: application/json`); a form or text body is refused with BAD_REQUEST. A',
    'request that changes something with the session cookie must also be JSON (even without a body) and come from the',
    "hub's own origin (`Sec-Fetch-Site: same-origin`, or its Origin), or it is refused with 403 CSRF; bearer",
    'credentials are not affected.',
  ];
  const byTag = new Map<string, Array<[string, string, Operation]>>();
  for (const path of Object.keys(doc.paths).sort()) {
    const ops = doc.paths[path]!;
    for (const method of Object.keys(ops).sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b))) {
      if (!METHOD_ORDER.includes(method)) continue;
      const op = ops[method]!;
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push([method, path, op]);
    }
  }
  for (const tag of [...byTag.keys()].sort()) {
    out.push('', `## ${tag}`);
    for (const [method, path, op] of byTag.get(tag)!) {
      out.push('', `### ${method.toUpperCase()} ${path}`);
      if (op.summary) out.push('', op.summary);
      if (op.description) out.push('', op.description);
      const rows: Array<[string, string, boolean, string | undefined]> = (op.parameters ?? []).map((p) => [p.name, p.in, p.required ?? false, describeSchema(p.schema)]);
      const body = op.requestBody?.content?.['application/json']?.schema;
      for (const [name, schema] of Object.entries(body?.properties ?? {})) rows.push([name, 'body', body?.required?.includes(name) ?? false, describeSchema(schema)]);
      if (rows.length > 0) out.push('', ...fieldTable(rows));
      const answers = answersLine(op);
      if (answers) out.push('', answers);
    }
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
