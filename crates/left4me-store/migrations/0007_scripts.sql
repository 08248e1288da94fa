-- Script overlays: an admin's bash script that builds the overlay's
-- layer in a sandbox. One script per overlay.
CREATE TABLE overlay_scripts (
    overlay_id        INTEGER PRIMARY KEY REFERENCES overlays(id) ON DELETE CASCADE,
    script            TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    -- Builds start from a copy of the current version, not an empty layer.
    from_previous     INTEGER NOT NULL DEFAULT 0,
    -- "Rebuild from scratch" was asked: the next build starts empty
    -- whatever from_previous says. A build that starts clears it; kept
    -- here rather than on the job because a queued build is reused.
    next_from_scratch INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL
);
