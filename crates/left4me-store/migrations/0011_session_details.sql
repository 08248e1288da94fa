-- What the account page lists of each session: the browser and address
-- it was opened from and when it was last seen (to the minute). And the
-- time an admin last turned a user's second factor off, said to them at
-- their next sign-in until they set one up again.
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN second_factor_reset_at INTEGER;
