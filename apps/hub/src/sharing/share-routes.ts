/**
 * REST API of shares: create (`connect share`), list owned and joined, revoke, and join another workspace's share
 * by its code (`connect join`). Who may: the guard's `shares.manage` and `shares.join`. A share of another
 * workspace, by id, answers exactly like a missing one; a code is shown once and kept as its hash.
 */

import { MAX_SHARE_SERVICES, MAX_SHARE_RATE, ROUTE_SCHEMAS, type JoinedShareInfo } from '@private-connect/api';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ConnectError, isUuid, parseDuration, parseMethods, parsePaths, validateServiceName } from '@private-connect/protocol';
import { actorOf } from '../auth/actor.js';
import { notFound } from '../auth/guard.js';
import { callerOf, requires } from '../auth/auth-plugin.js';
import type { AuthDeps } from '../auth/principal.js';
import { generateShareCode, hashSecret, isShareCode } from '../secrets.js';
import type { Queryable } from '../db/index.js';
import type { Actor } from '../store/api-keys.js';
import { recordAudit } from '../store/audit.js';
import { findService } from '../store/services.js';
import { withCrossWorkspace } from '../store/system.js';
import {
  aliasInUse,
  findOwnedShare,
  findShareByCode,
  insertShare,
  isExpired,
  listJoinedShares,
  listOwnedShares,
  markJoined,
  revokeShare,
  toJoinedShareInfo,
  toShareInfo,
  workspaceNames,
} from '../store/shares.js';
import type { SharingContext } from './context.js';
import { cutShareStreams, endSessions } from '../relay/cuts.js';
import { startShareSweep } from './shares.js';

/** Services one share may hold (the column's check says the same). */
export { MAX_SHARE_SERVICES };
/** The longest a share may live. */
export const MAX_SHARE_TTL_MS = 365 * 24 * 60 * 60 * 1000;
/** Highest --rate (requests or new connections per minute). */
export { MAX_SHARE_RATE };

const isUniqueViolation = (err: unknown) => (err as { code?: unknown }).code === '23505';

export function registerShareRoutes(app: FastifyInstance, deps: AuthDeps, sharing: SharingContext): void {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  // Who is asking, and whether they may, is settled in onRequest (requires), before the body is validated.

  // Streams of a share that expired (or was revoked on another hub) are cut within SHARE_SWEEP_MS (config).
  const sweep = startShareSweep(sharing, sharing.config.shareSweepMs);
  app.addHook('onClose', async () => sweep.stop());

  api.post('/v1/shares', { schema: ROUTE_SCHEMAS['POST /v1/shares'], onRequest: requires('shares.manage') }, async (request, reply) => {
    const principal = callerOf(request);
    const body = request.body;
    const name = validateServiceName(body.name);
    const services = [...new Set(body.services.map(validateServiceName))];
    const ttl = parseDuration(body.expiresIn);
    if (ttl > MAX_SHARE_TTL_MS) throw new ConnectError('BAD_REQUEST', `a share lives at most 365 days; "${body.expiresIn}" is longer`);
    const methods = parseMethods(body.methods);
    const paths = parsePaths(body.paths);
    const code = generateShareCode();
    const now = deps.clock.now();
    const actor = actorOf(principal, request);
    try {
      const row = await deps.db.withWorkspace(principal.workspaceId, async (tx) => {
        for (const service of services) {
          const found = await findService(tx, service);
          if (!found) throw notFound('service', service);
          if ((methods || paths) && found.protocol !== 'http') {
            throw new ConnectError('HTTP_ONLY_LIMIT', `"${service}" is a TCP service: --methods and --paths limit HTTP services only (expose it with --http, or share it without them)`);
          }
        }
        const share = await insertShare(tx, {
          workspaceId: principal.workspaceId,
          name,
          codeHash: hashSecret(code),
          codePrefix: code.slice(0, 8),
          services,
          methods,
          paths,
          ratePerMin: body.rate,
          createdBy: { type: actor.type, id: actor.id },
          now,
          expiresAt: new Date(now.getTime() + ttl),
        });
        await recordAudit(tx, principal.workspaceId, {
          actorType: actor.type,
          actorId: actor.id,
          action: 'share.create',
          targetType: 'share',
          targetId: share.id,
          ip: actor.ip,
          userAgent: actor.userAgent,
          metadata: { name, services, methods: methods ?? null, paths: paths ?? null, rate: body.rate ?? null, expiresAt: share.expires_at },
        });
        return share;
      });
      void reply.status(201);
      return { share: toShareInfo(row, now), code };
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConnectError('SHARE_NAME_TAKEN', `a share named "${name}" is still live (or expired but not revoked); revoke it or choose another name`);
      throw err;
    }
  });

  api.get('/v1/shares', { schema: ROUTE_SCHEMAS['GET /v1/shares'], onRequest: requires('shares.manage', 'shares.join') }, async (request) => {
    const principal = callerOf(request);
    const now = deps.clock.now();
    const owned = await deps.db.withWorkspace(principal.workspaceId, (tx) => listOwnedShares(tx));
    // The joining side's rows belong to their owners: read across workspaces, keyed on this workspace.
    const { names, joined } = await withCrossWorkspace(deps.db, async (tx) => ({
      names: await workspaceNames(tx, [...new Set(owned.flatMap((s) => (s.grantee_workspace_id ? [s.grantee_workspace_id] : [])))]),
      joined: await listJoinedShares(tx, principal.workspaceId),
    }));
    return {
      owned: owned.map((row) => toShareInfo(row, now, row.grantee_workspace_id ? names.get(row.grantee_workspace_id) : undefined)),
      joined: joined.map((row) => toJoinedShareInfo(row, row.owner_name, now)),
    };
  });

  api.delete('/v1/shares/:id', { schema: ROUTE_SCHEMAS['DELETE /v1/shares/:id'], onRequest: requires('shares.manage') }, async (request, reply) => {
    const principal = callerOf(request);
    const id = request.params.id;
    const actor = actorOf(principal, request);
    const revoked = isUuid(id)
      ? await deps.db.withWorkspace(principal.workspaceId, async (tx) => {
          const share = await findOwnedShare(tx, id);
          if (!share) return undefined;
          // Revoking again is harmless: no second event.
          if (await revokeShare(tx, id, deps.clock.now())) {
            await recordAudit(tx, principal.workspaceId, {
              actorType: actor.type,
              actorId: actor.id,
              action: 'share.revoke',
              targetType: 'share',
              targetId: id,
              ip: actor.ip,
              userAgent: actor.userAgent,
              metadata: { name: share.name, grantee: share.grantee_workspace_id, alias: share.grantee_alias },
            });
          }
          return share;
        })
      : undefined;
    if (!revoked) throw notFound('share', id);
    // Open streams through it end now, on this hub and (told over NATS) on the others; each hub's sweep is the backstop.
    cutShareStreams(sharing.connections, id, 'SHARE_REVOKED', `the share "${revoked.grantee_alias ?? revoked.name}" was revoked by its owner`);
    sharing.cluster?.revoked('share', id);
    // The exposing agents drop the sessions openers made through it.
    const sessions = { workspaceId: principal.workspaceId, shareId: id, services: revoked.services, reason: 'the share was revoked by its owner' };
    endSessions(sharing.connections, sessions);
    sharing.cluster?.endSessions(sessions);
    return reply.status(204).send(null);
  });

  api.post('/v1/shares/join', { schema: ROUTE_SCHEMAS['POST /v1/shares/join'], onRequest: requires('shares.join') }, async (request, reply) => {
    const principal = callerOf(request);
    const body = request.body;
    const alias = body.alias === undefined ? undefined : validateServiceName(body.alias);
    if (!isShareCode(body.code)) throw unknownCode();
    const now = deps.clock.now();
    const actor = actorOf(principal, request);
    try {
      const joined = await withCrossWorkspace(deps.db, (tx) => joinByCode(tx, principal.workspaceId, body.code, alias, now, actor));
      void reply.status(201);
      return joined;
    } catch (err) {
      if (isUniqueViolation(err)) throw aliasTaken(alias ?? 'that name');
      throw err;
    }
  });
}

const unknownCode = () => new ConnectError('NOT_FOUND', 'Share not found: no share has this code; check it, or ask its owner for a new one');

/**
 * SYSTEM ROLE (the share belongs to its owner): joins the share with `code` for `workspaceId` under `alias` (default:
 * the share's name), writes share.join in both workspaces' logs, and returns the joiner's view of the share.
 */
async function joinByCode(tx: Queryable, workspaceId: string, code: string, alias: string | undefined, now: Date, actor: Actor): Promise<JoinedShareInfo> {
  const share = await findShareByCode(tx, hashSecret(code));
  if (!share) throw unknownCode();
  if (share.workspace_id === workspaceId) throw new ConnectError('BAD_REQUEST', 'this share belongs to your own workspace: reach its services by their names');
  if (share.grantee_workspace_id) {
    // The code is spent; who used it is the owner's business.
    throw new ConnectError('SHARE_ALREADY_JOINED', share.grantee_workspace_id === workspaceId ? `your workspace already joined this share as "${share.grantee_alias}"` : undefined);
  }
  if (share.revoked_at) throw new ConnectError('SHARE_REVOKED', 'this share was revoked by its owner; ask them for a new one');
  if (isExpired(share, now)) throw new ConnectError('SHARE_EXPIRED', `this share expired at ${new Date(share.expires_at).toISOString()}; ask its owner for a new one`);
  const name = alias ?? share.name;
  if (await aliasInUse(tx, workspaceId, name)) throw aliasTaken(name);
  const row = await markJoined(tx, share.id, workspaceId, name, now);
  if (!row) throw new ConnectError('SHARE_ALREADY_JOINED');
  const names = await workspaceNames(tx, [share.workspace_id, workspaceId]);
  const ownerName = names.get(share.workspace_id) ?? '';
  const event = { action: 'share.join', targetType: 'share', targetId: share.id, ip: actor.ip, userAgent: actor.userAgent };
  // In both logs: the owner sees who joined; the joiner sees what it let in.
  await recordAudit(tx, share.workspace_id, { ...event, actorType: 'share', actorId: workspaceId, metadata: { name: share.name, grantee: workspaceId, granteeName: names.get(workspaceId) ?? '', alias: name } });
  await recordAudit(tx, workspaceId, { ...event, actorType: actor.type, actorId: actor.id, metadata: { name: share.name, alias: name, services: share.services, owner: ownerName } });
  return toJoinedShareInfo(row, ownerName, now);
}

function aliasTaken(alias: string): ConnectError {
  return new ConnectError('SHARE_NAME_TAKEN', `your workspace already has a share called "${alias}"; join with --as <another name>`);
}
