-- 0007 indexed redeliveries by their original (recover's "already redelivered?" check,
-- SPEC §9.4), and 0008 rebuilt delivery_logs without it: put it back on the new table.
-- Partial: only redeliveries pay an index entry.
CREATE INDEX IF NOT EXISTS logs_redeliveries ON delivery_logs (redelivery_of, status) WHERE redelivery_of IS NOT NULL;
