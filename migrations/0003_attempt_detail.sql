-- Delivery detail (SPEC §8.3): each attempt keeps the first 2 KiB of the receiver's
-- answer, so one log's detail can show every attempt's response, not only the last.
ALTER TABLE delivery_attempts ADD COLUMN response_body TEXT;
