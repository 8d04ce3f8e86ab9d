-- 008_tunnel_hub: which hub process a tunnel (a reach session) was opened on. With several hubs on one database a
-- hub that dies cannot close its tunnels; the others close those of a hub they found dead, and a hub starting in a
-- cluster closes the open tunnels of hubs that are not there (the whole cluster restarted).
alter table tunnels add column hub_id uuid;
create index tunnels_open_by_hub on tunnels(hub_id) where closed_at is null;
