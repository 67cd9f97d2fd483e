// Everything GET /metrics needs, read in ONE snapshot: the rollup's day cells for whole days and
// hour cells for the whole hours of partial days, and from the raw table the two slivers shorter
// than an hour at the window's ends plus every row the rollup has not absorbed yet. Reading both
// in one REPEATABLE READ transaction is what makes rollup + tail exact: a refresh that commits
// meanwhile is invisible to the cells and to rollup_state alike.
import type pg from 'pg';
import { withClient } from './create-pool.js';
import {
  hoursPerDay,
  rollupGrainFor,
  rollupSpans,
  secondsPerDay,
  secondsPerHour,
  type RollupSpan,
} from './rollup-spans.js';
import { decodeUserSet, type UserSet } from './user-set-format.js';

export interface MetricsWindow {
  readonly from: number;
  readonly to: number;
  readonly eventName: string | null;
  readonly channel: string | null;
}

export interface MetricsMaterial {
  /** Epoch ms of the snapshot the answer reflects. */
  readonly asOfMs: number;
  /** Whole days. */
  readonly cells: readonly { day: number; eventCount: number; users: UserSet }[];
  /** Whole hours of partial days, by the day they belong to. */
  readonly hourCells: readonly { day: number; eventCount: number; users: UserSet }[];
  /** Raw rows outside the rollup, per (day, user): user_int null for users the rollup has never seen. */
  readonly rawGroups: readonly {
    day: number;
    userId: string;
    userInt: number | null;
    eventCount: number;
  }[];
}

/** User sets already decoded, by cell and row version: the caller keeps them between requests. */
export interface CellBitmapStore {
  get(key: string, version: string): UserSet | undefined;
  set(key: string, version: string, users: UserSet): void;
}

// One round trip opens the snapshot. Every statement after it has an index path that reads only
// what it needs, but the planner's estimate for "txid newer than the snapshot" comes from
// statistics older than the tail and has chosen a sequential scan of the whole table (measured
// 135 ms for a 40k-row tail): sequential scans are off for this transaction.
const beginSql = `
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL enable_seqscan = off;
SELECT snapshot::text AS snapshot, (extract(epoch FROM now()) * 1000)::int8 AS as_of_ms FROM rollup_state`;

// A cell is ($1 project, $2 grain, $3 event_name, $4 channel): the leading columns of both
// rollup tables' keys. xmin is the cell row's version: every refresh that touches a cell writes a
// new row version. Day cells in one range, hour cells in two (they sit at both ends of a window).
const cellIs = 'project_id = $1 AND grain = $2 AND event_name = $3 AND channel = $4';
const readCellVersionsSql = `
SELECT 'day' AS span, day AS start, event_count::int AS event_count, xmin::text AS version
FROM ${rollupSpans.day.table}
WHERE ${cellIs} AND day BETWEEN $5 AND $6
UNION ALL
SELECT 'hour', hour, event_count::int, xmin::text
FROM ${rollupSpans.hour.table}
WHERE ${cellIs} AND (hour BETWEEN $7 AND $8 OR hour BETWEEN $9 AND $10)`;

const readCellUsersSql = `
SELECT 'day' AS span, day AS start, users FROM ${rollupSpans.day.table}
WHERE ${cellIs} AND day = ANY($5::int[])
UNION ALL
SELECT 'hour', hour, users FROM ${rollupSpans.hour.table}
WHERE ${cellIs} AND hour = ANY($6::int[])`;

const filters = `e.project_id = $8
  AND ($3::text IS NULL OR e.event_name = $3) AND ($4::text IS NULL OR e.channel = $4)`;

// Three index scans: the two slivers by project and occurred_at (btree; written as two ranges because the
// planner would otherwise scan the whole window's range and filter, measured 1.3M rows read for
// 1.3k kept), and rows newer than the rollup's snapshot by txid (BRIN). MATERIALIZED keeps the
// planner from merging the tail scan into an occurred_at scan. The tail takes every project's new
// rows (the same pages) and is filtered by project outside: given a project condition, a planner
// without fresh statistics read the project's whole history through the btree instead.
//
// Raw users are matched to rollup bitmaps through the user dictionary, only needed when the window
// has rollup cells: a window without a whole hour is counted by user_id alone.
const readRawSql = (withUserInts: boolean) => `
WITH tail AS MATERIALIZED (
  SELECT e.project_id, e.occurred_at, e.user_id, e.event_name, e.channel FROM events e
  WHERE e.txid >= pg_snapshot_xmin($7::pg_snapshot)::text::bigint
    AND NOT pg_visible_in_snapshot(e.txid::text::xid8, $7::pg_snapshot)
), raw AS (
  SELECT e.occurred_at, e.user_id FROM events e
  WHERE ${filters} AND e.occurred_at >= to_timestamp($1) AND e.occurred_at < to_timestamp($5)
  UNION ALL
  SELECT e.occurred_at, e.user_id FROM events e
  WHERE ${filters} AND e.occurred_at >= to_timestamp($6) AND e.occurred_at < to_timestamp($2)
  UNION ALL
  SELECT e.occurred_at, e.user_id FROM tail e
  WHERE ${filters} AND e.occurred_at >= to_timestamp($5) AND e.occurred_at < to_timestamp($6)
)
SELECT floor(extract(epoch FROM raw.occurred_at) / ${secondsPerDay})::int AS day,
       raw.user_id, ${withUserInts ? 'u.user_int' : 'NULL::int AS user_int'}, count(*)::int AS event_count
FROM raw ${withUserInts ? 'LEFT JOIN user_ids u USING (user_id)' : ''}
GROUP BY 1, 2, 3`;
const readRawWithUserIntsSql = readRawSql(true);
const readRawByUserIdSql = readRawSql(false);

/** One project's material: its rollup cells and its raw rows. */
export async function readMetrics(
  pool: pg.Pool,
  projectId: number,
  window: MetricsWindow,
  bitmaps: CellBitmapStore,
): Promise<MetricsMaterial> {
  // [cellFrom, cellTo) is every whole hour inside [from, to]: its whole days come from day cells,
  // its other hours from hour cells. [from, cellFrom) and [cellTo, to] are the raw slivers.
  const firstHour = Math.ceil(window.from / secondsPerHour);
  const lastHour = Math.floor((window.to + 1) / secondsPerHour) - 1;
  const hasHours = firstHour <= lastHour;
  const firstDay = Math.ceil(firstHour / hoursPerDay);
  const lastDay = Math.floor((lastHour + 1) / hoursPerDay) - 1;
  const hasDays = hasHours && firstDay <= lastDay;
  const cellFrom = hasHours ? firstHour * secondsPerHour : window.to + 1;
  const cellTo = hasHours ? (lastHour + 1) * secondsPerHour : window.to + 1;
  const hourRanges: [Range, Range] = !hasHours
    ? [none, none]
    : hasDays
      ? [
          [firstHour, firstDay * hoursPerDay - 1],
          [(lastDay + 1) * hoursPerDay, lastHour],
        ]
      : [[firstHour, lastHour], none];

  return withClient(pool, async (client) => {
    // A multi-statement text returns one result per statement (the typings know only one).
    const opened = (await client.query(beginSql)) as unknown as pg.QueryResult[];
    try {
      const { snapshot, as_of_ms } = opened[2]!.rows[0] as { snapshot: string; as_of_ms: string };
      const cells = hasHours
        ? await readCells(
            client,
            projectId,
            window,
            hasDays ? [firstDay, lastDay] : none,
            hourRanges,
            bitmaps,
          )
        : [];
      const { rows: raw } = await client.query<{
        day: number;
        user_id: string;
        user_int: number | null;
        event_count: number;
      }>(hasHours ? readRawWithUserIntsSql : readRawByUserIdSql, [
        window.from,
        window.to + 1,
        window.eventName,
        window.channel,
        cellFrom,
        cellTo,
        snapshot,
        projectId,
      ]);
      await client.query('COMMIT');
      return {
        asOfMs: Number(as_of_ms),
        cells: cells
          .filter((c) => c.span === 'day')
          .map((c) => ({ day: c.start, eventCount: c.eventCount, users: c.users })),
        hourCells: cells
          .filter((c) => c.span === 'hour')
          .map((c) => ({
            day: Math.floor(c.start / hoursPerDay),
            eventCount: c.eventCount,
            users: c.users,
          })),
        rawGroups: raw.map((r) => ({
          day: r.day,
          userId: r.user_id,
          userInt: r.user_int,
          eventCount: r.event_count,
        })),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

type Range = readonly [number, number];
/** An empty range for BETWEEN. */
const none: Range = [1, 0];

/** Day and hour cells of the window, fetching users only for cells not cached at their version. */
async function readCells(
  client: pg.PoolClient,
  projectId: number,
  window: MetricsWindow,
  dayRange: Range,
  hourRanges: readonly [Range, Range],
  bitmaps: CellBitmapStore,
): Promise<{ span: RollupSpan; start: number; eventCount: number; users: UserSet }[]> {
  const grain = rollupGrainFor(window.eventName !== null, window.channel !== null);
  const cell = [projectId, grain.code, window.eventName ?? '', window.channel ?? ''] as const;
  const { rows: versions } = await client.query<{
    span: RollupSpan;
    start: number;
    event_count: number;
    version: string;
  }>(readCellVersionsSql, [...cell, ...dayRange, ...hourRanges.flat()]);
  const keyOf = (span: RollupSpan, start: number) =>
    `${span}\u0000${cell.join('\u0000')}\u0000${start}`;
  const cells = versions.map((v) => ({
    span: v.span,
    start: v.start,
    eventCount: v.event_count,
    version: v.version,
    users: bitmaps.get(keyOf(v.span, v.start), v.version),
  }));
  const missing = cells.filter((c) => c.users === undefined);
  if (missing.length > 0) {
    const startsOf = (span: RollupSpan) =>
      missing.filter((c) => c.span === span).map((c) => c.start);
    const { rows } = await client.query<{ span: RollupSpan; start: number; users: Buffer }>(
      readCellUsersSql,
      [...cell, startsOf('day'), startsOf('hour')],
    );
    const fetched = new Map(rows.map((r) => [keyOf(r.span, r.start), r.users]));
    for (const c of missing) {
      const key = keyOf(c.span, c.start);
      c.users = decodeUserSet(fetched.get(key)!);
      bitmaps.set(key, c.version, c.users);
    }
  }
  return cells.map((c) => ({
    span: c.span,
    start: c.start,
    eventCount: c.eventCount,
    users: c.users!,
  }));
}
