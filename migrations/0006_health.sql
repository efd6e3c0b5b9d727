-- Endpoint health and recovery (SPEC §8.4).
-- A webhook's health lives on its row: the consumer reads it in the claim batch and
-- writes it in the record batch, guarded by `health_version` (a concurrent writer makes
-- the guard fail and the consumer re-applies its outcomes to the fresh row).
ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;       -- first failure since the last success
ALTER TABLE webhooks ADD COLUMN last_success_at INTEGER;
ALTER TABLE webhooks ADD COLUMN last_failure_at INTEGER;
ALTER TABLE webhooks ADD COLUMN breaker_open_until INTEGER;  -- NULL: closed; past: half-open
ALTER TABLE webhooks ADD COLUMN breaker_opens INTEGER NOT NULL DEFAULT 0;  -- opens since the last success
ALTER TABLE webhooks ADD COLUMN probe_token TEXT;            -- the consumer probing a half-open breaker
ALTER TABLE webhooks ADD COLUMN probe_until INTEGER;         -- ... until its lease ends
ALTER TABLE webhooks ADD COLUMN health_version INTEGER NOT NULL DEFAULT 0;

-- Recover: which recovery created a redelivery. One redelivery per original per
-- recovery, however often a chunk is retried.
ALTER TABLE delivery_logs ADD COLUMN recover_job TEXT;
CREATE UNIQUE INDEX logs_recovered ON delivery_logs (redelivery_of, recover_job) WHERE recover_job IS NOT NULL;
-- Recover walks a webhook's failed deliveries by the time they ended.
CREATE INDEX logs_failed_by_webhook ON delivery_logs (webhook_id, updated_at, id) WHERE status = 'failed';
-- Stats: counts and series by status over a window, and the join to attempts, from the
-- index alone.
CREATE INDEX logs_stats ON delivery_logs (webhook_id, created_at, status, id);
