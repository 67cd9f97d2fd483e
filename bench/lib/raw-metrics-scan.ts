// The Go MVP's way of answering /metrics, for comparison on the same data: count(*) and
// count(DISTINCT user_id) straight over the raw events, per request. The window is [from, to + 1)
// in occurred_at, the exact set /metrics counts (both bounds inclusive, to in whole seconds).
import pg from 'pg';

export interface RawWindow {
  readonly from: number;
  readonly to: number;
  readonly eventName: string | null;
  /** The project counted; absent, the default project (1). */
  readonly projectId?: number;
}

export interface RawTotals {
  readonly count: number;
  readonly uniqueUsers: number;
}

export interface RawDay {
  readonly bucketStart: number;
  readonly count: number;
  readonly uniqueUsers: number;
}

const filters = `project_id = $4 AND occurred_at >= to_timestamp($1) AND occurred_at < to_timestamp($2)
  AND ($3::text IS NULL OR event_name = $3)`;

const totalsSql = `SELECT count(*)::int8 AS count, count(DISTINCT user_id)::int8 AS unique_users
FROM events WHERE ${filters}`;

// floor, not ::bigint: the numeric → bigint cast rounds, which would move x:59:59.5 to the next day.
const perDaySql = `SELECT (floor(extract(epoch FROM occurred_at) / 86400) * 86400)::int8 AS bucket_start,
       count(*)::int8 AS count, count(DISTINCT user_id)::int8 AS unique_users
FROM events WHERE ${filters} GROUP BY 1 ORDER BY 1`;

// The local day's first instant, as the contract defines bucket_start (zones whose midnight
// exists); the empty grouping set adds the totals row (bucket_start NULL) in the same scan.
const perLocalDaySql = `WITH local_events AS (
  SELECT extract(epoch FROM date_trunc('day', occurred_at AT TIME ZONE $5) AT TIME ZONE $5)::int8
           AS bucket_start,
         user_id
  FROM events WHERE ${filters})
SELECT bucket_start, count(*)::int8 AS count, count(DISTINCT user_id)::int8 AS unique_users
FROM local_events GROUP BY GROUPING SETS ((bucket_start), ()) ORDER BY bucket_start NULLS FIRST`;

interface DayRow {
  bucket_start: string | null;
  count: string;
  unique_users: string;
}

const toDays = (rows: readonly DayRow[]): RawDay[] =>
  rows.map((r) => ({
    bucketStart: Number(r.bucket_start),
    count: Number(r.count),
    uniqueUsers: Number(r.unique_users),
  }));

export interface RawScanner {
  totals(window: RawWindow): Promise<{ ms: number; totals: RawTotals }>;
  perDay(window: RawWindow): Promise<{ ms: number; days: RawDay[] }>;
  /** Days in an IANA zone, and the window's totals. */
  perLocalDay(
    window: RawWindow,
    tz: string,
  ): Promise<{ ms: number; totals: RawTotals; days: RawDay[] }>;
  close(): Promise<void>;
}

export async function openRawScanner(dsn: string): Promise<RawScanner> {
  // No statement timeout: these scans are expected to take seconds.
  const client = new pg.Client({ connectionString: dsn, application_name: 'pulse-bench-raw-scan' });
  await client.connect();
  const params = (w: RawWindow) => [w.from, w.to + 1, w.eventName, w.projectId ?? 1];
  return {
    totals: async (window) => {
      const started = performance.now();
      const { rows } = await client.query<{ count: string; unique_users: string }>(
        totalsSql,
        params(window),
      );
      const ms = performance.now() - started;
      return {
        ms,
        totals: { count: Number(rows[0]!.count), uniqueUsers: Number(rows[0]!.unique_users) },
      };
    },
    perDay: async (window) => {
      const started = performance.now();
      const { rows } = await client.query<DayRow>(perDaySql, params(window));
      return { ms: performance.now() - started, days: toDays(rows) };
    },
    perLocalDay: async (window, tz) => {
      const started = performance.now();
      const { rows } = await client.query<DayRow>(perLocalDaySql, [...params(window), tz]);
      const ms = performance.now() - started;
      // The empty grouping set always yields its row, sorted first.
      const [total, ...days] = toDays(rows);
      return { ms, totals: { count: total!.count, uniqueUsers: total!.uniqueUsers }, days };
    },
    close: () => client.end(),
  };
}
