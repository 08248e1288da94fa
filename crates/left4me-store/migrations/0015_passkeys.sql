-- Passkeys (WebAuthn credentials). `credential` is the relying party's
-- record of it (public key, counter) as JSON: nothing in it signs anyone
-- in. A user's `passkey_handle` is the random id their authenticators
-- know them by (never the row id, which is reused); with
-- `passkey_sign_in` set a passkey alone signs them in.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    credential_id BLOB    NOT NULL UNIQUE,
    credential    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    UNIQUE (user_id, name)
);
CREATE INDEX passkeys_user ON passkeys(user_id);

ALTER TABLE users ADD COLUMN passkey_handle TEXT;
ALTER TABLE users ADD COLUMN passkey_sign_in INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_passkey_handle ON users(passkey_handle);
