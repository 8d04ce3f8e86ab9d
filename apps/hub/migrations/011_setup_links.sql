-- 011_setup_links: the one-time setup link the first start prints. Whoever opens it and signs in (a magic link of
-- purpose 'setup' that names it) becomes owner of the workspace the first start made. Like magic_links it is not
-- workspace-scoped (it is looked up by its secret, before anyone is a member): reached only through withSystem in
-- store/setup-links.ts, and connect_app gets no grant on it. The secret is stored as SHA-256 only; used_at is the
-- single-use mark, expires_at (24 h after the start) the end; both are written from the hub's clock.

create table setup_links (
  id            uuid primary key default gen_random_uuid(),
  token_hash    bytea not null unique,
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  created_at    timestamptz not null,
  expires_at    timestamptz not null,
  used_at       timestamptz,
  used_by       uuid references users(id) on delete set null
);
create index setup_links_workspace on setup_links(workspace_id);

alter table magic_links drop constraint magic_links_purpose_check;
alter table magic_links add constraint magic_links_purpose_check check (purpose in ('login', 'invite', 'setup'));
alter table magic_links add column setup_link_id uuid references setup_links(id) on delete cascade;
alter table magic_links add constraint magic_links_setup_check check ((purpose = 'setup') = (setup_link_id is not null));
