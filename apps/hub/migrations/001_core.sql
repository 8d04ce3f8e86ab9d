-- 001_core: workspaces, agents, agent tokens, API keys, services, tunnels, audit log.
-- Every workspace-scoped table: RLS enabled AND forced, policy on app.workspace_id, then the grant to connect_app.
-- The hub runs workspace queries as connect_app (SET LOCAL ROLE) inside withWorkspace(); app.workspace_id is set
-- with set_config(..., true) for that transaction only.
-- Foreign key checks do not see RLS, so every reference to a workspace-scoped row is composite
-- (workspace_id, id): a row can never point at another workspace's agent or service.

do $$
begin
  create role connect_app nologin;
exception when duplicate_object or unique_violation then
  null; -- roles are cluster-wide: another database (or a parallel test run) created it first
end
$$;

grant usage on schema public to connect_app;

create function current_workspace_id() returns uuid
  language sql stable
  as $$ select nullif(current_setting('app.workspace_id', true), '')::uuid $$;
grant execute on function current_workspace_id() to connect_app;

create table workspaces (
  id          uuid primary key default gen_random_uuid(),
  name        text not null check (length(name) between 1 and 128),
  created_at  timestamptz not null default now()
);
alter table workspaces enable row level security;
alter table workspaces force row level security;
create policy workspaces_isolation on workspaces
  using (id = current_workspace_id()) with check (id = current_workspace_id());
grant select, update on workspaces to connect_app;

create table agents (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  label         text not null check (length(label) between 1 and 128),
  hostname      text,
  platform      text,
  version       text,
  created_at    timestamptz not null default now(),
  last_seen_at  timestamptz,
  last_ip       text,
  revoked_at    timestamptz,
  unique (workspace_id, id)
);
create index agents_workspace on agents(workspace_id);
alter table agents enable row level security;
alter table agents force row level security;
create policy agents_isolation on agents
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update, delete on agents to connect_app;

create table agent_tokens (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  agent_id      uuid not null,
  token_hash    bytea not null unique,
  created_at    timestamptz not null default now(),
  expires_at    timestamptz not null,
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  last_ip       text,
  last_user_agent text,
  foreign key (workspace_id, agent_id) references agents(workspace_id, id) on delete cascade
);
create index agent_tokens_agent on agent_tokens(agent_id);
alter table agent_tokens enable row level security;
alter table agent_tokens force row level security;
create policy agent_tokens_isolation on agent_tokens
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update, delete on agent_tokens to connect_app;

create table api_keys (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  name          text not null check (length(name) between 1 and 128),
  prefix        text not null,
  key_hash      bytea not null unique,
  created_at    timestamptz not null default now(),
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
create index api_keys_workspace on api_keys(workspace_id);
alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy api_keys_isolation on api_keys
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update, delete on api_keys to connect_app;

create table services (
  id              uuid primary key default gen_random_uuid(),
  workspace_id    uuid not null references workspaces(id) on delete cascade,
  agent_id        uuid not null,
  name            text not null check (name ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' and length(name) <= 63),
  target_host     text not null,
  target_port     integer not null check (target_port between 1 and 65535),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  last_online_at  timestamptz,
  unique (workspace_id, name),
  unique (workspace_id, id),
  foreign key (workspace_id, agent_id) references agents(workspace_id, id) on delete cascade
);
alter table services enable row level security;
alter table services force row level security;
create policy services_isolation on services
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update, delete on services to connect_app;

create table tunnels (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  service_id    uuid not null,
  agent_id      uuid not null,
  local_port    integer not null check (local_port between 0 and 65535),
  connection_id uuid not null,
  opened_at     timestamptz not null default now(),
  closed_at     timestamptz,
  foreign key (workspace_id, service_id) references services(workspace_id, id) on delete cascade,
  foreign key (workspace_id, agent_id) references agents(workspace_id, id) on delete cascade
);
create index tunnels_open on tunnels(workspace_id) where closed_at is null;
alter table tunnels enable row level security;
alter table tunnels force row level security;
create policy tunnels_isolation on tunnels
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update, delete on tunnels to connect_app;

create table audit_log (
  id            bigint generated always as identity primary key,
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  at            timestamptz not null default now(),
  actor_type    text not null check (actor_type in ('user', 'agent', 'api_key', 'system', 'share', 'public')),
  actor_id      text,
  action        text not null,
  target_type   text,
  target_id     text,
  ip            text,
  user_agent    text,
  metadata      jsonb not null default '{}'::jsonb
);
create index audit_log_workspace_at on audit_log(workspace_id, at desc);
alter table audit_log enable row level security;
alter table audit_log force row level security;
-- The audit log is append-only for the application: select and insert, never update or delete.
create policy audit_log_isolation on audit_log
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert on audit_log to connect_app;
