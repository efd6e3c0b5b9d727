-- Ordered and rate-limited endpoints (SPEC §9.3).
ALTER TABLE webhooks ADD COLUMN rate_limit_per_second INTEGER;          -- NULL: no limit
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';  -- 'none' | 'fifo'
-- Set at insert from the webhook's pacing when the delivery goes through its endpoint's
-- scheduler (a Durable Object): its position in the lane (publish order: the creation
-- time in ms, or one past the lane's last pending position if that is later; ties, from
-- one statement, by id). NULL for every other delivery, which therefore adds no entry to
-- the index below. delivery_logs has no rowid since 0008, hence a column of its own.
-- Workspace moves (0014, store::moves) copy rows with every column they have.
ALTER TABLE delivery_logs ADD COLUMN scheduled INTEGER;
-- A scheduler's lane: its endpoint's pending deliveries in publish order.
CREATE INDEX logs_lane ON delivery_logs (webhook_id, scheduled) WHERE scheduled IS NOT NULL AND status = 'pending';
