-- 014_direct_paths: direct paths between agents (docs/direct.md).
-- deployment.ticket_key: the Ed25519 private key (PKCS#8 DER) every hub of this database signs direct tickets with,
-- made by the first hub that starts (store/ticket-key.ts); read by the owner role only, like the rest of the table.
alter table deployment add column ticket_key bytea;
-- agents.direct_*: what the agent's live connection `direct_conn` advertised (op `advertise`): its direct port (0: it
-- takes no direct connections) and its candidate addresses with the one the hub saw it connect from, as JSON
-- [{host, port, source}]. Any hub answering `direct` for one of its services reads them here; cleared when that
-- connection closes. The agents table keeps its row level security (001); new columns need no policy of their own.
alter table agents add column direct_port integer check (direct_port is null or direct_port between 0 and 65535);
alter table agents add column direct_addrs jsonb;
alter table agents add column direct_conn uuid;
-- workspaces.direct_paths: the workspace's setting; off, the hub hands out no direct tickets for its services or to
-- its agents (PATCH /v1/workspaces/:id). Row level security as in 001.
alter table workspaces add column direct_paths boolean not null default true;
