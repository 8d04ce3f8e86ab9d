/**
 * A sign-in through a magic link, as one owner transaction: the link is used, the user found or created, a setup
 * link claimed or an invitation accepted, and the session opened, all or nothing (a failure leaves the link
 * unused). Users, sessions and links are not workspace data, hence withCredentials.
 */

import type { Database } from '../db/index.js';
import { recordAudit } from './audit.js';
import { consumeMagicLink } from './magic-links.js';
import { addMember } from './members.js';
import { claimSetupLink, makeOwner, setSetupLinkUser } from './setup-links.js';
import { createSession } from './sessions.js';
import { withCredentials } from './system.js';
import { findOrCreateUser, type RequestMeta } from './users.js';

/** What a sign-in made: the session's cookie value, the user, and the workspace the link was for (if any). */
export interface LinkSignIn {
  session: string;
  userId: string;
  email: string;
  /** The setup link's or invitation's workspace; undefined for a plain login link. */
  workspaceId: string | undefined;
  newUser: boolean;
}

/** Uses the sign-in link `token` and opens a session, in one transaction. */
export async function signInWithLink(db: Database, token: string, now: Date, meta: RequestMeta): Promise<LinkSignIn> {
  return withCredentials(db, async (tx) => {
    const link = await consumeMagicLink(tx, token, now);
    // A setup sign-in: the setup link is used up here too, and a new user's default workspace is the one it owns.
    const setupWorkspace = link.setupLinkId ? await claimSetupLink(tx, link.setupLinkId, now) : undefined;
    const user = await findOrCreateUser(tx, link.email, now, meta, setupWorkspace);
    let workspaceId: string | undefined;
    if (link.setupLinkId && setupWorkspace) {
      workspaceId = setupWorkspace;
      await setSetupLinkUser(tx, link.setupLinkId, user.id);
      await makeOwner(tx, setupWorkspace, user, now, { actorType: 'user', actorId: user.id, ...meta, via: 'setup' });
    }
    if (link.purpose === 'invite' && link.workspaceId && link.role) {
      workspaceId = link.workspaceId;
      if (await addMember(tx, link.workspaceId, user.id, link.role, now)) {
        await recordAudit(tx, link.workspaceId, { actorType: 'user', actorId: user.id, action: 'member.add', targetType: 'user', targetId: user.id, ...meta, metadata: { email: user.email, role: link.role, via: 'invite' } });
      }
    }
    await tx.query('update users set last_login_at = $2 where id = $1', [user.id, now]);
    const session = await createSession(tx, user.id, now, meta);
    return { session, userId: user.id, email: user.email, workspaceId, newUser: user.created };
  });
}
