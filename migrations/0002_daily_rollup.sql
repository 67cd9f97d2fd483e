-- Daily rollup for GET /metrics, maintained incrementally by the refresher (src/metrics/).
--
-- Change tracking without the classic race: every row records the id of the transaction that
-- inserted it. The refresher works inside one REPEATABLE READ snapshot S and absorbs exactly the
-- rows visible in S but not in the snapshot of its previous run; a writer still uncommitted when S
-- was taken is invisible in S and so is absorbed by the next run, never skipped or counted twice.
ALTER TABLE events ADD COLUMN txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);

-- Rows are appended in roughly txid order, so a BRIN index finds "rows newer than S" for almost no
-- write cost (a btree here would be one more index to maintain on every insert).
CREATE INDEX events_txid_brin ON events USING brin (txid) WITH (pages_per_range = 32);

-- Dense integer per user, so a set of users is a bitmap: exact distinct counts over any day range
-- are an OR of one bitmap per day and a popcount.
CREATE TABLE user_ids (
  user_id  text PRIMARY KEY,
  user_int integer GENERATED ALWAYS AS IDENTITY (MINVALUE 0 START WITH 0) UNIQUE
);

-- One row per (grain, day, event_name, channel). The grain says which filters the cell serves, so
-- any query reads exactly one cell per day:
--   0: all events            (event_name = '', channel = '')
--   1: by event_name         (channel = '')
--   2: by channel            (event_name = ''; events without a channel are not in grain 2 or 3,
--   3: by event_name+channel  since they never match a channel filter)
CREATE TABLE rollup_cells (
  grain       smallint NOT NULL,
  day         integer  NOT NULL,          -- days since 1970-01-01 UTC
  event_name  text     NOT NULL,
  channel     text     NOT NULL,
  event_count bigint   NOT NULL,
  users       bytea    NOT NULL,          -- bit i set ⇔ user_int i has an event in this cell
  PRIMARY KEY (grain, event_name, channel, day)
);

-- The snapshot the rollup reflects. One row.
CREATE TABLE rollup_state (
  id           boolean PRIMARY KEY DEFAULT true CHECK (id),
  snapshot     pg_snapshot NOT NULL,
  refreshed_at timestamptz NOT NULL
);
-- The empty snapshot: nothing absorbed yet, every row is newer.
INSERT INTO rollup_state (snapshot, refreshed_at) VALUES ('1:1:'::pg_snapshot, now());
