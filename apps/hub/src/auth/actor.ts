/** Who did it, for the audit log: the principal's kind and id, with the request's address and user agent. */

import type { FastifyRequest } from 'fastify';
import type { Principal } from '../store/credentials.js';
import type { Actor } from '../store/api-keys.js';

/** The audit actor of `principal` making `request`. */
export function actorOf(principal: Principal, request: FastifyRequest): Actor {
  const p = principal as { kind: string; agentId?: string; keyId?: string; userId?: string };
  const type = p.kind === 'agent' ? 'agent' : p.kind === 'api_key' ? 'api_key' : 'user';
  return { type, id: p.agentId ?? p.keyId ?? p.userId, ip: request.ip, userAgent: request.headers['user-agent'] };
}

/** The principal's kind and id alone, as the invitation and member records name who acted. */
export function principalActor(principal: Principal): { actorType: 'user' | 'api_key' | 'agent'; actorId: string } {
  if (principal.kind === 'user') return { actorType: 'user', actorId: principal.userId };
  if (principal.kind === 'api_key') return { actorType: 'api_key', actorId: principal.keyId };
  return { actorType: 'agent', actorId: principal.agentId };
}
