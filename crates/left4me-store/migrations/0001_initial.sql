-- Times are Unix seconds. Booleans are 0/1.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    is_active     INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE overlays (
    id           INTEGER PRIMARY KEY,
    owner_id     INTEGER NOT NULL REFERENCES users(id),
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('files', 'workshop', 'script')),
    build_status TEXT    NOT NULL DEFAULT 'ready',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE blueprints (
    id         INTEGER PRIMARY KEY,
    owner_id   INTEGER NOT NULL REFERENCES users(id),
    name       TEXT    NOT NULL,
    config     TEXT    NOT NULL DEFAULT '',
    -- Launch arguments, separated by whitespace.
    arguments  TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE blueprint_overlays (
    blueprint_id      INTEGER NOT NULL REFERENCES blueprints(id) ON DELETE CASCADE,
    overlay_id        INTEGER NOT NULL REFERENCES overlays(id),
    position          INTEGER NOT NULL,
    expose_server_cfg INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (blueprint_id, overlay_id)
);

CREATE TABLE servers (
    id            INTEGER PRIMARY KEY,
    owner_id      INTEGER NOT NULL REFERENCES users(id),
    blueprint_id  INTEGER NOT NULL REFERENCES blueprints(id),
    name          TEXT    NOT NULL UNIQUE,
    hostname      TEXT    NOT NULL,
    port          INTEGER NOT NULL UNIQUE,
    rcon_password TEXT    NOT NULL,
    desired_state TEXT    NOT NULL DEFAULT 'stopped' CHECK (desired_state IN ('running', 'stopped')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    user_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- Kept when the user is deleted: the record says who it was.
    username       TEXT    NOT NULL,
    server_id      INTEGER REFERENCES servers(id) ON DELETE SET NULL,
    -- What the job was about, for lists after its server is gone.
    subject        TEXT    NOT NULL,
    -- Space-separated resource keys; jobs sharing a key never run at once.
    locks          TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    error          TEXT,
    progress_done  INTEGER,
    progress_total INTEGER,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER
);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_server ON jobs(server_id);
CREATE INDEX jobs_user ON jobs(user_id);

CREATE TABLE job_logs (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    stream TEXT    NOT NULL,
    line   TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
