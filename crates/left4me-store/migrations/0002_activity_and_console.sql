-- Who did what and when. Rows outlive the servers and users they name.
CREATE TABLE activity (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    user_id   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- "reconciler" for what the panel did by itself.
    actor     TEXT    NOT NULL,
    server_id INTEGER REFERENCES servers(id) ON DELETE SET NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX activity_server ON activity(server_id, id);
CREATE INDEX activity_kind ON activity(kind, id);

-- RCON commands typed in the console, with what came back.
CREATE TABLE console_commands (
    id        INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    username  TEXT    NOT NULL,
    command   TEXT    NOT NULL,
    reply     TEXT,
    error     TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX console_commands_server ON console_commands(server_id, id);
