-- Day cells take the hour cells' compact form (src/sql/user-set-format.ts, encodeUserSet): a tag
-- byte, then a plain bitmap or the user_ints as a list, whichever is smaller. As plain bitmaps the
-- sparse cells of the event_name+channel grain were 12.5 KB each at 100k users where the list is
-- ~5.6 KB, and the 7,200 cells of a 90-day window over that grain did not fit the cell cache.
--
-- Every existing day cell is a plain bitmap: tag 0 in front keeps it exact, with no rebuild. The
-- next refresh that touches a cell rewrites it in the smaller form.
UPDATE rollup_cells SET users = '\x00'::bytea || users;
