-- 015_agent_owner: the member an agent belongs to (docs/security.md, "Members and their agents").
-- agents.enrolled_by: the user who approved the agent's device code (`connect up` without an API key), set when the
-- agent redeems it (store/device-codes.ts); null for an agent enrolled with an API key, which belongs to the
-- workspace. Removing that user from the workspace revokes the agent (store/members.ts, removeMember). It names a
-- user, like magic_links.invited_by (002), and keeps naming them after they left the workspace (the revoked row says
-- whose it was). The agents table keeps its row level security (001): a workspace sees and changes this column only
-- on its own agents, so removing a member revokes nothing of another workspace. connect_app still has no grant on
-- users; the reference is checked as the table owner.
alter table agents add column enrolled_by uuid references users(id) on delete set null;
create index agents_enrolled_by on agents(workspace_id, enrolled_by) where enrolled_by is not null;
