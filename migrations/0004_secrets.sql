-- Secrets v2 (SPEC §8.1): signing secrets and custom header values sealed at rest.
-- A SQL migration cannot encrypt (or generate random secrets), so existing rows stay as
-- they are and are read as *legacy* (enc_key_id IS NULL: `secret` and `headers` in clear)
-- until the cron seals them, a bounded number per minute, or their next write does
-- (see src/core/outbound/sealed.rs). Sealing empties the clear columns; a legacy row
-- without a secret gets a generated one then (its owner rotates to learn a secret).
ALTER TABLE webhooks ADD COLUMN secrets_enc TEXT;   -- v1:<kid>:<base64>: current + previous secrets
ALTER TABLE webhooks ADD COLUMN headers_enc TEXT;   -- v1:<kid>:<base64>: custom headers; NULL when none
ALTER TABLE webhooks ADD COLUMN enc_key_id TEXT;    -- key id of both; NULL = legacy row in clear
ALTER TABLE webhooks ADD COLUMN secret_hint TEXT;   -- "…" + last 4 characters, rendered by the API
-- The cron finds rows to (re-)seal by key id: legacy (NULL) or the previous key's id.
CREATE INDEX webhooks_by_key_id ON webhooks (enc_key_id);
