-- 007_cluster: the identity of this deployment's database, shared by every hub on it. Hubs that relay to each
-- other over NATS use it as the subject namespace, so that two deployments on one NATS server never mix (and
-- hubs of one deployment find each other with no setting beyond NATS_URL). Read by the owner role only.
create table deployment (
  id         uuid primary key default gen_random_uuid(),
  singleton  boolean not null unique default true check (singleton),
  created_at timestamptz not null default now()
);
insert into deployment default values;
