-- The panel's backups as the Backups page lists them: the snapshot each
-- backup job made in the restic repository, what it took and how long.
CREATE TABLE backups (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    snapshot_id     TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER NOT NULL,
    files           INTEGER NOT NULL,
    bytes_processed INTEGER NOT NULL,
    data_added      INTEGER NOT NULL
);
