-- Moving a workspace between shards (SPEC §9.2, `POST /api/v1/ops/workspaces/:id/move`).
-- Applied to every shard; `workspace_moves` is used in `DB` only (the directory's side).
--
-- In the shard a workspace leaves, `shard_fence` has one row for it, and triggers on its
-- four tables (webhooks, events, delivery_logs, webhook_rollups) act on its rows:
--   copying  every insert, update and delete is recorded in `move_changes` (the copy
--            runs meanwhile; what changed after a row was copied is copied again);
--   frozen   (cut-over) inserts of webhooks, events and logs and new claims of a delivery
--            fail with `workspace_moved` (the API answers 503 + Retry-After: 1); outcomes
--            of sends already under way, health and rollups still land and are recorded;
--   moved    every insert and update fails, and a webhook's delete (a stale isolate can
--            never write here again); deletes of logs, events and rollups go through
--            (the retention purge);
--   gone     the cleanup deletes the workspace's rows; inserts and updates still fail.
--            The row stays: it forwards a late queue message to `to_shard`.
-- (A trigger's own OR IGNORE would be overridden by the outer statement's conflict
-- policy: the change rows are guarded with NOT EXISTS instead.)
-- The guards are primary-key look-ups of an (almost always) empty table: 0 rows read.

CREATE TABLE shard_fence (
  workspace_id TEXT NOT NULL PRIMARY KEY,
  job          TEXT NOT NULL,
  to_shard     TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('copying', 'frozen', 'moved', 'gone'))
) WITHOUT ROWID;
CREATE INDEX shard_fence_live ON shard_fence (state) WHERE state <> 'gone';

CREATE TABLE move_changes (
  job TEXT NOT NULL,
  tbl TEXT NOT NULL,
  k1  TEXT NOT NULL,
  k2  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job, tbl, k1, k2)
) WITHOUT ROWID;

-- Only in DB: one row per move; at most one unfinished move per workspace.
CREATE TABLE workspace_moves (
  job          TEXT NOT NULL PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  from_shard   TEXT NOT NULL,
  to_shard     TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('copying', 'cutover', 'done', 'failed')),
  step         TEXT NOT NULL,              -- where the runner is: clear, copy, freeze, drain, final, cleanup
  cursor       TEXT,                       -- JSON: the copy's position
  copied       TEXT NOT NULL DEFAULT '{}', -- JSON: rows copied per table
  error        TEXT,
  failures     INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  cutover_at   INTEGER,
  done_at      INTEGER
) WITHOUT ROWID;
CREATE UNIQUE INDEX workspace_moves_running ON workspace_moves (workspace_id) WHERE state IN ('copying', 'cutover');
CREATE INDEX workspace_moves_by_workspace ON workspace_moves (workspace_id, created_at);

-- The copy reads a workspace's events in id order.
CREATE INDEX events_by_workspace ON events (workspace_id, id);

-- webhooks
CREATE TRIGGER move_webhooks_insert BEFORE INSERT ON webhooks
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = NEW.workspace_id AND state <> 'copying';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'webhooks', NEW.id FROM shard_fence WHERE workspace_id = NEW.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'webhooks' AND m.k1 = NEW.id AND m.k2 = 0);
END;
CREATE TRIGGER move_webhooks_update BEFORE UPDATE ON webhooks
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND (state IN ('moved', 'gone')
         OR (state = 'frozen' AND NEW.recover_job IS NOT NULL AND NEW.recover_job IS NOT OLD.recover_job));
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'webhooks', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'webhooks' AND m.k1 = OLD.id AND m.k2 = 0);
END;
-- A webhook's delete (the API's) fails once moved; the cleanup deletes after `gone`.
CREATE TRIGGER move_webhooks_delete BEFORE DELETE ON webhooks
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state <> 'gone')
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state = 'moved';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'webhooks', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'webhooks' AND m.k1 = OLD.id AND m.k2 = 0);
END;

-- events
CREATE TRIGGER move_events_insert BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = NEW.workspace_id AND state <> 'copying';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'events', NEW.id FROM shard_fence WHERE workspace_id = NEW.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'events' AND m.k1 = NEW.id AND m.k2 = 0);
END;
CREATE TRIGGER move_events_update BEFORE UPDATE ON events
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state IN ('moved', 'gone');
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'events', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'events' AND m.k1 = OLD.id AND m.k2 = 0);
END;
CREATE TRIGGER move_events_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state IN ('copying', 'frozen'))
BEGIN
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'events', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'events' AND m.k1 = OLD.id AND m.k2 = 0);
END;

-- delivery_logs: while frozen, a new claim (a claim token where there was none or
-- another) fails; releasing a claim (the outcome of a send under way) does not.
CREATE TRIGGER move_logs_insert BEFORE INSERT ON delivery_logs
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = NEW.workspace_id AND state <> 'copying';
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'delivery_logs', NEW.id FROM shard_fence WHERE workspace_id = NEW.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'delivery_logs' AND m.k1 = NEW.id AND m.k2 = 0);
END;
CREATE TRIGGER move_logs_update BEFORE UPDATE ON delivery_logs
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'workspace_moved') FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND (state IN ('moved', 'gone')
         OR (state = 'frozen' AND NEW.claim_token IS NOT NULL AND NEW.claim_token IS NOT OLD.claim_token));
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'delivery_logs', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'delivery_logs' AND m.k1 = OLD.id AND m.k2 = 0);
END;
CREATE TRIGGER move_logs_delete BEFORE DELETE ON delivery_logs
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE workspace_id = OLD.workspace_id AND state IN ('copying', 'frozen'))
BEGIN
  INSERT INTO move_changes (job, tbl, k1) SELECT job, 'delivery_logs', OLD.id FROM shard_fence WHERE workspace_id = OLD.workspace_id
    AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = shard_fence.job AND m.tbl = 'delivery_logs' AND m.k1 = OLD.id AND m.k2 = 0);
END;

-- webhook_rollups (keyed by webhook): recorded while a move copies or cuts over; the
-- first guard reads the partial index of unfinished moves (empty on a normal day).
CREATE TRIGGER move_rollups_insert BEFORE INSERT ON webhook_rollups
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE state <> 'gone')
BEGIN
  INSERT INTO move_changes (job, tbl, k1, k2)
    SELECT f.job, 'webhook_rollups', NEW.webhook_id, NEW.hour FROM shard_fence f
    WHERE f.state IN ('copying', 'frozen') AND f.workspace_id = (SELECT workspace_id FROM webhooks WHERE id = NEW.webhook_id)
      AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = f.job AND m.tbl = 'webhook_rollups' AND m.k1 = NEW.webhook_id AND m.k2 = NEW.hour);
END;
CREATE TRIGGER move_rollups_update BEFORE UPDATE ON webhook_rollups
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE state <> 'gone')
BEGIN
  INSERT INTO move_changes (job, tbl, k1, k2)
    SELECT f.job, 'webhook_rollups', OLD.webhook_id, OLD.hour FROM shard_fence f
    WHERE f.state IN ('copying', 'frozen') AND f.workspace_id = (SELECT workspace_id FROM webhooks WHERE id = OLD.webhook_id)
      AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = f.job AND m.tbl = 'webhook_rollups' AND m.k1 = OLD.webhook_id AND m.k2 = OLD.hour);
END;
CREATE TRIGGER move_rollups_delete BEFORE DELETE ON webhook_rollups
WHEN EXISTS (SELECT 1 FROM shard_fence WHERE state <> 'gone')
BEGIN
  INSERT INTO move_changes (job, tbl, k1, k2)
    SELECT f.job, 'webhook_rollups', OLD.webhook_id, OLD.hour FROM shard_fence f
    WHERE f.state IN ('copying', 'frozen') AND f.workspace_id = (SELECT workspace_id FROM webhooks WHERE id = OLD.webhook_id)
      AND NOT EXISTS (SELECT 1 FROM move_changes m WHERE m.job = f.job AND m.tbl = 'webhook_rollups' AND m.k1 = OLD.webhook_id AND m.k2 = OLD.hour);
END;
