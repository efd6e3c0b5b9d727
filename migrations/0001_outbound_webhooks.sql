-- Outbound webhooks: configuration, published events (outbox), delivery logs and attempts.
-- Times are Unix milliseconds (UTC); the API renders them as ISO 8601.

CREATE TABLE webhooks (
  id              TEXT PRIMARY KEY,
  workspace_id    TEXT NOT NULL,
  name            TEXT NOT NULL,
  url             TEXT NOT NULL,
  secret          TEXT,                       -- write-only: never rendered, never logged
  events          TEXT NOT NULL,              -- JSON array of catalog types
  active          INTEGER NOT NULL DEFAULT 1,
  headers         TEXT NOT NULL DEFAULT '{}', -- JSON object of custom headers
  retry_count     INTEGER NOT NULL,
  timeout_ms      INTEGER NOT NULL,
  disabled_reason TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at);

-- One row per published event; `body` holds the exact bytes every delivery sends and signs.
CREATE TABLE events (
  id              TEXT PRIMARY KEY,
  workspace_id    TEXT NOT NULL,
  type            TEXT NOT NULL,
  body            TEXT NOT NULL,
  idempotency_key TEXT,
  source          TEXT NOT NULL,              -- api | internal | test
  created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_by_idempotency_key ON events (workspace_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_by_created ON events (created_at);

-- One row per (event, webhook) delivery; written `pending` before the queue message is sent.
CREATE TABLE delivery_logs (
  id              TEXT PRIMARY KEY,
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
  next_attempt_at INTEGER,
  lease_until     INTEGER,                    -- a consumer is sending it until then
  claim_token     TEXT,                       -- which consumer invocation holds the lease
  redelivery_of   TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
-- The logs filters of SPEC §4.6, each ending in (created_at, id) so the index alone gives
-- the newest-first order of a filtered page (no sort, no scan of other rows).
CREATE INDEX logs_by_workspace ON delivery_logs (workspace_id, created_at DESC, id DESC);
CREATE INDEX logs_by_webhook ON delivery_logs (workspace_id, webhook_id, created_at DESC, id DESC);
CREATE INDEX logs_by_status ON delivery_logs (workspace_id, status, created_at DESC, id DESC);
CREATE INDEX logs_by_event_type ON delivery_logs (workspace_id, event_type, created_at DESC, id DESC);
-- The cron's scan for overdue deliveries, and fan-out/idempotency reads by event.
CREATE INDEX logs_pending_due ON delivery_logs (next_attempt_at) WHERE status = 'pending';
CREATE INDEX logs_by_event ON delivery_logs (event_id);
CREATE INDEX logs_by_created ON delivery_logs (created_at);

-- Every attempt's outcome; (log_id, attempt) makes a duplicate record impossible.
CREATE TABLE delivery_attempts (
  log_id          TEXT NOT NULL,
  attempt         INTEGER NOT NULL,
  attempted_at    INTEGER NOT NULL,
  response_status INTEGER,
  error           TEXT,
  duration_ms     INTEGER NOT NULL,
  PRIMARY KEY (log_id, attempt)
) WITHOUT ROWID;
