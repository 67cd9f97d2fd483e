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
  readonly cells: readonly { day: number; eventCount: number; users: Buffer }[];
  /** Raw rows outside the rollup, per (day, user): user_int null for users the rollup has never seen. */
  readonly rawGroups: readonly {
    day: number;
    userId: string;
    userInt: number | null;
    eventCount: number;
  }[];
}

const secondsPerDay = 86_400;

const readCellsSql = `
SELECT day, event_count::int AS event_count, users FROM rollup_cells
WHERE grain = $1 AND event_name = $2 AND channel = $3 AND day BETWEEN $4 AND $5`;

const filters = `($3::text IS NULL OR e.event_name = $3) AND ($4::text IS NULL OR e.channel = $4)`;

// Two index-friendly scans: partial-day edges by occurred_at (btree), rows newer than the rollup's
// snapshot by txid (BRIN). MATERIALIZED keeps the planner from merging the tail scan into a
// full-range occurred_at scan.
const readRawSql = `
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
       raw.user_id, u.user_int, count(*)::int AS event_count
FROM raw LEFT JOIN user_ids u USING (user_id)
GROUP BY 1, 2, 3`;

/** Which rollup_cells grain serves a filter combination (see migrations/0002_daily_rollup.sql). */
function grainFor(window: MetricsWindow): number {
  return (window.eventName !== null ? 1 : 0) + (window.channel !== null ? 2 : 0);
}

export async function readMetrics(pool: pg.Pool, window: MetricsWindow): Promise<MetricsMaterial> {
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
        ? (
            await client.query<{ day: number; event_count: number; users: Buffer }>(readCellsSql, [
              grainFor(window),
              window.eventName ?? '',
              window.channel ?? '',
              firstFullDay,
              lastFullDay,
            ])
          ).rows
        : [];
      const { rows: raw } = await client.query<{
        day: number;
        user_id: string;
        user_int: number | null;
        event_count: number;
      }>(readRawSql, [
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
        cells: cells.map((c) => ({ day: c.day, eventCount: c.event_count, users: c.users })),
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
