-- Access hardening (SPEC §8.5).

-- Test deliveries render "test": true. A column (not a join on events.source) keeps log
-- pages an index walk plus a read of the page's own rows. Redeliveries are not tests.
ALTER TABLE delivery_logs ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
UPDATE delivery_logs SET test = 1
  WHERE redelivery_of IS NULL AND event_id IN (SELECT id FROM events WHERE source = 'test');

-- Who created / last changed a webhook: the token's `sub`.
ALTER TABLE webhooks ADD COLUMN created_by TEXT;
ALTER TABLE webhooks ADD COLUMN updated_by TEXT;

-- Publish idempotency keys of the API live under `api:` so they never meet the keys the
-- service uses itself (e.g. `stripe:invoice.paid:<invoice>`); existing API keys move there.
-- The fingerprint (SHA-256 of type and canonical data) tells a replay from a misuse;
-- NULL (rows from before) is taken as a match.
UPDATE events SET idempotency_key = 'api:' || idempotency_key
  WHERE source = 'api' AND idempotency_key IS NOT NULL;
ALTER TABLE events ADD COLUMN idempotency_fingerprint TEXT;
