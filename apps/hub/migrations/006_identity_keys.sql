-- 006_identity_keys: each agent's Ed25519 identity public key (base64), sent in its hello, for end-to-end
-- encryption. The hub only shows it (fingerprints on the dashboard and in GET /v1/agents); agents pin it themselves.
alter table agents add column identity_key text check (identity_key is null or length(identity_key) = 44);
