-- Panel-wide settings an admin changes in the panel (not the config file:
-- they are the panel's rules, not the host's), by name.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
