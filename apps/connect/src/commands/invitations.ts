/**
 * `connect invitations`: the workspace's pending invitations (sent, not yet accepted, revoked or expired), and
 * `connect invitations revoke <id|email>`, which withdraws one (or every pending one to that address) so that its
 * link is refused. Both need an API key of the workspace (or an admin): an agent token is refused by the hub.
 */

import { ConnectError, isUuid } from '@private-connect/protocol';
import type { InvitationInfo } from '@private-connect/api';
import type { ApiClient } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { hubApi, type HubApiOptions } from '../hub-api.js';
import { color, table } from '../output.js';

const when = (iso: string) => iso.slice(0, 16).replace('T', ' ') + ' UTC';

/** The client and the workspace it acts in: an API key belongs to exactly one, which /v1/me names. */
async function workspaceApi(ctx: Context, options: HubApiOptions, what: string): Promise<{ api: ApiClient; workspaceId: string }> {
  const api = await hubApi(ctx, options, what);
  return { api, workspaceId: (await api.me()).workspaceId };
}

export async function listInvitations(ctx: Context, options: HubApiOptions): Promise<number> {
  const { api, workspaceId } = await workspaceApi(ctx, options, 'listing invitations');
  const invitations = await api.invitations(workspaceId);
  const human =
    invitations.length === 0
      ? 'no pending invitations'
      : table(
          ['ID', 'EMAIL', 'ROLE', 'INVITED BY', 'SENT', 'EXPIRES'],
          invitations.map((i) => [i.id, i.email, i.role, i.invitedBy ?? '(API key)', when(i.createdAt), when(i.expiresAt)]),
        );
  ctx.out.result({ invitations }, human);
  return 0;
}

/** The pending invitations `ref` names: an id, the start of one, or an email address (all of its invitations). */
function pick(invitations: InvitationInfo[], ref: string): InvitationInfo[] {
  if (ref.includes('@')) return invitations.filter((i) => i.email === ref.trim().toLowerCase());
  return invitations.filter((i) => i.id.startsWith(ref.toLowerCase()));
}

export async function revokeInvitationCommand(ctx: Context, ref: string, options: HubApiOptions): Promise<number> {
  const { api, workspaceId } = await workspaceApi(ctx, options, 'revoking an invitation');
  let targets: Array<Pick<InvitationInfo, 'id' | 'email'>> = [{ id: ref, email: '' }];
  if (!isUuid(ref)) {
    targets = pick(await api.invitations(workspaceId), ref);
    if (targets.length === 0) throw new ConnectError('NOT_FOUND', `Invitation not found: ${ref.slice(0, 80)} (connect invitations lists the pending ones)`);
    if (!ref.includes('@') && targets.length > 1) throw new ConnectError('BAD_REQUEST', `"${ref}" starts ${targets.length} invitation ids; give more of the id`);
  }
  for (const target of targets) await api.revokeInvitation(workspaceId, target.id);
  const names = targets.map((t) => (t.email ? `${t.email} (${t.id})` : t.id)).join(', ');
  ctx.out.result({ revoked: targets.map((t) => t.id) }, `${color.green('✓')} revoked the invitation${targets.length > 1 ? 's' : ''} ${names}; the link is refused from now on`);
  return 0;
}
