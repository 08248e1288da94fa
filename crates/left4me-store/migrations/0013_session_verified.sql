-- When the session's user last proved who they are (signing in, or typing
-- the password again): making API tokens and adding a second factor need
-- that to be recent.
ALTER TABLE sessions ADD COLUMN verified_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET verified_at = created_at;
