-- A breakdown by channel counts events with no channel under the value null, exactly: they get
-- cells of their own (grain 4: all of them; grain 5: by event name), which no channel filter reads.
-- The rollup is rebuilt so that past events have them too: the next refresh absorbs every row
-- again, in the background, while /metrics stays exact from the raw rows meanwhile.
TRUNCATE rollup_cells, rollup_hour_cells;
UPDATE rollup_state SET snapshot = '1:1:'::pg_snapshot, refreshed_at = now();

-- A breakdown reads every value's cells of one grain: by project, grain and time, whatever the
-- event name or channel the primary key puts first.
CREATE INDEX rollup_cells_by_grain_day ON rollup_cells (project_id, grain, day);
CREATE INDEX rollup_hour_cells_by_grain_hour ON rollup_hour_cells (project_id, grain, hour);
