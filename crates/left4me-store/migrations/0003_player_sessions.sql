-- Who played when: one row per stay on a server. Written when the poller
-- sees a player appear or disappear, so only changes are stored.
CREATE TABLE player_sessions (
    id        INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name      TEXT    NOT NULL,
    steam_id  TEXT,
    joined_at INTEGER NOT NULL,
    left_at   INTEGER
);
CREATE INDEX player_sessions_server ON player_sessions(server_id, left_at);
