-- 009_invitations: invitations become workspace data an admin can list and revoke.
-- Until now an invitation was only a magic_links row (purpose 'invite'), which connect_app cannot read, so an admin
-- could neither see nor withdraw one, and removing a member left their other invitations working: a removed member
-- came back through an older link. The invitation itself (who, which role, by whom, pending / accepted / revoked)
-- now lives here, workspace-scoped under RLS; magic_links keeps only the secret, its expiry and its single use, and
-- names its invitation. Accepting checks the invitation in the same transaction that uses the link.

create table invitations (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  email         text not null check (email = lower(email) and length(email) between 3 and 254),
  role          text not null check (role in ('admin', 'member')),
  invited_by    uuid references users(id) on delete set null,
  created_at    timestamptz not null,
  expires_at    timestamptz not null,
  accepted_at   timestamptz,
  revoked_at    timestamptz,
  -- Why it was revoked: an admin withdrew it, or the member it was sent to or by was removed.
  revoke_reason text check (revoke_reason in ('revoked', 'member_removed')),
  unique (workspace_id, id),
  check ((revoked_at is null) = (revoke_reason is null)),
  check (accepted_at is null or revoked_at is null)
);
-- Pending invitations of a workspace, by address and by sender (listing, and revoking a removed member's).
create index invitations_pending_email on invitations(workspace_id, email) where accepted_at is null and revoked_at is null;
create index invitations_pending_sender on invitations(workspace_id, invited_by) where accepted_at is null and revoked_at is null;
alter table invitations enable row level security;
alter table invitations force row level security;
create policy invitations_isolation on invitations
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
-- No delete: a revoked or accepted invitation stays, as the audit log's target.
grant select, insert, update on invitations to connect_app;

-- Invitation links that already exist become invitations (same id), accepted when their link was used.
insert into invitations (id, workspace_id, email, role, invited_by, created_at, expires_at, accepted_at)
  select id, workspace_id, email, role, invited_by, created_at, expires_at, used_at from magic_links where purpose = 'invite';

-- An invitation link names its invitation; the composite reference keeps it in the invitation's workspace.
alter table magic_links add column invitation_id uuid;
update magic_links set invitation_id = id where purpose = 'invite';
alter table magic_links add constraint magic_links_invitation_fk
  foreign key (workspace_id, invitation_id) references invitations(workspace_id, id) on delete cascade;
alter table magic_links add constraint magic_links_invitation_check check ((purpose = 'invite') = (invitation_id is not null));
create index magic_links_invitation on magic_links(invitation_id) where invitation_id is not null;
