-- The panel's own routines as schedules an admin can change: the check
-- for game updates and the Workshop refresh. `builtin` names which; each
-- exists once, and is turned off rather than deleted.
ALTER TABLE schedules ADD COLUMN builtin TEXT;
CREATE UNIQUE INDEX schedules_builtin ON schedules(builtin) WHERE builtin IS NOT NULL;
