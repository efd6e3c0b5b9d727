-- Log pages filtered on `status=failed` walk only the workspace's failed deliveries
-- instead of every log of the workspace (SPEC §9.1: a page at 100,000 logs within 1.5×
-- of one at 1,000). One index entry, written only when a delivery ends failed (and
-- removed when the purge deletes it); the webhook and event type are in the entry, so
-- those filters are checked without reading the row. Pending and success pages keep
-- walking `logs_by_workspace` / `logs_by_webhook`: most rows there match (an index on
-- pending would cost two writes per delivery).
CREATE INDEX IF NOT EXISTS logs_failed_by_workspace
  ON delivery_logs (workspace_id, created_at DESC, id DESC, webhook_id, event_type) WHERE status = 'failed';
