-- 010_audit_ids: audit events are known outside the database by a random id, and pages go newest first by time.
-- The bigint identity is shared by every workspace, so the gap between two of one workspace's ids counted the
-- events of all the others in between; it stays as the internal tie-break of the order and is never shown.
-- public_id is what the API answers as an event's id and takes back as the page cursor (`before`).
alter table audit_log add column public_id uuid not null default gen_random_uuid();
create unique index audit_log_workspace_public_id on audit_log(workspace_id, public_id);

-- GET /v1/audit pages by (at, id) descending within one workspace: one index serves the order and the cursor.
create index audit_log_workspace_at_id on audit_log(workspace_id, at desc, id desc);
drop index audit_log_workspace_id;
drop index audit_log_workspace_at;
