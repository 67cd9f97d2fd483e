-- Everything stored belongs to exactly one project: its events, its rollup cells and its
-- idempotency namespace. Every row stored before projects existed is the default project's (id 1):
-- a constant default fills the column without rewriting the table, and every answer stays the same.
-- The two event indexes are rebuilt, which holds writes to events for as long as that takes: on a
-- large table, upgrade in a quiet hour.
--
-- No foreign key to projects: it would cost a lookup in projects for every inserted event, and a
-- project is never deleted, so the reference cannot dangle.
ALTER TABLE events ADD COLUMN project_id integer NOT NULL DEFAULT 1;

-- Idempotency is per project: the same event_id (or name, user and timestamp) in two projects is
-- two events, and no writer can pre-claim another project's keys. The project leads so that one
-- project's keys sit together and the insert's ON CONFLICT names this index.
DROP INDEX events_idem_key;
CREATE UNIQUE INDEX events_project_idem_key ON events (project_id, idem_key);

-- Every time-window read (the slivers of /metrics, the export) is for one project: project first,
-- then time, so a read touches only that project's rows in its window.
DROP INDEX events_occurred_at;
CREATE INDEX events_project_occurred_at ON events (project_id, occurred_at);

-- Cells are per project, so counts and unique users are too (user_ids stays global: it only gives
-- each user_id string a dense number). Project first in the key: a /metrics read looks up one
-- project's cells, which sit together.
ALTER TABLE rollup_cells ADD COLUMN project_id integer NOT NULL DEFAULT 1;
ALTER TABLE rollup_cells DROP CONSTRAINT rollup_cells_pkey,
  ADD PRIMARY KEY (project_id, grain, event_name, channel, day);

ALTER TABLE rollup_hour_cells ADD COLUMN project_id integer NOT NULL DEFAULT 1;
ALTER TABLE rollup_hour_cells DROP CONSTRAINT rollup_hour_cells_pkey,
  ADD PRIMARY KEY (project_id, grain, event_name, channel, hour);
