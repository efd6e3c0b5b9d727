-- A delivery that costs D1 little (SPEC §9.1). D1 bills, and its single writer spends its
-- time on, every row written, and each index entry a write touches is one more. Round 2
-- wrote ≈ 16 rows per delivery (the log, nine index entries, an attempt row, status
-- index churn, health); this layout writes the log row, two index entries, the claim,
-- the outcome and one rollup row.
--
-- * `delivery_logs` is rebuilt WITHOUT ROWID on its id: no separate primary-key index.
--   New ids are time-ordered (`dlv_` + 12 hex digits of the creation time in ms + 12 random
--   hex), so the primary key is also the creation order the cron walks (pending sweep and
--   retention purge) without an index of its own. Rows from before keep their ids and are
--   marked `legacy` (their ids are random): a partial index finds them for the purge.
-- * Two indexes serve every log query: by workspace and by webhook, newest first. Status
--   and event type filter while walking one of them (no index whose key changes with
--   the status: each change would cost two entries).
-- * `next_attempt_at` is set only while a delivery waits for a retry or a postponement
--   (NULL on the happy path), so the partial index `logs_due` holds only those.
-- * Each attempt's outcome is appended to the log row's `history` (a JSON array) by the
--   same write that records it, instead of a row of its own. `delivery_attempts` stays
--   as a view (with an insert trigger) for operators' SQL.
-- * `webhook_rollups`: counts per webhook per hour and a histogram of attempt durations,
--   upserted by the batch that records outcomes; the stats route reads only these.

-- Stats rollups (SPEC §9.1): per webhook and hour (start of the hour, Unix ms) the
-- deliveries that ended in that hour by final status, and the attempts made in it with
-- their durations in a histogram of 48 buckets d0…d47 (core::outbound::rollup: exact
-- below 8 ms, then each bucket 1.25× wider than the last, up to 60 s). Logs from before
-- this migration are rolled up by it, by the hour of their last update.
CREATE TABLE webhook_rollups (
  webhook_id TEXT NOT NULL,
  hour       INTEGER NOT NULL,
  success    INTEGER NOT NULL DEFAULT 0,
  failed     INTEGER NOT NULL DEFAULT 0,
  attempts   INTEGER NOT NULL DEFAULT 0,
  d0 INTEGER NOT NULL DEFAULT 0,
  d1 INTEGER NOT NULL DEFAULT 0,
  d2 INTEGER NOT NULL DEFAULT 0,
  d3 INTEGER NOT NULL DEFAULT 0,
  d4 INTEGER NOT NULL DEFAULT 0,
  d5 INTEGER NOT NULL DEFAULT 0,
  d6 INTEGER NOT NULL DEFAULT 0,
  d7 INTEGER NOT NULL DEFAULT 0,
  d8 INTEGER NOT NULL DEFAULT 0,
  d9 INTEGER NOT NULL DEFAULT 0,
  d10 INTEGER NOT NULL DEFAULT 0,
  d11 INTEGER NOT NULL DEFAULT 0,
  d12 INTEGER NOT NULL DEFAULT 0,
  d13 INTEGER NOT NULL DEFAULT 0,
  d14 INTEGER NOT NULL DEFAULT 0,
  d15 INTEGER NOT NULL DEFAULT 0,
  d16 INTEGER NOT NULL DEFAULT 0,
  d17 INTEGER NOT NULL DEFAULT 0,
  d18 INTEGER NOT NULL DEFAULT 0,
  d19 INTEGER NOT NULL DEFAULT 0,
  d20 INTEGER NOT NULL DEFAULT 0,
  d21 INTEGER NOT NULL DEFAULT 0,
  d22 INTEGER NOT NULL DEFAULT 0,
  d23 INTEGER NOT NULL DEFAULT 0,
  d24 INTEGER NOT NULL DEFAULT 0,
  d25 INTEGER NOT NULL DEFAULT 0,
  d26 INTEGER NOT NULL DEFAULT 0,
  d27 INTEGER NOT NULL DEFAULT 0,
  d28 INTEGER NOT NULL DEFAULT 0,
  d29 INTEGER NOT NULL DEFAULT 0,
  d30 INTEGER NOT NULL DEFAULT 0,
  d31 INTEGER NOT NULL DEFAULT 0,
  d32 INTEGER NOT NULL DEFAULT 0,
  d33 INTEGER NOT NULL DEFAULT 0,
  d34 INTEGER NOT NULL DEFAULT 0,
  d35 INTEGER NOT NULL DEFAULT 0,
  d36 INTEGER NOT NULL DEFAULT 0,
  d37 INTEGER NOT NULL DEFAULT 0,
  d38 INTEGER NOT NULL DEFAULT 0,
  d39 INTEGER NOT NULL DEFAULT 0,
  d40 INTEGER NOT NULL DEFAULT 0,
  d41 INTEGER NOT NULL DEFAULT 0,
  d42 INTEGER NOT NULL DEFAULT 0,
  d43 INTEGER NOT NULL DEFAULT 0,
  d44 INTEGER NOT NULL DEFAULT 0,
  d45 INTEGER NOT NULL DEFAULT 0,
  d46 INTEGER NOT NULL DEFAULT 0,
  d47 INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (webhook_id, hour)
) WITHOUT ROWID;

-- The logs and attempts from before, rolled up: outcomes by the hour of the log's last
-- update, attempts by the hour they were made.
INSERT INTO webhook_rollups (webhook_id, hour, success, failed, attempts, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15, d16, d17, d18, d19, d20, d21, d22, d23, d24, d25, d26, d27, d28, d29, d30, d31, d32, d33, d34, d35, d36, d37, d38, d39, d40, d41, d42, d43, d44, d45, d46, d47)
SELECT webhook_id, hour, SUM(success), SUM(failed), SUM(attempts), SUM(b = 0), SUM(b = 1), SUM(b = 2), SUM(b = 3), SUM(b = 4), SUM(b = 5), SUM(b = 6), SUM(b = 7), SUM(b = 8), SUM(b = 9), SUM(b = 10), SUM(b = 11), SUM(b = 12), SUM(b = 13), SUM(b = 14), SUM(b = 15), SUM(b = 16), SUM(b = 17), SUM(b = 18), SUM(b = 19), SUM(b = 20), SUM(b = 21), SUM(b = 22), SUM(b = 23), SUM(b = 24), SUM(b = 25), SUM(b = 26), SUM(b = 27), SUM(b = 28), SUM(b = 29), SUM(b = 30), SUM(b = 31), SUM(b = 32), SUM(b = 33), SUM(b = 34), SUM(b = 35), SUM(b = 36), SUM(b = 37), SUM(b = 38), SUM(b = 39), SUM(b = 40), SUM(b = 41), SUM(b = 42), SUM(b = 43), SUM(b = 44), SUM(b = 45), SUM(b = 46), SUM(b = 47)
FROM (
  SELECT webhook_id, (updated_at / 3600000) * 3600000 AS hour, status = 'success' AS success,
    status = 'failed' AS failed, 0 AS attempts, -1 AS b
  FROM delivery_logs WHERE status <> 'pending'
  UNION ALL
  SELECT l.webhook_id, (a.attempted_at / 3600000) * 3600000, 0, 0, 1, CASE WHEN a.duration_ms >= 48149 THEN 47 WHEN a.duration_ms >= 38519 THEN 46 WHEN a.duration_ms >= 30815 THEN 45 WHEN a.duration_ms >= 24652 THEN 44 WHEN a.duration_ms >= 19722 THEN 43 WHEN a.duration_ms >= 15778 THEN 42 WHEN a.duration_ms >= 12622 THEN 41 WHEN a.duration_ms >= 10098 THEN 40 WHEN a.duration_ms >= 8078 THEN 39 WHEN a.duration_ms >= 6463 THEN 38 WHEN a.duration_ms >= 5170 THEN 37 WHEN a.duration_ms >= 4136 THEN 36 WHEN a.duration_ms >= 3309 THEN 35 WHEN a.duration_ms >= 2647 THEN 34 WHEN a.duration_ms >= 2118 THEN 33 WHEN a.duration_ms >= 1695 THEN 32 WHEN a.duration_ms >= 1356 THEN 31 WHEN a.duration_ms >= 1085 THEN 30 WHEN a.duration_ms >= 868 THEN 29 WHEN a.duration_ms >= 694 THEN 28 WHEN a.duration_ms >= 556 THEN 27 WHEN a.duration_ms >= 445 THEN 26 WHEN a.duration_ms >= 356 THEN 25 WHEN a.duration_ms >= 285 THEN 24 WHEN a.duration_ms >= 228 THEN 23 WHEN a.duration_ms >= 182 THEN 22 WHEN a.duration_ms >= 146 THEN 21 WHEN a.duration_ms >= 117 THEN 20 WHEN a.duration_ms >= 94 THEN 19 WHEN a.duration_ms >= 75 THEN 18 WHEN a.duration_ms >= 60 THEN 17 WHEN a.duration_ms >= 48 THEN 16 WHEN a.duration_ms >= 39 THEN 15 WHEN a.duration_ms >= 31 THEN 14 WHEN a.duration_ms >= 25 THEN 13 WHEN a.duration_ms >= 20 THEN 12 WHEN a.duration_ms >= 16 THEN 11 WHEN a.duration_ms >= 13 THEN 10 WHEN a.duration_ms >= 10 THEN 9 WHEN a.duration_ms >= 8 THEN 8 WHEN a.duration_ms >= 7 THEN 7 WHEN a.duration_ms >= 6 THEN 6 WHEN a.duration_ms >= 5 THEN 5 WHEN a.duration_ms >= 4 THEN 4 WHEN a.duration_ms >= 3 THEN 3 WHEN a.duration_ms >= 2 THEN 2 WHEN a.duration_ms >= 1 THEN 1 ELSE 0 END
  FROM delivery_attempts a JOIN delivery_logs l ON l.id = a.log_id
)
GROUP BY webhook_id, hour;

CREATE TABLE delivery_logs_v3 (
  id              TEXT NOT NULL PRIMARY KEY,
  workspace_id    TEXT NOT NULL,
  webhook_id      TEXT NOT NULL,
  event_id        TEXT NOT NULL,
  event_type      TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  max_attempts    INTEGER NOT NULL,
  response_status INTEGER,
  response_body   TEXT,                       -- first 2 KiB of the last response
  error           TEXT,
  duration_ms     INTEGER,
  next_attempt_at INTEGER,                    -- set only while waiting for a retry / postponed
  lease_until     INTEGER,                    -- a consumer is sending it until then
  claim_token     TEXT,                       -- which consumer invocation holds the lease
  redelivery_of   TEXT,
  recover_job     TEXT,
  test            INTEGER NOT NULL DEFAULT 0,
  history         TEXT,                       -- JSON array: every attempt's outcome, oldest first
  legacy          INTEGER NOT NULL DEFAULT 0, -- 1: created before this migration (random id)
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO delivery_logs_v3 (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts,
  response_status, response_body, error, duration_ms, next_attempt_at, lease_until, claim_token, redelivery_of,
  recover_job, test, history, legacy, created_at, updated_at)
SELECT l.id, l.workspace_id, l.webhook_id, l.event_id, l.event_type, l.status, l.attempts, l.max_attempts,
  l.response_status, l.response_body, l.error, l.duration_ms,
  -- A pending row keeps a due time: the cron's due index is how it is found from now on.
  CASE WHEN l.status = 'pending' THEN COALESCE(l.next_attempt_at, l.created_at) END,
  l.lease_until, l.claim_token, l.redelivery_of, l.recover_job, l.test,
  (SELECT json_group_array(json_object('attempt', a.attempt, 'attempted_at', a.attempted_at,
            'response_status', a.response_status, 'error', a.error, 'duration_ms', a.duration_ms,
            'response_body', a.response_body))
     FROM (SELECT * FROM delivery_attempts WHERE log_id = l.id ORDER BY attempt) a),
  1, l.created_at, l.updated_at
FROM delivery_logs l;

DROP TABLE delivery_attempts;
DROP TABLE delivery_logs;
ALTER TABLE delivery_logs_v3 RENAME TO delivery_logs;

-- The logs filters of SPEC §4.6: (created_at, id) gives the newest-first order of a page
-- and its cursor; the trailing event type (it never changes) lets that filter and the
-- workspace check be read from the index alone.
CREATE INDEX logs_by_workspace ON delivery_logs (workspace_id, created_at DESC, id DESC, event_type);
CREATE INDEX logs_by_webhook ON delivery_logs (workspace_id, webhook_id, created_at DESC, id DESC, event_type);
-- Deliveries waiting for a retry or postponed: the cron's overdue scan.
CREATE INDEX logs_due ON delivery_logs (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- Recover walks a webhook's failed deliveries by the time they ended.
CREATE INDEX logs_failed_by_webhook ON delivery_logs (webhook_id, updated_at, id) WHERE status = 'failed';
-- One redelivery per original per recovery.
CREATE UNIQUE INDEX logs_recovered ON delivery_logs (redelivery_of, recover_job) WHERE recover_job IS NOT NULL;
-- Rows from before this migration, for the retention purge (their ids are not time-ordered).
CREATE INDEX logs_legacy_by_created ON delivery_logs (created_at) WHERE legacy = 1;

-- Every attempt as a row, read from the logs' history (for SQL consoles and tests).
CREATE VIEW delivery_attempts AS
SELECT l.id AS log_id, json_extract(h.value, '$.attempt') AS attempt,
  json_extract(h.value, '$.attempted_at') AS attempted_at, json_extract(h.value, '$.response_status') AS response_status,
  json_extract(h.value, '$.error') AS error, json_extract(h.value, '$.duration_ms') AS duration_ms,
  json_extract(h.value, '$.response_body') AS response_body
FROM delivery_logs l, json_each(l.history) h;

CREATE TRIGGER delivery_attempts_insert INSTEAD OF INSERT ON delivery_attempts
BEGIN
  UPDATE delivery_logs SET history = json_insert(COALESCE(history, '[]'), '$[#]',
      json_object('attempt', NEW.attempt, 'attempted_at', NEW.attempted_at, 'response_status', NEW.response_status,
                  'error', NEW.error, 'duration_ms', NEW.duration_ms, 'response_body', NEW.response_body))
    WHERE id = NEW.log_id;
END;

-- Events: when a log was last made for the event (a redelivery or a recovery makes new
-- logs for an old event); the purge keeps the event while any log may refer to it.
ALTER TABLE events ADD COLUMN last_log_at INTEGER;

-- Where the cron's walk over new deliveries (in id order) has reached: every pending
-- delivery created before it either finished or sits in `logs_due`.
CREATE TABLE sweep_state (
  name TEXT NOT NULL PRIMARY KEY,
  at   INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO sweep_state (name, at) VALUES ('logs', CAST(unixepoch('subsec') * 1000 AS INTEGER));

-- Half-open breakers the claim may probe: only webhooks with a breaker are in it.
CREATE INDEX webhooks_breaker ON webhooks (breaker_open_until) WHERE breaker_open_until IS NOT NULL;
-- A webhook's deliveries waiting for a retry, for the `pending` count of its stats.
CREATE INDEX logs_waiting_by_webhook ON delivery_logs (webhook_id) WHERE next_attempt_at IS NOT NULL;
