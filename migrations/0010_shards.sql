-- The shard directory (SPEC §9.2): which D1 database holds each workspace's outbound
-- rows. Only the `DB` binding's copy is read; every shard gets the same schema, so
-- migrations stay one list for all of them.
CREATE TABLE workspace_shards (
  workspace_id TEXT PRIMARY KEY,
  shard        TEXT NOT NULL,              -- a binding name of SHARDS
  placed_at    INTEGER NOT NULL
) WITHOUT ROWID;
-- Workspaces per shard (placement, the operator API) from the index alone.
CREATE INDEX workspace_shards_by_shard ON workspace_shards (shard);

-- Workspaces that wrote before the directory existed live in the one database there was.
INSERT OR IGNORE INTO workspace_shards (workspace_id, shard, placed_at)
  SELECT workspace_id, 'DB', CAST(strftime('%s', 'now') AS INTEGER) * 1000
  FROM (SELECT workspace_id FROM webhooks UNION SELECT workspace_id FROM events);

-- Invoices paid whose invoice.paid still waits for its shard (the cron's relay).
CREATE INDEX invoices_paid_event_pending ON invoices (updated_at) WHERE paid_event_status = 'pending';
