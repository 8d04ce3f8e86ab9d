/** Service shares across workspaces (OWNED BY THE SHARES WORK): resolving `share/service` opens, revocation. */

import { ConnectError } from '@private-connect/protocol';
import type { AgentConnection } from '../relay/agent-connection.js';
import type { SharingContext } from './context.js';

/** Opens `conn`'s stream `id` to `alias/service` through a share its workspace joined, or refuses it. */
export async function openShared(_sharing: SharingContext, conn: AgentConnection, id: number, name: string): Promise<void> {
  conn.refuseOpen(id, 'SERVICE_NOT_FOUND', `Service not found: ${name.slice(0, 80)}`);
}

/** The exposing agent reports one HTTP request through a share (control op `access`) for the owner's audit log. */
export async function reportAccess(_sharing: SharingContext, _conn: AgentConnection, args: Record<string, unknown>): Promise<Record<string, never>> {
  throw new ConnectError('NOT_FOUND', `Share not found: ${String(args.shareId).slice(0, 80)}`);
}
