-- 004_sharing: service shares across workspaces, public links, hub-side TCP ports, the service protocol.

-- What a service speaks. 'http' services can be given method/path limits in shares; 'tcp' ones cannot.
alter table services add column protocol text not null default 'tcp' check (protocol in ('tcp', 'http'));

-- A share: some services of the owning workspace, offered to ONE other workspace, which joins with the code.
-- Limits: methods/paths (HTTP services only, enforced by the exposing agent, which sees the requests);
-- rate_per_min (requests per minute for HTTP services, new connections per minute for TCP ones).
create table shares (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  name          text not null check (name ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' and length(name) <= 63),
  code_hash     bytea not null unique,
  code_prefix   text not null,
  services      text[] not null check (cardinality(services) between 1 and 64),
  methods       text[],
  paths         text[],
  rate_per_min  integer check (rate_per_min between 1 and 1000000),
  created_by_type text not null,
  created_by_id text,
  created_at    timestamptz not null default now(),
  expires_at    timestamptz not null,
  revoked_at    timestamptz,
  -- The workspace that joined (once joined, the code opens nothing else), and the name the share has there.
  grantee_workspace_id uuid references workspaces(id) on delete cascade,
  grantee_alias text check (grantee_alias ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' and length(grantee_alias) <= 63),
  joined_at     timestamptz,
  unique (workspace_id, id),
  check (grantee_workspace_id is null or grantee_workspace_id <> workspace_id)
);
-- An active share's name is unique in its workspace; a joined share's alias is unique in the joining one.
create unique index shares_active_name on shares(workspace_id, name) where revoked_at is null;
create unique index shares_grantee_alias on shares(grantee_workspace_id, grantee_alias) where revoked_at is null;
alter table shares enable row level security;
alter table shares force row level security;
-- The owning workspace manages its shares. The joining workspace's side (resolving alias/service) is a hub
-- lookup keyed on the caller's workspace id, run by the system role (store/shares.ts), never a row it can write.
create policy shares_isolation on shares
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update on shares to connect_app;

-- A public link: one service served over HTTP by the hub at /l/<token>/ and <token>.<PUBLIC_BASE_DOMAIN>.
create table links (
  id            uuid primary key default gen_random_uuid(),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  service_name  text not null,
  token_hash    bytea not null unique,
  token_prefix  text not null,
  methods       text[],
  paths         text[],
  rate_per_min  integer check (rate_per_min between 1 and 1000000),
  created_by_type text not null,
  created_by_id text,
  created_at    timestamptz not null default now(),
  expires_at    timestamptz not null,
  revoked_at    timestamptz,
  unique (workspace_id, id)
);
alter table links enable row level security;
alter table links force row level security;
create policy links_isolation on links
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, update on links to connect_app;

-- A TCP port on the hub for a service, from HUB_TCP_PORT_RANGE: kept across restarts, one service per port.
create table hub_ports (
  port          integer primary key check (port between 1 and 65535),
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  service_name  text not null,
  created_at    timestamptz not null default now(),
  unique (workspace_id, service_name)
);
alter table hub_ports enable row level security;
alter table hub_ports force row level security;
create policy hub_ports_isolation on hub_ports
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, delete on hub_ports to connect_app;
