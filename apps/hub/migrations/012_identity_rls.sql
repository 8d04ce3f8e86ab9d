-- 012_identity_rls: row level security on the last three tables that have a workspace_id column.
-- magic_links, device_codes and setup_links are looked up by their secret before any workspace is known, so the hub
-- reads and writes them only in owner transactions (store/system.ts, withCredentials) and connect_app has no grant on
-- them (002, 011). They still name a workspace (an invitation's, an approved device's, a setup link's), so they get
-- the rule every workspace table has: RLS enabled and forced and a policy on app.workspace_id. Should connect_app
-- ever be granted one of them, it sees and writes only its own workspace's rows; a login link or an unapproved
-- device code (workspace_id null) is visible to no workspace. Still no grant here.

alter table magic_links enable row level security;
alter table magic_links force row level security;
create policy magic_links_isolation on magic_links
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());

alter table device_codes enable row level security;
alter table device_codes force row level security;
create policy device_codes_isolation on device_codes
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());

alter table setup_links enable row level security;
alter table setup_links force row level security;
create policy setup_links_isolation on setup_links
  using (workspace_id = current_workspace_id()) with check (workspace_id = current_workspace_id());
