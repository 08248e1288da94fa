-- A Cancel of a running job, kept so it outlives the panel: a job asked to
-- stop ends as cancelled even if the panel died before it stopped.
ALTER TABLE jobs ADD COLUMN cancel_requested_at INTEGER;
