-- Schedules: a server's (owner, admins, operators) or the panel's
-- (admins). `timing` is "HH:MM" or five cron fields, read in `time_zone`;
-- `plan` is the run's steps and its players' part, as JSON. `due_at` is
-- the next run's time: a run claims it by moving it on. `catch_up` runs
-- a run missed while the panel was down once when it comes back (else it
-- is skipped, and said so in `last_skipped`).
CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    server_id    INTEGER REFERENCES servers(id) ON DELETE CASCADE,
    owner_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    timing       TEXT    NOT NULL,
    time_zone    TEXT    NOT NULL,
    plan         TEXT    NOT NULL,
    catch_up     INTEGER NOT NULL DEFAULT 1,
    enabled      INTEGER NOT NULL DEFAULT 1,
    due_at       INTEGER NOT NULL,
    last_skipped TEXT,
    created_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX schedules_name ON schedules(COALESCE(server_id, 0), name);
CREATE INDEX schedules_due ON schedules(due_at) WHERE enabled = 1;

-- A schedule's runs are jobs.
ALTER TABLE jobs ADD COLUMN schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL;
CREATE INDEX jobs_schedule ON jobs(schedule_id);
