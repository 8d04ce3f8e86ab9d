-- 003_credentials: agent token rotation with a grace period, throttled token-use audit, audit pagination.
-- Independent of 002: it only alters tables created by 001.

-- Rotation: the old token stays valid until grace_until (hub clock + 24 h), then is refused.
-- replaced_by points at the token that superseded it (same workspace, composite reference).
alter table agent_tokens add column grace_until timestamptz;
alter table agent_tokens add column replaced_by uuid;
alter table agent_tokens add constraint agent_tokens_workspace_id_unique unique (workspace_id, id);
alter table agent_tokens add constraint agent_tokens_replaced_by_fk
  foreign key (workspace_id, replaced_by) references agent_tokens(workspace_id, id);

-- Token use is written to the audit log at most once per token per hour; this is when it last was.
alter table agent_tokens add column last_audited_at timestamptz;

-- GET /v1/audit pages by id, newest first, within one workspace.
create index audit_log_workspace_id on audit_log(workspace_id, id desc);
