/**
 * GET /v1/events: the dashboard's live view as Server-Sent Events (text/event-stream), for the principal's own
 * workspace only. A browser's EventSource cannot set headers, so a signed-in user names the workspace with
 * `?workspace=<id>` (or X-Workspace-Id); API keys work too (Authorization), agent tokens do not.
 *
 * Events, each `event: <name>\ndata: <json>\n\n`:
 *   hello    {workspaceId}                              once, on connect
 *   agent    {id, label, online, at}                    an agent connection of the workspace opened or closed
 *   service  {name, online, agentId}                    a service was exposed, unexposed, or went offline with its agent
 *   stats    {services: [{name, streams, bytesIn, bytesOut}]}   every 2 s while anything changed (events.ts)
 *   health   {name, health: {ok, checkedAt, checks}}    the exposing agent reported a check of its target
 * and a `: ping` comment every EVENTS_PING_MS. The credentials are checked again every EVENTS_RECHECK_MS and before
 * each event, stats included: a signed-out or expired session, a revoked key or a removed member ends the stream.
 * Removing a member and signing a session out end that user's streams on this hub at once
 * (endMemberEventStreams, endSessionEventStreams), without waiting for the next event or recheck.
 */

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConnectError } from '@private-connect/protocol';
import type { EventBus, HubEvent } from '../events.js';
import { authenticateRequest, type Principal, type RequestCredentials } from '../store/credentials.js';
import { SESSION_COOKIE } from '../store/sessions.js';
import { authorize, isAllowed } from '../auth/guard.js';
import type { ApiDeps } from './deps.js';
import { ROUTE_SCHEMAS } from '@private-connect/api';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

/** A `: ping` comment keeps proxies from cutting an idle stream. */
export const EVENTS_PING_MS = 15_000;
/** How often an open stream checks its credentials again. */
export const EVENTS_RECHECK_MS = 30_000;
/** Concurrent event streams per principal (user session's user, API key); one more is refused with 429. */
export const MAX_EVENT_STREAMS_PER_PRINCIPAL = 10;

/** Bytes an event stream may have queued towards a client that does not read; past it the stream is ended. */
export const MAX_EVENT_BACKLOG = 256 * 1024;

export interface EventRouteOptions {
  pingMs?: number;
  recheckMs?: number;
}

/** An open stream, as the functions that end streams see it. */
interface OpenStream {
  workspaceId: string;
  /** The signed-in user and their session cookie; undefined for an API key. */
  userId?: string;
  sessionCookie?: string;
  end(): void;
}

/** Each event bus (one per hub) → its open streams; a stream deletes its entry when it ends. */
const openStreams = new WeakMap<EventBus, Set<OpenStream>>();

function streamsOf(bus: EventBus): Set<OpenStream> {
  let streams = openStreams.get(bus);
  if (!streams) openStreams.set(bus, (streams = new Set()));
  return streams;
}

/** Ends, at once, every stream of `userId` in `workspaceId` (the member was just removed from it). */
export function endMemberEventStreams(bus: EventBus, workspaceId: string, userId: string): void {
  for (const stream of [...streamsOf(bus)]) if (stream.workspaceId === workspaceId && stream.userId === userId) stream.end();
}

/** Ends, at once, every stream opened with this session cookie (it was just signed out). */
export function endSessionEventStreams(bus: EventBus, sessionCookie: string): void {
  for (const stream of [...streamsOf(bus)]) if (stream.sessionCookie !== undefined && stream.sessionCookie === sessionCookie) stream.end();
}

function principalKey(principal: Principal): string {
  if (principal.kind === 'user') return `user:${principal.userId}`;
  if (principal.kind === 'api_key') return `key:${principal.keyId}`;
  return `agent:${principal.agentId}`;
}

/** One SSE message. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function registerEventRoutes(app: FastifyInstance, deps: ApiDeps, bus: EventBus, options: EventRouteOptions = {}): void {
  const pingMs = options.pingMs ?? EVENTS_PING_MS;
  const recheckMs = options.recheckMs ?? EVENTS_RECHECK_MS;
  /** Principal key → open streams; entries deleted when a principal's last stream ends. */
  const open = new Map<string, number>();

  app.withTypeProvider<TypeBoxTypeProvider>().get('/v1/events', { schema: ROUTE_SCHEMAS['GET /v1/events'] }, async (request, reply) => {
    const workspace = request.query.workspace || undefined;
    const principal = await request.authenticate(workspace);
    authorize(principal, 'events.read');
    const key = principalKey(principal);
    const count = open.get(key) ?? 0;
    if (count >= MAX_EVENT_STREAMS_PER_PRINCIPAL) {
      throw new ConnectError('RATE_LIMITED', `at most ${MAX_EVENT_STREAMS_PER_PRINCIPAL} event streams may be open at once for these credentials; close another dashboard tab`);
    }
    open.set(key, count + 1);
    const creds: RequestCredentials = {
      authorization: request.headers.authorization,
      sessionCookie: request.cookies?.[SESSION_COOKIE],
      workspaceHeader: workspace ?? request.headers['x-workspace-id'],
    };
    const { workspaceId } = principal;

    // The stream is written by hand from here on; Fastify no longer answers this request.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write(frame('hello', { workspaceId }));

    let ended = false;
    const handle: OpenStream = {
      workspaceId,
      ...(principal.kind === 'user' ? { userId: principal.userId, sessionCookie: creds.sessionCookie } : {}),
      end: () => end(),
    };
    /** Rechecks run one after another, and events wait for the one before them: the order is kept. */
    let chain: Promise<unknown> = Promise.resolve();
    const stillAllowed = async () => {
      try {
        const now = await authenticateRequest(deps.db, creds, deps.clock.now());
        return now.workspaceId === workspaceId && isAllowed(now, 'events.read');
      } catch {
        return false;
      }
    };
    const end = () => {
      if (ended) return;
      ended = true;
      streamsOf(bus).delete(handle);
      clearInterval(ping);
      clearInterval(recheck);
      unsubscribe();
      offClose();
      const left = (open.get(key) ?? 1) - 1;
      if (left > 0) open.set(key, left);
      else open.delete(key);
      res.end();
    };
    const send = (text: string) => {
      if (ended) return;
      res.write(text);
      if (res.writableLength > MAX_EVENT_BACKLOG) end();
    };
    const checked = (write?: () => void) => {
      chain = chain.then(async () => {
        if (ended) return;
        if (!(await stillAllowed())) return end();
        write?.();
      });
    };
    // Every event, stats too, is sent only after the credentials are checked again: a member removed on another hub
    // of a cluster (where endMemberEventStreams cannot reach this stream) hears nothing more either.
    const unsubscribe = bus.subscribe(workspaceId, (event: HubEvent) => {
      const text = frame(event.event, event.data);
      checked(() => send(text));
    });
    const offClose = bus.onClose(end);
    const ping = setInterval(() => send(': ping\n\n'), pingMs);
    const recheck = setInterval(() => checked(), recheckMs);
    request.raw.on('close', end);
    res.on('close', end);
    // Last: from here on endMemberEventStreams and endSessionEventStreams may end it.
    if (!ended) streamsOf(bus).add(handle);
  });
}
