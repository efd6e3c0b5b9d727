-- The publish fan-out without a temporary table (SPEC §9.1). An `INSERT INTO
-- delivery_logs … SELECT` whose select reads `delivery_logs` (the lane position of a
-- scheduled webhook, store::schedule) is first copied into a temporary table by SQLite:
-- one more row read per delivery, for every webhook, paced or not. The fan-out is now two
-- inserts: one over the webhooks that are not paced (no read of `delivery_logs`), one
-- over those that are, found through this index (which holds none on most workspaces:
-- no entry, no write, for a webhook with neither ordering nor a rate limit).
CREATE INDEX IF NOT EXISTS webhooks_paced ON webhooks (workspace_id)
  WHERE ordering = 'fifo' OR rate_limit_per_second IS NOT NULL;
