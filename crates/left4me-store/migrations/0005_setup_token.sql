-- The one-time link that creates the first admin. It lives in the
-- database, not in the panel's memory, so `left4me setup-url` can issue a
-- fresh one while the panel runs. At most one exists; it is stored as the
-- SHA-256 of the token, like session tokens.
CREATE TABLE setup_token (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
