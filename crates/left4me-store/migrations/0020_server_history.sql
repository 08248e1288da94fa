-- Each server's history for its graphs (players, CPU, memory), kept at
-- three resolutions in round-robin slots: the slot of a time is its
-- bucket's number modulo the slots of the tier, so a tier never holds more
-- than its slots per server and old buckets are written over.
CREATE TABLE server_history (
    server_id   INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    tier        INTEGER NOT NULL,
    slot        INTEGER NOT NULL,
    -- The bucket's start (Unix seconds).
    at          INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    players_sum INTEGER NOT NULL,
    players_max INTEGER NOT NULL,
    -- CPU use in percent of one core, summed over the samples that had it.
    cpu_sum     REAL    NOT NULL,
    cpu_samples INTEGER NOT NULL,
    memory_max  INTEGER NOT NULL,
    PRIMARY KEY (server_id, tier, slot)
) WITHOUT ROWID;
