-- Wrong codes given to a pending sign-in: after a few it ends, whatever
-- addresses they came from.
ALTER TABLE pending_logins ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
