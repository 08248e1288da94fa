-- Workshop overlays. The sources are what users added (items and
-- collections); the items are what the overlay's last build resolved
-- them to, with each item's state for the overlay's page.
CREATE TABLE workshop_sources (
    overlay_id    INTEGER NOT NULL REFERENCES overlays(id) ON DELETE CASCADE,
    published_id  INTEGER NOT NULL,
    is_collection INTEGER NOT NULL,
    title         TEXT    NOT NULL,
    added_at      INTEGER NOT NULL,
    PRIMARY KEY (overlay_id, published_id)
);

CREATE TABLE workshop_items (
    overlay_id   INTEGER NOT NULL REFERENCES overlays(id) ON DELETE CASCADE,
    item_id      INTEGER NOT NULL,
    -- The collection (a source) the item came from; NULL when added itself.
    via          INTEGER,
    title        TEXT    NOT NULL,
    file_size    INTEGER NOT NULL,
    time_updated INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('ok', 'downloading', 'failed')),
    error        TEXT,
    PRIMARY KEY (overlay_id, item_id)
);

-- Jobs on an overlay (its builds) name it, like server jobs name theirs.
ALTER TABLE jobs ADD COLUMN overlay_id INTEGER REFERENCES overlays(id) ON DELETE SET NULL;
