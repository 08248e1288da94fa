-- Second factors. A TOTP key is kept sealed under a key outside the
-- database (secrets.key or a systemd credential): a copy of the database
-- alone does not reveal it. `last_step` is the last time step a code was
-- taken for, so each code works once. Until `confirmed_at` is set the key
-- is being set up and does not guard sign-ins.
CREATE TABLE totp_keys (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    sealed       BLOB    NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

-- Recovery codes by their SHA-256; each works once.
CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT    NOT NULL,
    used_at   INTEGER,
    UNIQUE (user_id, code_hash)
);

-- A sign-in whose password was right and whose second factor is still to
-- come: a token of its own (never a session), for five minutes.
CREATE TABLE pending_logins (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX pending_logins_user ON pending_logins(user_id);
