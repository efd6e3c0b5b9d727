-- Round 3's last cuts of a delivery's D1 cost (SPEC §9.1).
--
-- 1. A webhook's latest success travels with the rollup row its batch writes anyway: a
--    success that changes nothing else in the webhook's health no longer writes the
--    webhook row (≈ 6 rows read and 1 written per delivery of a webhook's first success
--    of a minute). Readers take the later of `webhooks.last_success_at` (written with
--    every other health change) and the newest rollup's.
ALTER TABLE webhook_rollups ADD COLUMN last_success_at INTEGER;

-- 2. The move triggers of 0014 exist only while a move needs them: every write of the
--    four tables paid one or two rows read for their guards (≈ 5 per delivery), on
--    every shard, every day. The worker creates them with a fence and the cron drops
--    them an hour after the last fence of the shard is `gone` (src/store/moves.rs, from 0014).
--    Apply this with no move under way: its changes would not be recorded until the
--    next cron run creates the triggers again.
ALTER TABLE shard_fence ADD COLUMN gone_at INTEGER;
DROP TRIGGER IF EXISTS move_webhooks_insert;
DROP TRIGGER IF EXISTS move_webhooks_update;
DROP TRIGGER IF EXISTS move_webhooks_delete;
DROP TRIGGER IF EXISTS move_events_insert;
DROP TRIGGER IF EXISTS move_events_update;
DROP TRIGGER IF EXISTS move_events_delete;
DROP TRIGGER IF EXISTS move_logs_insert;
DROP TRIGGER IF EXISTS move_logs_update;
DROP TRIGGER IF EXISTS move_logs_delete;
DROP TRIGGER IF EXISTS move_rollups_insert;
DROP TRIGGER IF EXISTS move_rollups_update;
DROP TRIGGER IF EXISTS move_rollups_delete;
