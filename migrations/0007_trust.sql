-- Trust, round 3 (SPEC §9.4).
-- Signatures per webhook: whether the seed's X-Webhook-Signature (no timestamp, no id)
-- is still sent, and the scheme of webhook-signature: 'hmac' (v1) or 'ed25519' (v1a).
-- An ed25519 webhook's private keys live sealed in secrets_enc; its public key (whpk_…)
-- is shown at any time, so it is kept in clear.
ALTER TABLE webhooks ADD COLUMN legacy_signature INTEGER NOT NULL DEFAULT 1;
ALTER TABLE webhooks ADD COLUMN signing TEXT NOT NULL DEFAULT 'hmac';
ALTER TABLE webhooks ADD COLUMN public_key TEXT;
-- At most one recovery per webhook at a time: the running job and until when it holds
-- the webhook (renewed by each chunk; a job that died lets go when this passes).
ALTER TABLE webhooks ADD COLUMN recover_job TEXT;
ALTER TABLE webhooks ADD COLUMN recover_until INTEGER;
-- Recover skips originals that already have a pending or successful redelivery. Partial:
-- only redeliveries pay for it, never a fan-out's deliveries.
CREATE INDEX logs_redeliveries ON delivery_logs (redelivery_of, status) WHERE redelivery_of IS NOT NULL;
