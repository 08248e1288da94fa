-- A token's server limit as rows that go with their server: a server's id
-- is used again once the newest server is deleted, and a limit must never
-- pass to a server made later. `server_limited` says whether the rows are
-- a limit, so a token whose servers are all gone reaches none, not all.
CREATE TABLE api_token_servers (
    token_id  INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, server_id)
) WITHOUT ROWID;

CREATE INDEX api_token_servers_server ON api_token_servers(server_id);

ALTER TABLE api_tokens ADD COLUMN server_limited INTEGER NOT NULL DEFAULT 0;

UPDATE api_tokens SET server_limited = 1 WHERE servers IS NOT NULL;

-- Only servers that existed when the token was made: a server made since
-- may carry a deleted one's id.
INSERT OR IGNORE INTO api_token_servers (token_id, server_id)
SELECT t.id, s.id
FROM api_tokens t, json_each('[' || replace(trim(t.servers), ' ', ',') || ']') j
JOIN servers s ON s.id = CAST(j.value AS INTEGER) AND s.created_at <= t.created_at
WHERE t.servers IS NOT NULL;

ALTER TABLE api_tokens DROP COLUMN servers;
