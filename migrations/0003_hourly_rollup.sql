-- Hour cells beside the day cells, so a window's partial days are read from the rollup too: any
-- window is whole days (rollup_cells) + whole hours (rollup_hour_cells) + at most two slivers
-- shorter than an hour each from the raw table. Without them the edges of every dashboard window
-- ("the last 24 h", "since 10:00") were raw scans that grew with the table.
--
-- Same grains and columns as rollup_cells; hour = hours since 1970-01-01 UTC. users is the
-- compact form of src/metrics/user-bitmap.ts (encodeUserSet): a tag byte, then a plain bitmap or
-- the user_ints as a list, whichever is smaller.
CREATE TABLE rollup_hour_cells (
  grain       smallint NOT NULL,
  hour        integer  NOT NULL,
  event_name  text     NOT NULL,
  channel     text     NOT NULL,
  event_count bigint   NOT NULL,
  users       bytea    NOT NULL,
  PRIMARY KEY (grain, event_name, channel, hour)
);

-- Rows already absorbed have no hour cells yet: start the rollup over, so the next refresh builds
-- both kinds from every row. Until it commits, readers count those rows from the raw table (exact,
-- only slower).
TRUNCATE rollup_cells;
UPDATE rollup_state SET snapshot = '1:1:'::pg_snapshot, refreshed_at = now();
