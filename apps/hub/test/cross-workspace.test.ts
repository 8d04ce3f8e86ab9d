/**
 * The cross-workspace battery: for EVERY HTTP route the hub registers (hub.routes) and every control operation of
 * the agent connection, each credential of workspace X (API key, agent token, signed-in owner) tries workspace Y's
 * objects by id and by name. The answer must be the one a missing object gets (same status, same body apart from
 * the reference itself), nothing of Y may appear in any answer, and none of Y's rows may change.
 *
 * A route without a case here fails the first test: a new route must come with its case.
 */

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import {
  FrameType,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeJsonFrame,
  parseErrorPayload,
  parseHubMessage,
  type ControlOp,
  type HubMessage,
} from '@private-connect/protocol';
import { dbKind } from './support/test-database.js';
import { sessionCookie, startIdentityHub, type IdentityHub } from './support/identity-hub.js';

type Who = 'api_key' | 'agent' | 'user';
const WHO: Who[] = ['api_key', 'agent', 'user'];

interface Answer {
  status: number;
  text: string;
}

interface Req {
  method: string;
  path: string;
  body?: unknown;
  /** A form post (the browser pages), instead of a JSON body. */
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

/** A scripted agent connection. */
interface RawAgent {
  ws: WebSocket;
  request(op: string, args: Record<string, unknown>): Promise<Extract<HubMessage, { t: 'reply' }>>;
  open(streamId: number, service: string): Promise<{ type: number; payload: Buffer }>;
  close(): Promise<void>;
}

function connectAgent(url: string, token: string, label: string): Promise<RawAgent> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace('http', 'ws') + '/v1/agent', { headers: { authorization: `Bearer ${token}` } });
    const replies = new Map<number, (m: Extract<HubMessage, { t: 'reply' }>) => void>();
    const streams = new Map<number, (f: { type: number; payload: Buffer }) => void>();
    let nextId = 1;
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('open', () => ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'hello', v: PROTOCOL_VERSION, agent: { version: 'test', label } })));
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(data);
      if (frame.streamId !== 0) {
        streams.get(frame.streamId)?.({ type: frame.type, payload: Buffer.from(frame.payload) });
        return;
      }
      if (frame.type !== FrameType.CONTROL) return;
      const msg = parseHubMessage(frame.payload);
      if (msg.t === 'welcome') {
        resolve({
          ws,
          request: (op, args) =>
            new Promise((res) => {
              const id = nextId++;
              replies.set(id, res);
              ws.send(encodeJsonFrame(FrameType.CONTROL, 0, { t: 'req', id, op, args }));
            }),
          open: (streamId, service) =>
            new Promise((res) => {
              streams.set(streamId, res);
              ws.send(encodeJsonFrame(FrameType.OPEN, streamId, { service }));
            }),
          close: () =>
            new Promise<void>((res) => {
              if (ws.readyState === ws.CLOSED) return res();
              ws.on('close', () => res());
              ws.close();
            }),
        });
      } else if (msg.t === 'reply') {
        replies.get(msg.id)?.(msg);
        replies.delete(msg.id);
      }
    });
  });
}

describe(`cross-workspace battery (${dbKind})`, () => {
  let h: IdentityHub;
  /** Workspace X: the caller. */
  const x = { workspaceId: '', apiKey: '', agentToken: '', cookie: '', userId: '' };
  /** Workspace Y: the target, and every identifier of it that must never show. */
  const y = { workspaceId: '', apiKey: '', keyId: '', keyPrefix: '', agentId: '', agentToken: '', userId: '', email: 'bob-victim@example.com', cookie: '', tunnelId: '', shareId: '', serviceId: '', invitationId: '' };
  /** A plain member of Y with an agent of theirs (enrolled by device login): X removing them must revoke nothing. */
  const yMember = { userId: '', email: 'carol-victim@example.com', agentId: '' };
  const Y_SERVICE = 'victim-secret-db';
  const Y_AGENT_LABEL = 'victim-agent-label';
  const Y_SHARE = 'victim-share-name';
  /** The address Y's pending invitation was sent to. */
  const Y_INVITEE = 'victim-invitee@example.com';
  let yAgent: RawAgent;
  let ySnapshot = '';
  /** Y's public link: X may neither see it (id, token, prefix) nor revoke it. */
  const yLink = { id: '', token: '', prefix: '' };

  const call = async (req: Req, who?: Who): Promise<Answer> => {
    const headers: Record<string, string> = { ...req.headers };
    if (who === 'api_key') headers.authorization = `Bearer ${x.apiKey}`;
    if (who === 'agent') headers.authorization = `Bearer ${x.agentToken}`;
    if (who === 'user') headers.cookie = x.cookie;
    // X's user acts from the hub's own page, as the dashboard does (the CSRF rules would refuse anything else).
    if (req.method !== 'GET' && req.method !== 'HEAD') headers.origin ??= h.hub.url;
    if (who === 'user' && req.method !== 'GET' && req.body === undefined && !req.form && req.path.startsWith('/v1/')) headers['content-type'] = 'application/json';
    let body: string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.body);
    } else if (req.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(req.form).toString();
    }
    const res = await fetch(h.hub.url + req.path, { method: req.method, headers, body, redirect: 'manual' });
    return { status: res.status, text: await res.text() };
  };

  /** Y's identifiers that no answer to X may contain. */
  const yMarks = () =>
    [y.workspaceId, y.keyId, y.keyPrefix, y.agentId, y.userId, y.email, Y_SERVICE, Y_AGENT_LABEL, y.tunnelId, y.shareId, Y_SHARE, y.serviceId, y.invitationId, Y_INVITEE, yMember.userId, yMember.email, yMember.agentId].filter(Boolean);

  /** `echoed`: references the caller sent itself, which an answer may repeat. */
  const revealsNothing = (answer: Answer, what: string, echoed: string[] = []) => {
    for (const mark of yMarks().filter((m) => !echoed.includes(m))) assert.ok(!answer.text.includes(mark), `${what} revealed ${mark}: ${answer.text}`);
  };

  /** Y's object and a missing one get the same answer, apart from the reference. */
  const same = async (who: Who | undefined, hidden: Req, missing: Req, refs: Array<[string, string]>, what: string, refused = true) => {
    const a = await call(hidden, who);
    const b = await call(missing, who);
    const norm = (text: string, side: 0 | 1) => refs.reduce((t, pair) => t.replaceAll(pair[side], '<REF>'), text);
    assert.equal(a.status, b.status, `${what} as ${who}: ${a.status} ${a.text} vs ${b.status} ${b.text}`);
    assert.equal(norm(a.text, 0), norm(b.text, 1), `${what} as ${who}`);
    if (refused) assert.ok(a.status >= 400, `${what} as ${who} must be refused, got ${a.status} ${a.text}`);
    revealsNothing(a, what, refs.map((pair) => pair[0]));
  };

  const plain = async (who: Who | undefined, req: Req, what: string) => revealsNothing(await call(req, who), what);

  /** Every row of workspace Y, and Y's user's sessions: must not change whatever X does. */
  const snapshot = async (): Promise<string> => {
    const tables = ['workspaces', 'agents', 'agent_tokens', 'api_keys', 'services', 'tunnels', 'audit_log', 'workspace_members', 'magic_links', 'setup_links', 'invitations', 'shares', 'links', 'hub_ports', 'diagnostics'];
    const out: Record<string, unknown> = {};
    await h.hub.db.withSystem(async (tx) => {
      for (const table of tables) {
        const column = table === 'workspaces' ? 'id' : 'workspace_id';
        out[table] = await tx.query(`select * from ${table} where ${column} = $1 order by 1`, [y.workspaceId]);
      }
      out.sessions = await tx.query('select id, revoked_at from sessions where user_id = $1 order by 1', [y.userId]);
    });
    return JSON.stringify(out);
  };

  const uuid = () => randomUUID();

  /** One case per route: what X tries against Y. `who` is undefined for routes that take no credentials. */
  const CASES: Record<string, (who: Who) => Promise<void>> = {
    'GET /healthz': (who) => plain(who, { method: 'GET', path: '/healthz' }, 'healthz'),
    'GET /readyz': (who) => plain(who, { method: 'GET', path: '/readyz' }, 'readyz'),
    'GET /metrics': (who) => plain(who, { method: 'GET', path: '/metrics' }, 'metrics'),
    'GET /openapi.json': (who) => plain(who, { method: 'GET', path: '/openapi.json' }, 'the API description'),
    'POST /v1/agents/me/rotate-token': (who) => plain(who, { method: 'POST', path: '/v1/agents/me/rotate-token' }, 'rotate'),
    'POST /v1/agents/:id/rotate-token': async (who) => {
      // Y's agent is online: X must get the answer of a missing agent, not AGENT_OFFLINE or a token.
      const m = uuid();
      await same(who, { method: 'POST', path: `/v1/agents/${y.agentId}/rotate-token` }, { method: 'POST', path: `/v1/agents/${m}/rotate-token` }, [[y.agentId, m]], 'rotate agent token');
    },
    'DELETE /v1/agents/:id': async (who) => {
      const m = uuid();
      await same(who, { method: 'DELETE', path: `/v1/agents/${y.agentId}` }, { method: 'DELETE', path: `/v1/agents/${m}` }, [[y.agentId, m]], 'revoke agent');
    },
    'POST /v1/api-keys': (who) => plain(who, { method: 'POST', path: '/v1/api-keys', body: { name: `from ${who}` } }, 'create key'),
    'GET /v1/api-keys': (who) => plain(who, { method: 'GET', path: '/v1/api-keys' }, 'list keys'),
    'DELETE /v1/api-keys/:id': async (who) => {
      const m = uuid();
      await same(who, { method: 'DELETE', path: `/v1/api-keys/${y.keyId}` }, { method: 'DELETE', path: `/v1/api-keys/${m}` }, [[y.keyId, m]], 'revoke key');
    },
    'GET /v1/audit': async (who) => {
      await plain(who, { method: 'GET', path: '/v1/audit' }, 'audit');
      await plain(who, { method: 'GET', path: '/v1/audit?action=agent.connect&limit=500' }, 'audit filtered');
      await plain(who, { method: 'GET', path: '/v1/audit?target_type=service' }, 'audit services');
    },
    'POST /v1/agents/enroll': async (who) => {
      await plain(who, { method: 'POST', path: '/v1/agents/enroll', body: { label: `x-${who}` } }, 'enrol');
      // Naming Y in the body does not move the agent there: it lands in X, or is refused.
      const answer = await call({ method: 'POST', path: '/v1/agents/enroll', body: { label: 'intruder', workspaceId: y.workspaceId } }, who);
      revealsNothing(answer, 'enrol into Y', [y.workspaceId]);
      if (answer.status === 201) assert.equal(JSON.parse(answer.text).workspaceId, x.workspaceId);
    },
    'GET /v1/me': (who) => plain(who, { method: 'GET', path: '/v1/me' }, 'me'),
    'GET /v1/services': async (who) => {
      await plain(who, { method: 'GET', path: '/v1/services' }, 'services');
      const m = uuid();
      await same(who, { method: 'GET', path: '/v1/services', headers: { 'x-workspace-id': y.workspaceId } }, { method: 'GET', path: '/v1/services', headers: { 'x-workspace-id': m } }, [[y.workspaceId, m]], 'services with X-Workspace-Id of Y', false);
    },
    'GET /v1/services/:id/diagnostics': async (who) => {
      const m = uuid();
      const path = (id: string) => `/v1/services/${id}/diagnostics`;
      await same(who, { method: 'GET', path: path(y.serviceId) }, { method: 'GET', path: path(m) }, [[y.serviceId, m]], 'diagnostics of Y service');
      await same(who, { method: 'GET', path: `${path(y.serviceId)}?limit=1` }, { method: 'GET', path: `${path(m)}?limit=1` }, [[y.serviceId, m]], 'diagnostics of Y service, limited');
      // By name instead of id: not an id, like any other garbage.
      await same(who, { method: 'GET', path: path(Y_SERVICE) }, { method: 'GET', path: path('no-such-db') }, [[Y_SERVICE, 'no-such-db']], 'diagnostics by name');
    },
    'GET /v1/agents': async (who) => {
      await plain(who, { method: 'GET', path: '/v1/agents' }, 'agents');
      const m = uuid();
      await same(who, { method: 'GET', path: '/v1/agents', headers: { 'x-workspace-id': y.workspaceId } }, { method: 'GET', path: '/v1/agents', headers: { 'x-workspace-id': m } }, [[y.workspaceId, m]], 'agents with X-Workspace-Id of Y', false);
    },
    'GET /v1/events': async (who) => {
      // Read the live stream for a while (X's own workspace, then Y's named by query and header): nothing of Y.
      const read = async (path: string, headers: Record<string, string> = {}): Promise<Answer> => {
        const h2: Record<string, string> = { ...headers };
        if (who === 'api_key') h2.authorization = `Bearer ${x.apiKey}`;
        if (who === 'agent') h2.authorization = `Bearer ${x.agentToken}`;
        if (who === 'user') h2.cookie = x.cookie;
        const abort = new AbortController();
        const res = await fetch(h.hub.url + path, { headers: h2, signal: abort.signal });
        let text = '';
        const timer = setTimeout(() => abort.abort(), 300);
        try {
          for await (const chunk of res.body ?? []) text += Buffer.from(chunk as Uint8Array).toString();
        } catch {
          // the read window ended
        } finally {
          clearTimeout(timer);
        }
        return { status: res.status, text };
      };
      revealsNothing(await read('/v1/events'), 'events');
      const m = uuid();
      for (const [hidden, missing] of [
        [`/v1/events?workspace=${y.workspaceId}`, `/v1/events?workspace=${m}`],
      ]) {
        const a = await read(hidden!);
        const b = await read(missing!);
        assert.equal(a.status, b.status, `events of Y as ${who}`);
        if (a.status >= 400) assert.equal(a.text.replace(y.workspaceId, '<REF>'), b.text.replace(m, '<REF>'));
        revealsNothing(a, 'events of Y', [y.workspaceId]);
      }
      const byHeader = await read('/v1/events', { 'x-workspace-id': y.workspaceId });
      revealsNothing(byHeader, 'events with X-Workspace-Id of Y', [y.workspaceId]);
    },
    'GET /assets/*': async (who) => {
      const answer = await call({ method: 'GET', path: `/assets/${y.workspaceId}.js` }, who);
      assert.equal(answer.status, 404);
      revealsNothing(answer, 'assets', [y.workspaceId]);
    },
    'POST /v1/shares': async (who) => {
      // Sharing Y's service from X: X has no such service; the same answer as a name that exists nowhere.
      const share = (services: string[]): Req => ({ method: 'POST', path: '/v1/shares', body: { name: `from-${who.replace('_', '-')}`, services, expiresIn: '1d' } });
      await same(who, share([Y_SERVICE]), share(['no-such-db']), [[Y_SERVICE, 'no-such-db']], 'share Y service');
    },
    'GET /v1/shares': (who) => plain(who, { method: 'GET', path: '/v1/shares' }, 'list shares'),
    'DELETE /v1/shares/:id': async (who) => {
      const m = uuid();
      await same(who, { method: 'DELETE', path: `/v1/shares/${y.shareId}` }, { method: 'DELETE', path: `/v1/shares/${m}` }, [[y.shareId, m]], 'revoke share');
    },
    'POST /v1/shares/join': async (who) => {
      // Without Y's code nothing joins: Y's share id (or a made-up code) is no code, like any other.
      const m = uuid();
      await same(who, { method: 'POST', path: '/v1/shares/join', body: { code: y.shareId } }, { method: 'POST', path: '/v1/shares/join', body: { code: m } }, [[y.shareId, m]], 'join by share id');
      const [c1, c2] = [`pcs_${randomBytes(16).toString('hex')}`, `pcs_${randomBytes(16).toString('hex')}`];
      await same(who, { method: 'POST', path: '/v1/shares/join', body: { code: c1, alias: 'victim' } }, { method: 'POST', path: '/v1/shares/join', body: { code: c2, alias: 'victim' } }, [[c1, c2]], 'join by unknown code');
    },
    'POST /v1/links': async (who) => {
      // A link to Y's service from X: X has no such service; the same answer as a name that exists nowhere.
      const link = (service: string): Req => ({ method: 'POST', path: '/v1/links', body: { service, expiresIn: '1d' } });
      await same(who, link(Y_SERVICE), link('no-such-db'), [[Y_SERVICE, 'no-such-db']], 'link to Y service');
    },
    'GET /v1/links': async (who) => {
      const answer = await call({ method: 'GET', path: '/v1/links' }, who);
      revealsNothing(answer, 'list links');
      for (const mark of [yLink.id, yLink.token, yLink.prefix]) assert.ok(!answer.text.includes(mark), `list links revealed ${mark}: ${answer.text}`);
    },
    'DELETE /v1/links/:id': async (who) => {
      const m = uuid();
      await same(who, { method: 'DELETE', path: `/v1/links/${yLink.id}` }, { method: 'DELETE', path: `/v1/links/${m}` }, [[yLink.id, m]], 'revoke link');
    },
    'POST /v1/auth/login': async (who) => {
      const m = `nobody-${uuid().slice(0, 8)}@example.com`;
      const a = await call({ method: 'POST', path: '/v1/auth/login', body: { email: y.email } }, who);
      const b = await call({ method: 'POST', path: '/v1/auth/login', body: { email: m } }, who);
      assert.equal(a.status, b.status);
      const strip = (t: string, e: string) => t.replaceAll(e, '<EMAIL>').replace(/"expiresAt":"[^"]*"/, '');
      assert.equal(strip(a.text, y.email), strip(b.text, m), 'a member of Y and an unknown address get the same answer');
    },
    'GET /v1/auth/verify': async (who) => {
      const [t1, t2] = [uuid().replaceAll('-', 'A'), uuid().replaceAll('-', 'B')];
      // A GET never signs in: any token leads to the sign-in page the same way (303, no cookie).
      await same(who, { method: 'GET', path: `/v1/auth/verify?token=${t1}` }, { method: 'GET', path: `/v1/auth/verify?token=${t2}` }, [[t1, t2]], 'verify GET', false);
    },
    'POST /v1/auth/verify': async (who) => {
      const [t1, t2] = [uuid().replaceAll('-', 'A'), uuid().replaceAll('-', 'B')];
      await same(who, { method: 'POST', path: `/v1/auth/verify?token=${t1}` }, { method: 'POST', path: `/v1/auth/verify?token=${t2}` }, [[t1, t2]], 'verify POST');
    },
    'POST /v1/auth/logout': async (who) => {
      // Logging out must end X's own session at most: use a fresh one so the battery keeps its cookie.
      const saved = x.cookie;
      if (who === 'user') x.cookie = (await h.signIn('alice-caller@example.com')).cookie;
      try {
        await plain(who, { method: 'POST', path: '/v1/auth/logout' }, 'logout');
      } finally {
        x.cookie = saved;
      }
      const still = await fetch(`${h.hub.url}/v1/me`, { headers: { cookie: y.cookie } });
      assert.equal(still.status, 200, "Y's user is still signed in");
    },
    'GET /v1/workspaces': (who) => plain(who, { method: 'GET', path: '/v1/workspaces' }, 'workspaces'),
    'POST /v1/workspaces': async (who) => {
      await plain(who, { method: 'POST', path: '/v1/workspaces', body: { name: `new by ${who}` } }, 'create workspace');
      // An id in the body is not honoured: a new workspace, never Y.
      const answer = await call({ method: 'POST', path: '/v1/workspaces', body: { name: 'n', id: y.workspaceId } }, who);
      revealsNothing(answer, 'create workspace with Y id', [y.workspaceId]);
      if (answer.status === 201) assert.notEqual(JSON.parse(answer.text).id, y.workspaceId);
    },
    'GET /v1/workspaces/:id': async (who) => {
      const m = uuid();
      await same(who, { method: 'GET', path: `/v1/workspaces/${y.workspaceId}` }, { method: 'GET', path: `/v1/workspaces/${m}` }, [[y.workspaceId, m]], 'workspace');
    },
    'PATCH /v1/workspaces/:id': async (who) => {
      // Turning Y's direct paths off: answered like a missing workspace, and Y's setting stays (the snapshot).
      const m = uuid();
      await same(who, { method: 'PATCH', path: `/v1/workspaces/${y.workspaceId}`, body: { directPaths: false } }, { method: 'PATCH', path: `/v1/workspaces/${m}`, body: { directPaths: false } }, [[y.workspaceId, m]], 'workspace settings');
    },
    'GET /v1/workspaces/:id/members': async (who) => {
      const m = uuid();
      await same(who, { method: 'GET', path: `/v1/workspaces/${y.workspaceId}/members` }, { method: 'GET', path: `/v1/workspaces/${m}/members` }, [[y.workspaceId, m]], 'members');
    },
    'POST /v1/workspaces/:id/invites': async (who) => {
      const m = uuid();
      const body = { email: 'eve-invited@example.com', role: 'admin' };
      await same(who, { method: 'POST', path: `/v1/workspaces/${y.workspaceId}/invites`, body }, { method: 'POST', path: `/v1/workspaces/${m}/invites`, body }, [[y.workspaceId, m]], 'invite');
    },
    'DELETE /v1/workspaces/:id/members/:userId': async (who) => {
      const [m1, m2] = [uuid(), uuid()];
      await same(
        who,
        { method: 'DELETE', path: `/v1/workspaces/${y.workspaceId}/members/${y.userId}` },
        { method: 'DELETE', path: `/v1/workspaces/${m1}/members/${m2}` },
        [
          [y.workspaceId, m1],
          [y.userId, m2],
        ],
        'remove member of Y',
      );
      // Y's user through X's own workspace: not a member there, so like a missing one.
      await same(
        who,
        { method: 'DELETE', path: `/v1/workspaces/${x.workspaceId}/members/${y.userId}` },
        { method: 'DELETE', path: `/v1/workspaces/${x.workspaceId}/members/${m2}` },
        [[y.userId, m2]],
        'remove Y user from X',
      );
      // Y's plain member, whose agent would be revoked with them: from Y, and through X (the snapshot: still there).
      for (const ws of [y.workspaceId, x.workspaceId]) {
        await same(
          who,
          { method: 'DELETE', path: `/v1/workspaces/${ws}/members/${yMember.userId}` },
          { method: 'DELETE', path: `/v1/workspaces/${ws === y.workspaceId ? m1 : ws}/members/${m2}` },
          ws === y.workspaceId
            ? [
                [y.workspaceId, m1],
                [yMember.userId, m2],
              ]
            : [[yMember.userId, m2]],
          `remove Y member with an agent (in ${ws === y.workspaceId ? 'Y' : 'X'})`,
        );
      }
    },
    'GET /v1/workspaces/:id/invitations': async (who) => {
      const m = uuid();
      await same(who, { method: 'GET', path: `/v1/workspaces/${y.workspaceId}/invitations` }, { method: 'GET', path: `/v1/workspaces/${m}/invitations` }, [[y.workspaceId, m]], 'invitations');
    },
    'DELETE /v1/workspaces/:id/invitations/:invitationId': async (who) => {
      const [m1, m2] = [uuid(), uuid()];
      await same(
        who,
        { method: 'DELETE', path: `/v1/workspaces/${y.workspaceId}/invitations/${y.invitationId}` },
        { method: 'DELETE', path: `/v1/workspaces/${m1}/invitations/${m2}` },
        [
          [y.workspaceId, m1],
          [y.invitationId, m2],
        ],
        'revoke invitation of Y',
      );
      // Y's invitation through X's own workspace: like a missing one.
      await same(
        who,
        { method: 'DELETE', path: `/v1/workspaces/${x.workspaceId}/invitations/${y.invitationId}` },
        { method: 'DELETE', path: `/v1/workspaces/${x.workspaceId}/invitations/${m2}` },
        [[y.invitationId, m2]],
        'revoke Y invitation through X',
      );
    },
    'POST /v1/device/code': (who) => plain(who, { method: 'POST', path: '/v1/device/code', body: { label: `device-${who}` } }, 'device code'),
    'POST /v1/device/approve': async (who) => {
      const m = uuid();
      const fresh = async () => JSON.parse((await call({ method: 'POST', path: '/v1/device/code', body: {} })).text).user_code as string;
      const [c1, c2] = [await fresh(), await fresh()];
      // Approving into Y (by workspaceId or X-Workspace-Id) answers like a missing workspace and enrols nothing there.
      await same(who, { method: 'POST', path: '/v1/device/approve', body: { user_code: c1, workspaceId: y.workspaceId } }, { method: 'POST', path: '/v1/device/approve', body: { user_code: c2, workspaceId: m } }, [[y.workspaceId, m], [c1, c2]], 'approve device into Y');
      const [c3, c4] = [await fresh(), await fresh()];
      await same(who, { method: 'POST', path: '/v1/device/approve', headers: { 'x-workspace-id': y.workspaceId }, body: { user_code: c3 } }, { method: 'POST', path: '/v1/device/approve', headers: { 'x-workspace-id': m }, body: { user_code: c4 } }, [[y.workspaceId, m], [c3, c4]], 'approve device with X-Workspace-Id of Y');
    },
    // The browser pages: the user's own workspaces only; Y's workspace answers like a missing one.
    'GET /': (who) => plain(who, { method: 'GET', path: '/' }, 'home page'),
    'GET /login': (who) => plain(who, { method: 'GET', path: '/login?next=/device' }, 'login page'),
    'POST /login': (who) => plain(who, { method: 'POST', path: '/login', form: { email: `page-${who}@example.com`, next: '/' } }, 'login form'),
    'GET /auth/verify': (who) => plain(who, { method: 'GET', path: `/auth/verify?token=${randomBytes(32).toString('hex')}` }, 'verify page'),
    'POST /auth/verify': (who) => plain(who, { method: 'POST', path: '/auth/verify', form: { token: randomBytes(32).toString('hex'), next: '/' } }, 'verify form'),
    // A setup link is looked up by its secret alone: any credential gets the same refusal for an unknown one.
    'GET /setup': (who) => plain(who, { method: 'GET', path: `/setup?token=${randomBytes(32).toString('base64url')}` }, 'setup page'),
    'GET /welcome': (who) => plain(who, { method: 'GET', path: `/welcome?workspace=${y.workspaceId}` }, 'welcome page'),
    'POST /setup': (who) => plain(who, { method: 'POST', path: '/setup', form: { token: randomBytes(32).toString('base64url'), email: `setup-${who}@example.com` } }, 'setup form'),
    // Not as X's user (that would end the session the battery signs in with): an unknown session changes nothing.
    'POST /logout': () => plain(undefined, { method: 'POST', path: '/logout', headers: { cookie: `pc_session=${randomBytes(32).toString('hex')}` } }, 'logout'),
    'GET /device': (who) => plain(who, { method: 'GET', path: '/device' }, 'device page'),
    'POST /device': async (who) => {
      const m = uuid();
      const fresh = async () => JSON.parse((await call({ method: 'POST', path: '/v1/device/code', body: {} })).text).user_code as string;
      const [c1, c2] = [await fresh(), await fresh()];
      const post = (code: string, workspace: string): Req => ({ method: 'POST', path: '/device', form: { user_code: code, workspace_id: workspace } });
      // Without a session (API key, agent token) both answer with the way to sign in; a user gets the same 404 page.
      await same(who, post(c1, y.workspaceId), post(c2, m), [[y.workspaceId, m], [c1, c2]], 'approve device into Y by page', who === 'user');
    },
    'POST /v1/device/token': async (who) => {
      await plain(who, { method: 'POST', path: '/v1/device/token', body: { device_code: randomBytes(32).toString('hex') } }, 'device token');
    },
  };

  before(async () => {
    h = await startIdentityHub();
    // Y: a signed-in owner with a personal workspace, an API key, an agent exposing a service, a tunnel, audit rows.
    const bob = await h.signIn(y.email);
    Object.assign(y, { workspaceId: bob.workspaceId, userId: bob.userId, cookie: bob.cookie });
    const key = await h.request('POST', '/v1/api-keys', { cookie: bob.cookie, body: { name: 'victim key' } });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    Object.assign(y, { apiKey: key.body.key, keyId: key.body.id, keyPrefix: key.body.prefix ?? '' });
    const enrolY = await h.request('POST', '/v1/agents/enroll', { headers: { authorization: `Bearer ${y.apiKey}` }, body: { label: Y_AGENT_LABEL } });
    assert.equal(enrolY.status, 201, JSON.stringify(enrolY.body));
    Object.assign(y, { agentId: enrolY.body.agentId, agentToken: enrolY.body.token });
    yAgent = await connectAgent(h.hub.url, y.agentToken, Y_AGENT_LABEL);
    assert.equal((await yAgent.request('expose', { name: Y_SERVICE, target: '127.0.0.1:9' })).ok, true);
    const reach = await yAgent.request('reach', { name: Y_SERVICE, localPort: 0 });
    assert.ok(reach.ok);
    y.tunnelId = (reach.result as { tunnelId: string }).tunnelId;
    y.serviceId = (reach.result as { service: { id: string } }).service.id;
    // Y's agent reports its service's health: Y has a diagnostics row that X must neither see nor change.
    const health = await yAgent.request('health', { service: Y_SERVICE, ok: false, checks: [{ name: 'tcp', ok: false, detail: 'victim detail', hint: 'victim hint' }] });
    assert.ok(health.ok, JSON.stringify(health));
    const share = await h.request('POST', '/v1/shares', { headers: { authorization: `Bearer ${y.apiKey}` }, body: { name: Y_SHARE, services: [Y_SERVICE], expiresIn: '7d' } });
    assert.equal(share.status, 201, JSON.stringify(share.body));
    y.shareId = share.body.share.id;

    // Y's plain member Carol, with an agent of hers: a device code she approved for Y.
    const invited = await h.request('POST', `/v1/workspaces/${y.workspaceId}/invites`, { cookie: bob.cookie, body: { email: yMember.email } });
    assert.equal(invited.status, 202, JSON.stringify(invited.body));
    const carol = await h.request('POST', `/v1/auth/verify?token=${encodeURIComponent(h.lastLinkToken(yMember.email))}`);
    assert.equal(carol.status, 200, JSON.stringify(carol.body));
    yMember.userId = carol.body.userId;
    const code = await h.request('POST', '/v1/device/code', { body: { label: 'carol-laptop' } });
    const approved = await h.request('POST', '/v1/device/approve', { cookie: sessionCookie(carol.headers)!, body: { user_code: code.body.user_code, workspaceId: y.workspaceId } });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const carolAgent = await h.request('POST', '/v1/device/token', { body: { device_code: code.body.device_code } });
    assert.equal(carolAgent.status, 200, JSON.stringify(carolAgent.body));
    yMember.agentId = carolAgent.body.agentId;

    const invitation = await h.request('POST', `/v1/workspaces/${y.workspaceId}/invites`, { cookie: bob.cookie, body: { email: Y_INVITEE } });
    assert.equal(invitation.status, 202, JSON.stringify(invitation.body));
    y.invitationId = invitation.body.id;

    const yLinkAnswer = await h.request('POST', '/v1/links', { headers: { authorization: `Bearer ${y.apiKey}` }, body: { service: Y_SERVICE, expiresIn: '7d' } });
    assert.equal(yLinkAnswer.status, 201, JSON.stringify(yLinkAnswer.body));
    Object.assign(yLink, { id: yLinkAnswer.body.link.id, token: yLinkAnswer.body.token, prefix: yLinkAnswer.body.link.prefix });

    // X: a signed-in owner, an API key of X and an enrolled agent of X.
    const alice = await h.signIn('alice-caller@example.com');
    Object.assign(x, { workspaceId: alice.workspaceId, userId: alice.userId, cookie: alice.cookie });
    const xKey = await h.request('POST', '/v1/api-keys', { cookie: alice.cookie, body: { name: 'caller key' } });
    x.apiKey = xKey.body.key;
    const enrolX = await h.request('POST', '/v1/agents/enroll', { headers: { authorization: `Bearer ${x.apiKey}` }, body: { label: 'caller-agent' } });
    x.agentToken = enrolX.body.token;
    assert.notEqual(x.workspaceId, y.workspaceId);
    await new Promise((r) => setTimeout(r, 200)); // Y's connect is recorded after the handshake
    ySnapshot = await snapshot();
  });

  after(async () => {
    await yAgent?.close();
    await h?.dispose();
  });

  test('every registered route has a case, and every case a route', () => {
    const routes = new Set(h.hub.routes);
    const missing = [...routes].filter((r) => !(r in CASES));
    const stale = Object.keys(CASES).filter((r) => !routes.has(r));
    assert.deepEqual(missing, [], `routes without a cross-workspace case: add them to CASES in ${import.meta.url}`);
    assert.deepEqual(stale, [], 'cases for routes that no longer exist');
  });

  for (const route of Object.keys(CASES)) {
    test(`${route}: workspace X learns nothing of Y and changes nothing`, async () => {
      for (const who of WHO) {
        await CASES[route]!(who);
        assert.equal(await snapshot(), ySnapshot, `${route} as ${who} changed workspace Y`);
      }
    });
  }

  /** Every control operation, by name or id of Y's objects; typed so that a new op does not compile without a case. */
  const OPS: Record<ControlOp, (agent: RawAgent) => Promise<void>> = {
    resolve: async (agent) => sameReply(agent, 'resolve', { name: Y_SERVICE }, { name: 'no-such-db' }, [Y_SERVICE, 'no-such-db']),
    reach: async (agent) => sameReply(agent, 'reach', { name: Y_SERVICE, localPort: 5432 }, { name: 'no-such-db', localPort: 5432 }, [Y_SERVICE, 'no-such-db']),
    unexpose: async (agent) => sameReply(agent, 'unexpose', { name: Y_SERVICE }, { name: 'no-such-db' }, [Y_SERVICE, 'no-such-db']),
    unreach: async (agent) => {
      const m = uuid();
      await sameReply(agent, 'unreach', { tunnelId: y.tunnelId }, { tunnelId: m }, [y.tunnelId, m]);
    },
    list: async (agent) => {
      const reply = await agent.request('list', {});
      assert.ok(reply.ok);
      for (const mark of yMarks()) assert.ok(!JSON.stringify(reply).includes(mark), `list revealed ${mark}`);
    },
    access: async (agent) => {
      // A report about a share X does not own is refused like one about a share that does not exist; Y's audit
      // log is unchanged (the snapshot after each case).
      const m = uuid();
      const hidden = y.shareId || uuid();
      const report = (shareId: string) => ({ shareId, service: 'api', method: 'GET', path: '/', status: 200 });
      await sameReply(agent, 'access', report(hidden), report(m), [hidden, m]);
    },
    health: async (agent) => {
      // A health report about Y's service: refused like one about a service that does not exist; nothing stored.
      const report = (service: string) => ({ service, ok: true, checks: [{ name: 'tcp', ok: true, detail: 'accepts connections' }] });
      await sameReply(agent, 'health', report(Y_SERVICE), report('no-such-db'), [Y_SERVICE, 'no-such-db']);
    },
    advertise: async (agent) => {
      // X's agent's own direct port: accepted, and the answer says nothing of Y; withdrawn again (port 0).
      for (const args of [{ port: 7000, addrs: ['10.1.2.3'] }, { port: 0, addrs: [] }]) {
        const reply = await agent.request('advertise', args);
        assert.equal(reply.ok, true, JSON.stringify(reply));
        for (const mark of yMarks()) assert.ok(!JSON.stringify(reply).includes(mark), `advertise revealed ${mark}`);
      }
    },
    direct: async (agent) => {
      // A ticket for Y's service, by its name or through a share X never joined: refused like a missing service.
      await sameReply(agent, 'direct', { name: Y_SERVICE }, { name: 'no-such-db' }, [Y_SERVICE, 'no-such-db']);
      await sameReply(agent, 'direct', { name: `y-alias/${Y_SERVICE}` }, { name: `y-alias/no-such-db` }, [Y_SERVICE, 'no-such-db']);
    },
    direct_report: async (agent) => {
      const report = (service: string, shareId?: string) => ({ streams: [{ from: y.agentId, service, ...(shareId ? { shareId } : {}), openedAt: Date.now(), ms: 5, bytesIn: 1, bytesOut: 2 }] });
      // Streams of Y's service: refused like those of a service that does not exist; no traffic, no audit row in Y.
      await sameReply(agent, 'direct_report', report(Y_SERVICE), report('no-such-db'), [Y_SERVICE, 'no-such-db']);
      // Streams of X's own service through Y's share: refused like a missing share.
      assert.equal((await agent.request('expose', { name: 'x-own-db', target: '127.0.0.1:9' })).ok, true);
      const m = uuid();
      await sameReply(agent, 'direct_report', report('x-own-db', y.shareId), report('x-own-db', m), [y.shareId, m]);
      await agent.request('unexpose', { name: 'x-own-db' });
    },
    path: async (agent) => {
      // What X's agent says of its own paths: taken alike for any name, and the answer says nothing of Y.
      const a = await agent.request('path', { name: Y_SERVICE, mode: 'relay', reason: 'testing' });
      const b = await agent.request('path', { name: 'no-such-db', mode: 'relay', reason: 'testing' });
      assert.equal(JSON.stringify({ ...a, id: 0 }), JSON.stringify({ ...b, id: 0 }));
      for (const mark of yMarks()) assert.ok(!JSON.stringify(a).includes(mark), `path revealed ${mark}`);
    },
    expose: async (agent) => {
      // Y's name is free in X: exposing it succeeds like any unused name and takes nothing from Y.
      const hidden = await agent.request('expose', { name: Y_SERVICE, target: '127.0.0.1:9' });
      const missing = await agent.request('expose', { name: 'no-such-db', target: '127.0.0.1:9' });
      assert.equal(hidden.ok, true, JSON.stringify(hidden));
      assert.equal(missing.ok, true, JSON.stringify(missing));
      for (const mark of yMarks().filter((m) => m !== Y_SERVICE)) assert.ok(!JSON.stringify(hidden).includes(mark), `expose revealed ${mark}`);
      await agent.request('unexpose', { name: Y_SERVICE });
      await agent.request('unexpose', { name: 'no-such-db' });
    },
  };

  async function sameReply(agent: RawAgent, op: ControlOp, hiddenArgs: Record<string, unknown>, missingArgs: Record<string, unknown>, [yRef, mRef]: [string, string]) {
    const a = await agent.request(op, hiddenArgs);
    const b = await agent.request(op, missingArgs);
    assert.equal(a.ok, false, `${op} must fail`);
    const norm = (m: HubMessage, ref: string) => JSON.stringify({ ...m, id: 0 }).replaceAll(ref, '<REF>');
    assert.equal(norm(a, yRef), norm(b, mRef), op);
    for (const mark of yMarks().filter((m) => m !== yRef)) assert.ok(!JSON.stringify(a).includes(mark), `${op} revealed ${mark}`);
  }

  test('every control operation and a stream OPEN on an agent of X: Y answers like a missing object', async () => {
    const agent = await connectAgent(h.hub.url, x.agentToken, 'caller-agent');
    try {
      const hidden = await agent.open(1, Y_SERVICE);
      const missing = await agent.open(3, 'no-such-db');
      assert.equal(hidden.type, FrameType.OPEN_ERROR);
      assert.deepEqual(parseErrorPayload(hidden.payload), { code: 'SERVICE_NOT_FOUND', message: `Service not found: ${Y_SERVICE}` });
      assert.equal(hidden.payload.toString().replace(Y_SERVICE, '<REF>'), missing.payload.toString().replace('no-such-db', '<REF>'));
      for (const [op, run] of Object.entries(OPS)) {
        await run(agent);
        assert.equal(await snapshot(), ySnapshot, `${op} changed workspace Y`);
      }
      assert.equal(agent.ws.readyState, agent.ws.OPEN, 'refusals do not end the connection');
    } finally {
      await agent.close();
    }
    // Y's agent still routes its service, and Y's key still works.
    assert.equal(yAgent.ws.readyState, yAgent.ws.OPEN);
    const own = await fetch(`${h.hub.url}/v1/services`, { headers: { authorization: `Bearer ${y.apiKey}` } });
    const services = ((await own.json()) as { services: Array<{ name: string; online: boolean }> }).services;
    assert.deepEqual(services.map((s) => [s.name, s.online]), [[Y_SERVICE, true]]);
  });
});
