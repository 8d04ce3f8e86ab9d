/** Members of the workspace, invitations by email (the hub mails a magic link) and, for admins, the pending ones. */

import type { InviteRequest, MemberInfo } from '@private-connect/api';
import { useState, type FormEvent } from 'react';
import { request } from '../api.js';
import { FormError, ListState, formatTime } from '../components.js';
import { useSession } from '../workspace.js';
import { useResource } from '../use-resource.js';
import { PendingInvitations } from './pending-invitations.js';

type Member = MemberInfo;

export function MembersPage() {
  const { current, me } = useSession();
  const admin = current.role === 'owner' || current.role === 'admin';
  const [removeError, setRemoveError] = useState<Error | null>(null);
  const id = current.id;
  const members = useResource(() => request('GET /v1/workspaces/:id/members', { params: { id } }).then((r) => r.members), id);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<NonNullable<InviteRequest['role']>>('member');
  const [error, setError] = useState<Error | null>(null);
  const [sent, setSent] = useState<string | null>(null);
  // Bumped when an invitation is sent or a member removed (which revokes theirs): the pending list reloads.
  const [invitationsVersion, setInvitationsVersion] = useState(0);
  const invitationsChanged = () => setInvitationsVersion((v) => v + 1);
  const invite = (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSent(null);
    request('POST /v1/workspaces/:id/invites', { params: { id }, body: { email: email.trim(), role } }).then(
      (answer) => {
        setSent(answer.email);
        setEmail('');
        invitationsChanged();
      },
      setError,
    );
  };
  const remove = (member: Member) => {
    if (!window.confirm(`Remove ${member.email} from ${current.name}? They lose access at once.`)) return;
    setRemoveError(null);
    request('DELETE /v1/workspaces/:id/members/:userId', { params: { id, userId: member.userId } }).then(
      () => {
        members.update((list) => list.filter((m) => m.userId !== member.userId));
        invitationsChanged();
      },
      setRemoveError,
    );
  };
  return (
    <section aria-labelledby="members-title">
      <h1 id="members-title">Members</h1>
      <form className="inline-form" onSubmit={invite} aria-label="Invite a member">
        <label>
          Email
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as NonNullable<InviteRequest['role']>)}>
            <option value="member">member</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit">Send invitation</button>
      </form>
      <FormError error={error} />
      {sent ? <p role="status">Invitation sent to {sent}.</p> : null}
      <FormError error={removeError} />
      <ListState state={members.state} retry={members.reload} isEmpty={(list) => list.length === 0} empty={<p>No members.</p>}>
        {(list) => (
          <ul className="cards" aria-label="Members">
            {list.map((m) => (
              <li key={m.userId} className="card" data-testid="member" data-email={m.email}>
                <div className="card-head">
                  <strong>{m.email}</strong>
                  <span className="badge">{m.role}</span>
                </div>
                {m.joinedAt ? <p>Joined {formatTime(m.joinedAt)}</p> : null}
                {admin && !(me.kind === 'user' && m.email === me.email) ? (
                  <button type="button" className="danger" onClick={() => remove(m)}>Remove<span className="sr-only"> {m.email}</span></button>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </ListState>
      {admin ? <PendingInvitations workspaceId={id} workspace={current.name} version={invitationsVersion} /> : null}
    </section>
  );
}
