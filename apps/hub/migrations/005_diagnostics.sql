-- 005_diagnostics: health reports of services, sent by their exposing agents (`health` control op).
-- History is bounded by the hub (store/diagnostics.ts): the newest reports per service, none older than 7 days.

create table diagnostics (
  -- Increasing with every report: "newest" is the highest id, even when two reports share a timestamp.
  id            bigint generated always as identity primary key,
  workspace_id  uuid not null references workspaces(id) on delete cascade,
  service_id    uuid not null,
  -- The agent that checked (the one exposing the service at the time).
  agent_id      uuid not null,
  -- By the hub's clock, when the report arrived.
  checked_at    timestamptz not null default now(),
  ok            boolean not null,
  -- [{name, ok, detail, hint?, ms?}], validated by the hub (parseHealthReport) before it is stored.
  checks        jsonb not null check (jsonb_typeof(checks) = 'array'),
  foreign key (workspace_id, service_id) references services(workspace_id, id) on delete cascade,
  foreign key (workspace_id, agent_id) references agents(workspace_id, id) on delete cascade
);
create index diagnostics_service on diagnostics(service_id, id desc);
alter table diagnostics enable row level security;
alter table diagnostics force row level security;
create policy diagnostics_isolation on diagnostics
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
grant select, insert, delete on diagnostics to connect_app;
