-- The triggers of a workspace move (SPEC §9.2), created in the shard a workspace leaves
-- when its fence is set (`store::moves::fence`) and dropped by the cron once no fence
-- needs them (`store::moves::settle_triggers`): each costs every write of its table one
-- or two rows read, so a shard without a move pays nothing (migration 0017). What they
-- do is described in migrations/0014_moves.sql, which created them first.
-- One trigger per statement; each ends with a line `END;`.
-- webhooks
CREATE TRIGGER IF NOT EXISTS move_webhooks_insert BEFORE INSERT ON webhooks
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = NEW.workspace_id AND state <> 'copying';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'webhooks', NEW.id FROM shard_fence WHERE workspace_id = NEW.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'webhooks' AND m.k1 = NEW.id AND m.k2 = 0);
END;
CREATE TRIGGER IF NOT EXISTS move_webhooks_update BEFORE UPDATE ON webhooks
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND (state IN ('moved', 'gone')
         OR (state = 'frozen' AND NEW.recover_job IS NOT NULL AND NEW.recover_job IS NOT OLD.recover_job));
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'webhooks', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'webhooks' AND m.k1 = OLD.id AND m.k2 = 0);
END;
-- A webhook's delete (the API's) fails once moved; the cleanup deletes after `gone`.
CREATE TRIGGER IF NOT EXISTS move_webhooks_delete BEFORE DELETE ON webhooks
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state <> 'gone')
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state = 'moved';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'webhooks', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'webhooks' AND m.k1 = OLD.id AND m.k2 = 0);
END;

-- events
CREATE TRIGGER IF NOT EXISTS move_events_insert BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = NEW.workspace_id AND state <> 'copying';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'events', NEW.id FROM shard_fence WHERE workspace_id = NEW.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'events' AND m.k1 = NEW.id AND m.k2 = 0);
END;
CREATE TRIGGER IF NOT EXISTS move_events_update BEFORE UPDATE ON events
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state IN ('moved', 'gone');
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'events', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'events' AND m.k1 = OLD.id AND m.k2 = 0);
END;
CREATE TRIGGER IF NOT EXISTS move_events_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state IN ('copying', 'frozen'))
BEGIN
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'events', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'events' AND m.k1 = OLD.id AND m.k2 = 0);
END;

-- delivery_logs: while frozen, a new claim (a claim token where there was none or
-- another) fails; releasing a claim (the outcome of a send under way) does not.
CREATE TRIGGER IF NOT EXISTS move_logs_insert BEFORE INSERT ON delivery_logs
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = NEW.workspace_id AND state <> 'copying';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'delivery_logs', NEW.id FROM shard_fence WHERE workspace_id = NEW.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'delivery_logs' AND m.k1 = NEW.id AND m.k2 = 0);
END;
CREATE TRIGGER IF NOT EXISTS move_logs_update BEFORE UPDATE ON delivery_logs
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND (state IN ('moved', 'gone')
         OR (state = 'frozen' AND NEW.claim_token IS NOT NULL AND NEW.claim_token IS NOT OLD.claim_token));
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'delivery_logs', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'delivery_logs' AND m.k1 = OLD.id AND m.k2 = 0);
END;
CREATE TRIGGER IF NOT EXISTS move_logs_delete BEFORE DELETE ON delivery_logs
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state IN ('copying', 'frozen'))
BEGIN
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'delivery_logs', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'delivery_logs' AND m.k1 = OLD.id AND m.k2 = 0);
END;

-- webhook_rollups (keyed by webhook): recorded while a move copies or cuts over; the
-- first guard reads the partial index of unfinished moves (empty on a normal day).
CREATE TRIGGER IF NOT EXISTS move_rollups_insert BEFORE INSERT ON webhook_rollups
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE state <> 'gone')
BEGIN
  INSERT INTO move_changes (job, tbl, k1, k2)
    SELECT f.job, 'webhook_rollups', NEW.webhook_id, NEW.hour FROM shard_fence f
    WHERE f.state IN ('copying', 'frozen') AND f.workspace_id = (SELECT workspace_id FROM webhooks WHERE id = NEW.webhook_id)
      AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = f.job AND m.tbl = 'webhook_rollups' AND m.k1 = NEW.webhook_id AND m.k2 = NEW.hour);
END;
CREATE TRIGGER IF NOT EXISTS move_rollups_update BEFORE UPDATE ON webhook_rollups
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE state <> 'gone')
BEGIN
  INSERT INTO move_changes (job, tbl, k1, k2)
    SELECT f.job, 'webhook_rollups', OLD.webhook_id, OLD.hour FROM shard_fence f
    WHERE f.state IN ('copying', 'frozen') AND f.workspace_id = (SELECT workspace_id FROM webhooks WHERE id = OLD.webhook_id)
      AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = f.job AND m.tbl = 'webhook_rollups' AND m.k1 = OLD.webhook_id AND m.k2 = OLD.hour);
END;
CREATE TRIGGER IF NOT EXISTS move_rollups_delete BEFORE DELETE ON webhook_rollups
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE state <> 'gone')
BEGIN
  INSERT INTO move_changes (job, tbl, k1, k2)
    SELECT f.job, 'webhook_rollups', OLD.webhook_id, OLD.hour FROM shard_fence f
    WHERE f.state IN ('copying', 'frozen') AND f.workspace_id = (SELECT workspace_id FROM webhooks WHERE id = OLD.webhook_id)
      AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = f.job AND m.tbl = 'webhook_rollups' AND m.k1 = OLD.webhook_id AND m.k2 = OLD.hour);
END;
