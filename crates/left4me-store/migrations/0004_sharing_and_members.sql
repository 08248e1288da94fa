-- Overlays and blueprints are private (owner and admins) or shared with
-- everyone on the panel.
ALTER TABLE overlays ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blueprints ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;

-- Users the owner let in on a server, besides the owner and admins.
CREATE TABLE server_members (
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('operator', 'viewer')),
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
) WITHOUT ROWID;
CREATE INDEX server_members_user ON server_members(user_id);
