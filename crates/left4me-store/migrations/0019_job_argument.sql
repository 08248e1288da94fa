-- What a job works from beyond its server or overlay: the backup a
-- restore brings back.
ALTER TABLE jobs ADD COLUMN argument TEXT;

-- The newest job of a kind (the last backup, for its banner) without a
-- scan of every job.
CREATE INDEX jobs_kind ON jobs(kind, id);
