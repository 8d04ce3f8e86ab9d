/** The answer for a name with no live route: offline (known in the caller's workspace) or not found, never more. */

import { ConnectError } from '@private-connect/protocol';
import { notFound } from '../auth/guard.js';
import type { Database } from '../db/index.js';
import { findService } from '../store/services.js';

/** A service that is not routed is either offline (known in this workspace) or not found: never more. */
export async function lookupMissingService(db: Database, workspaceId: string, name: string): Promise<ConnectError> {
  const row = await db.withWorkspace(workspaceId, (tx) => findService(tx, name));
  if (!row) return serviceNotFound(name);
  return new ConnectError('SERVICE_OFFLINE', `"${name}" is exposed by agent "${row.agent_label}", which is not connected right now`);
}

/** The one answer for a name that does not exist in the caller's workspace, whoever else may have it. */
export function serviceNotFound(name: string): ConnectError {
  return notFound('service', name);
}
