-- What a job works from beyond its server or overlay: the backup a
-- restore brings back.
ALTER TABLE jobs ADD COLUMN argument TEXT;
