-- Personal API tokens: a user's bearer tokens for the JSON API, stored by
-- the SHA-256 of the token (shown once, never stored), with their scopes,
-- optionally limited to some servers, optionally expiring.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    -- Space-separated: read, operate, manage, admin.
    scopes       TEXT    NOT NULL,
    -- Space-separated server ids, or NULL for every server of the user.
    servers      TEXT,
    expires_at   INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    UNIQUE (user_id, name)
);
