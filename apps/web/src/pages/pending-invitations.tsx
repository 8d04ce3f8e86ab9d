/** The members page's list of pending invitations (admins only), each with a Revoke button. */

import type { InvitationInfo } from '@private-connect/api';
import { useState } from 'react';
import { request } from '../api.js';
import { FormError, ListState, formatTime } from '../components.js';
import { useResource } from '../use-resource.js';

/**
 * `workspaceId` is the workspace whose invitations it lists; `version` changes when the page sent an invitation or removed a member
 * (which revokes that member's invitations), so the list is loaded again.
 */
export function PendingInvitations({ workspaceId, workspace, version }: { workspaceId: string; workspace: string; version: number }) {
  const params = { id: workspaceId };
  const invitations = useResource(() => request('GET /v1/workspaces/:id/invitations', { params }).then((r) => r.invitations), `${workspaceId}#${version}`);
  const [error, setError] = useState<Error | null>(null);
  const revoke = (invitation: InvitationInfo) => {
    if (!window.confirm(`Revoke the invitation of ${invitation.email} to ${workspace}? Its link stops working at once.`)) return;
    setError(null);
    request('DELETE /v1/workspaces/:id/invitations/:invitationId', { params: { ...params, invitationId: invitation.id } }).then(
      () => invitations.update((list) => list.filter((i) => i.id !== invitation.id)),
      setError,
    );
  };
  return (
    <section aria-labelledby="invitations-title">
      <h2 id="invitations-title">Pending invitations</h2>
      <FormError error={error} />
      <ListState state={invitations.state} retry={invitations.reload} isEmpty={(list) => list.length === 0} empty={<p>No pending invitations.</p>}>
        {(list) => (
          <div className="table-wrap">
            <table aria-label="Pending invitations">
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">Invited by</th>
                  <th scope="col">Sent</th>
                  <th scope="col">Expires</th>
                  <th scope="col"><span className="sr-only">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {list.map((invitation) => (
                  <tr key={invitation.id} data-testid="invitation" data-email={invitation.email}>
                    <td>{invitation.email}</td>
                    <td>{invitation.role}</td>
                    <td>{invitation.invitedBy ?? 'an API key'}</td>
                    <td>{formatTime(invitation.createdAt)}</td>
                    <td>{formatTime(invitation.expiresAt)}</td>
                    <td>
                      <button type="button" className="danger" onClick={() => revoke(invitation)}>Revoke<span className="sr-only"> the invitation of {invitation.email}</span></button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </ListState>
    </section>
  );
}
