// Everything GET /metrics needs, read in ONE snapshot: the rollup cells for whole days, and from
// the raw table the partial-day edges plus every row the rollup has not absorbed yet. Reading both
// in one REPEATABLE READ transaction is what makes rollup + tail exact: a refresh that commits
// meanwhile is invisible to the cells and to rollup_state alike.
import type pg from 'pg';
import { withClient } from './create-pool.js';

export interface MetricsWindow {
  readonly from: number;
  readonly to: number;
  readonly eventName: string | null;
  readonly channel: string | null;
}

export interface MetricsMaterial {
  /** Epoch ms of the snapshot the answer reflects. */
  readonly asOfMs: number;
  readonly cells: readonly { day: number; eventCount: number; users: Uint8Array }[];
  /** Raw rows outside the rollup, per (day, user): user_int null for users the rollup has never seen. */
  readonly rawGroups: readonly {
    day: number;
    userId: string;
    userInt: number | null;
    eventCount: number;
  }[];
}

/** Bitmaps already decoded, by cell and row version (src/metrics/cell-bitmap-cache.ts). */
export interface CellBitmapStore {
  get(key: string, version: string): Uint8Array | undefined;
  set(key: string, version: string, users: Uint8Array): void;
}

const secondsPerDay = 86_400;

// xmin is the cell row's version: every refresh that touches a cell writes a new row version.
const readCellVersionsSql = `
SELECT day, event_count::int AS event_count, xmin::text AS version FROM rollup_cells
WHERE grain = $1 AND event_name = $2 AND channel = $3 AND day BETWEEN $4 AND $5`;

const readCellUsersSql = `
SELECT day, users FROM rollup_cells
WHERE grain = $1 AND event_name = $2 AND channel = $3 AND day = ANY($4::int[])`;

const filters = `($3::text IS NULL OR e.event_name = $3) AND ($4::text IS NULL OR e.channel = $4)`;

// Two index-friendly scans: partial-day edges by occurred_at (btree), rows newer than the rollup's
// snapshot by txid (BRIN). MATERIALIZED keeps the planner from merging the tail scan into a
// full-range occurred_at scan.
//
// Raw users are matched to rollup bitmaps through the user dictionary, and that join (a hash of
// every user, ~20 ms at 100k users) is only needed when the window has rollup cells: a window
// inside one or two partial days is counted by user_id alone.
const readRawSql = (withUserInts: boolean) => `
WITH edges AS (
  SELECT e.occurred_at, e.user_id FROM events e
  WHERE ${filters} AND e.occurred_at >= to_timestamp($1) AND e.occurred_at < to_timestamp($2)
    AND (e.occurred_at < to_timestamp($5) OR e.occurred_at >= to_timestamp($6))
), tail AS MATERIALIZED (
  SELECT e.occurred_at, e.user_id, e.event_name, e.channel FROM events e
  WHERE e.txid >= pg_snapshot_xmin($7::pg_snapshot)::text::bigint
    AND NOT pg_visible_in_snapshot(e.txid::text::xid8, $7::pg_snapshot)
), raw AS (
  SELECT occurred_at, user_id FROM edges
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

/** Which rollup_cells grain serves a filter combination (see migrations/0002_daily_rollup.sql). */
function grainFor(window: MetricsWindow): number {
  return (window.eventName !== null ? 1 : 0) + (window.channel !== null ? 2 : 0);
}

export async function readMetrics(
  pool: pg.Pool,
  window: MetricsWindow,
  bitmaps: CellBitmapStore,
): Promise<MetricsMaterial> {
  // Whole days inside [from, to] come from the rollup; [from, fullFrom) and [fullTo, to] are edges.
  const firstFullDay = Math.ceil(window.from / secondsPerDay);
  const lastFullDay = Math.floor((window.to + 1) / secondsPerDay) - 1;
  const hasFullDays = firstFullDay <= lastFullDay;
  const fullFrom = hasFullDays ? firstFullDay * secondsPerDay : window.to + 1;
  const fullTo = hasFullDays ? (lastFullDay + 1) * secondsPerDay : window.to + 1;

  return withClient(pool, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const { rows: state } = await client.query<{ snapshot: string; as_of_ms: string }>(
        'SELECT snapshot::text AS snapshot, (extract(epoch FROM now()) * 1000)::int8 AS as_of_ms FROM rollup_state',
      );
      const { snapshot, as_of_ms } = state[0]!;
      const cells = hasFullDays
        ? await readCells(client, window, firstFullDay, lastFullDay, bitmaps)
        : [];
      const { rows: raw } = await client.query<{
        day: number;
        user_id: string;
        user_int: number | null;
        event_count: number;
      }>(hasFullDays ? readRawWithUserIntsSql : readRawByUserIdSql, [
        window.from,
        window.to + 1,
        window.eventName,
        window.channel,
        fullFrom,
        fullTo,
        snapshot,
      ]);
      await client.query('COMMIT');
      return {
        asOfMs: Number(as_of_ms),
        cells,
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

/** The cells of [firstDay, lastDay], fetching bitmaps only for cells not cached at their version. */
async function readCells(
  client: pg.PoolClient,
  window: MetricsWindow,
  firstDay: number,
  lastDay: number,
  bitmaps: CellBitmapStore,
): Promise<MetricsMaterial['cells']> {
  const cell = [grainFor(window), window.eventName ?? '', window.channel ?? ''] as const;
  const { rows: versions } = await client.query<{
    day: number;
    event_count: number;
    version: string;
  }>(readCellVersionsSql, [...cell, firstDay, lastDay]);
  const keyOf = (day: number) => `${cell.join('\u0000')}\u0000${day}`;
  const cells = versions.map((v) => ({
    day: v.day,
    eventCount: v.event_count,
    version: v.version,
    users: bitmaps.get(keyOf(v.day), v.version),
  }));
  const missing = cells.filter((c) => c.users === undefined);
  if (missing.length > 0) {
    const { rows } = await client.query<{ day: number; users: Buffer }>(readCellUsersSql, [
      ...cell,
      missing.map((c) => c.day),
    ]);
    const usersByDay = new Map(rows.map((r) => [r.day, r.users]));
    for (const c of missing) {
      const fetched = usersByDay.get(c.day)!;
      bitmaps.set(keyOf(c.day), c.version, fetched);
      c.users = bitmaps.get(keyOf(c.day), c.version) ?? fetched;
    }
  }
  return cells.map((c) => ({ day: c.day, eventCount: c.eventCount, users: c.users! }));
}
