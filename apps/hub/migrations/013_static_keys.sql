-- 013_static_keys: each agent's X25519 static key for end-to-end sessions (base64, 32 bytes) and its identity's
-- signature binding it (base64, 64 bytes), both sent in hello and checked by the hub before they are stored. Agents
-- get them from the hub (GET /v1/agents, resolve, reach, the OPEN notice) and pin them themselves. The agents table
-- keeps its row level security (001); new columns need no policy of their own.
alter table agents add column static_key text check (static_key is null or length(static_key) = 44);
alter table agents add column static_sig text check (static_sig is null or length(static_sig) = 88);
