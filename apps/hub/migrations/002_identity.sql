-- 002_identity: users, workspace membership, sessions, magic links, device codes.
-- users, sessions, magic_links and device_codes are NOT workspace-scoped: a person exists before any workspace is
-- known, and a session, link or device code is looked up by its secret. They are reached only through withSystem in the hub's identity
-- store modules (store/users.ts, sessions.ts, magic-links.ts, device-codes.ts), never as connect_app: connect_app gets
-- no grant on them at all, so a workspace transaction cannot read another person's email, session or link.
-- workspace_members is workspace-scoped like every table of 001: RLS enabled and forced, policy, then the grant.
-- Every time column that drives a decision (expiry, inactivity, single use) is written from the hub's clock,
-- passed as a parameter; no default now() on those.

create table users (
  id             uuid primary key default gen_random_uuid(),
  email          text not null unique check (email = lower(email) and length(email) between 3 and 254),
  created_at     timestamptz not null,
  last_login_at  timestamptz,
  -- The workspace created at first sign-in: the default one when no X-Workspace-Id is sent.
  personal_workspace_id  uuid references workspaces(id) on delete set null
);

create table workspace_members (
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  user_id       uuid not null references users(id) on delete cascade,
  role          text not null check (role in ('owner', 'admin', 'member')),
  created_at    timestamptz not null,
  primary key (workspace_id, user_id)
);
create index workspace_members_user on workspace_members(user_id);
alter table workspace_members enable row level security;
alter table workspace_members force row level security;
create policy workspace_members_isolation on workspace_members
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update, delete on workspace_members to connect_app;

-- A browser session: the cookie holds the secret, the table its SHA-256. It ends when revoked (logout) or when
-- last_seen_at is older than the inactivity limit; last_seen_at moves forward on use, at most once a minute.
create table sessions (
  id            uuid primary key default gen_random_uuid(),
  token_hash    bytea not null unique,
  user_id       uuid not null references users(id) on delete cascade,
  created_at    timestamptz not null,
  last_seen_at  timestamptz not null,
  revoked_at    timestamptz,
  ip            text,
  user_agent    text
);
create index sessions_user on sessions(user_id);

-- A sign-in or invitation link: single use (used_at), short-lived (expires_at). An invitation names the workspace
-- and the role the invitee gets; a login link names neither.
create table magic_links (
  id            uuid primary key default gen_random_uuid(),
  token_hash    bytea not null unique,
  email         text not null check (email = lower(email)),
  purpose       text not null check (purpose in ('login', 'invite')),
  workspace_id  uuid references workspaces(id) on delete cascade,
  role          text check (role in ('admin', 'member')),
  invited_by    uuid references users(id) on delete set null,
  created_at    timestamptz not null,
  expires_at    timestamptz not null,
  used_at       timestamptz,
  check ((purpose = 'invite') = (workspace_id is not null and role is not null))
);

-- `connect up` without credentials (device-code flow, RFC 8628): the agent holds device_code (stored as SHA-256),
-- a signed-in user types user_code and picks the workspace; the next poll enrols the agent there, once.
create table device_codes (
  id                uuid primary key default gen_random_uuid(),
  device_code_hash  bytea not null unique,
  user_code         text not null unique check (user_code ~ '^[A-Z]{4}-[A-Z]{4}$'),
  label             text check (length(label) between 1 and 128),
  hostname          text,
  platform          text,
  created_at        timestamptz not null,
  expires_at        timestamptz not null,
  approved_at       timestamptz,
  approved_by       uuid references users(id) on delete cascade,
  workspace_id      uuid references workspaces(id) on delete cascade,
  used_at           timestamptz,
  check ((approved_at is null) = (workspace_id is null))
);
