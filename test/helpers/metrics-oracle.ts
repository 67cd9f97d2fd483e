// What GET /metrics must answer, computed straight from the raw events table: the oracle the
// exactness and isolation tests compare the server's answers with.
import { parseMetricsQuery, type MetricsQuery } from '../../src/metrics/metrics-query.js';
import type { TestDatabase } from './database.js';

export interface MetricsNumbers {
  totals: { count: number; unique_users: number };
  buckets?: { bucket_start: number; count: number; unique_users: number }[];
}

export interface OracleQuery {
  readonly from: number;
  readonly to: number;
  readonly eventName: string | null;
  readonly channel: string | null;
  readonly groupByDay: boolean;
}

/** The query string GET /metrics takes for the same question. */
export function metricsSearchParams(q: OracleQuery): URLSearchParams {
  const params = new URLSearchParams({ from: String(q.from), to: String(q.to) });
  if (q.eventName !== null) params.set('event_name', q.eventName);
  if (q.channel !== null) params.set('channel', q.channel);
  if (q.groupByDay) params.set('group_by', 'day');
  return params;
}

/** The same question as the server parses it, for tests that call the metrics wing directly. */
export function metricsQueryOf(q: OracleQuery): MetricsQuery {
  const parsed = parseMetricsQuery(metricsSearchParams(q).toString(), q.to, {
    maxWindowDays: 36_600,
    maxBuckets: 100_000,
    maxSeriesBuckets: 1_000_000,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problem));
  return parsed.query;
}

/** The counts of an answer, without what it repeats of the question. */
export function numbersOf(answer: MetricsNumbers): MetricsNumbers {
  return answer.buckets === undefined
    ? { totals: answer.totals }
    : { totals: answer.totals, buckets: answer.buckets };
}

/** The truth over every row, or over one project's rows when projectId is given. */
export async function metricsOracle(
  db: Pick<TestDatabase, 'query'>,
  q: OracleQuery,
  projectId?: number,
): Promise<MetricsNumbers> {
  const { filter, values } = eventFilter(q, projectId);
  const [totals] = await db.query<MetricsNumbers['totals']>(
    `SELECT count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
     FROM events WHERE ${filter}`,
    values,
  );
  if (!q.groupByDay) return { totals: totals! };
  const buckets = await db.query<NonNullable<MetricsNumbers['buckets']>[number]>(
    `SELECT (floor(extract(epoch FROM occurred_at) / 86400) * 86400)::int AS bucket_start,
            count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
     FROM events WHERE ${filter} GROUP BY 1 ORDER BY 1`,
    values,
  );
  return { totals: totals!, buckets };
}

/** The rows a question counts: $1…$4 are from, to, event_name and channel, $5 the project. */
function eventFilter(
  q: Pick<OracleQuery, 'from' | 'to' | 'eventName' | 'channel'>,
  projectId?: number,
): { filter: string; values: unknown[] } {
  const filter = `${projectId === undefined ? '' : 'project_id = $5 AND '}
    extract(epoch FROM occurred_at) BETWEEN $1 AND $2
    AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)`;
  const values: unknown[] = [q.from, q.to, q.eventName, q.channel];
  if (projectId !== undefined) values.push(projectId);
  return { filter, values };
}

/** A server whose every answer an oracle can check: no cache, no rate limit, and only the rollup
 *  refreshes the test asks for (a schedule would make runs irreproducible). */
export const oracleServerEnv: Readonly<Record<string, string>> = {
  METRICS_CACHE_TTL_MS: '0',
  RATE_LIMIT_METRICS_PER_MIN: '0',
  ROLLUP_REFRESH_MS: '3600000',
  INGEST_WORKERS: '1',
};

export type GroupBy = 'hour' | 'day' | 'week' | 'month';

/** A GET /metrics question with every parameter; null leaves the parameter out of the request. */
export interface LocalOracleQuery extends Omit<OracleQuery, 'groupByDay'> {
  readonly groupBy: GroupBy | null;
  readonly tz: string | null;
  readonly weekStart: 'monday' | 'sunday' | null;
  readonly fill: 'none' | 'zero' | null;
  readonly breakdown: 'event_name' | 'channel' | null;
  readonly limit: number | null;
}

export interface Counts {
  count: number;
  unique_users: number;
}
export type Bucket = Counts & { bucket_start: number };
export type BreakdownValue = Counts & { value: string | null };

export interface LocalMetricsAnswer {
  totals: Counts;
  buckets?: Bucket[];
  breakdown?: {
    by: string;
    values: BreakdownValue[];
    other: Counts;
    series?: { value: string | null; buckets: Bucket[] }[];
  };
  tz?: string;
  group_by?: string;
  from?: number;
  to?: number;
}

const localParameters = [
  ['event_name', 'eventName'],
  ['channel', 'channel'],
  ['group_by', 'groupBy'],
  ['tz', 'tz'],
  ['week_start', 'weekStart'],
  ['fill', 'fill'],
  ['breakdown', 'breakdown'],
  ['limit', 'limit'],
] as const;

export function localMetricsSearchParams(q: LocalOracleQuery): URLSearchParams {
  const params = new URLSearchParams({ from: String(q.from), to: String(q.to) });
  for (const [name, field] of localParameters) {
    const value = q[field];
    if (value !== null) params.set(name, String(value));
  }
  return params;
}

/** The contract's bucket key of an instant, written from its definition (local wall time in the
 *  zone given as parameter tzParam; an hour also keyed by its UTC offset). */
function bucketKeySql(q: LocalOracleQuery, instant: string, tzParam: string): string {
  const local = `(${instant} AT TIME ZONE ${tzParam})`;
  switch (q.groupBy) {
    case 'hour':
      return `date_trunc('hour', ${local})::text || ' ' || (${local} - (${instant} AT TIME ZONE 'UTC'))::text`;
    case 'week':
      return q.weekStart === 'sunday'
        ? `(date_trunc('week', ${local} + interval '1 day') - interval '1 day')::text`
        : `date_trunc('week', ${local})::text`;
    default:
      return `date_trunc('${q.groupBy ?? 'day'}', ${local})::text`;
  }
}

/** Longer than any bucket of the unit, so the bucket holding `from` is sampled before it starts. */
const lookback: Record<GroupBy, string> = {
  hour: '2 hours',
  day: '2 days',
  week: '8 days',
  month: '32 days',
};

type KeyedCounts = Counts & { key: string };

/**
 * The truth for the local-time parameters, from the raw table. The buckets overlapping the window
 * are the keys of a 15-minute grid over it plus `from` and `to` (every bucket of these zones lasts
 * 30 minutes or more); a bucket starts at the first minute with its key, found in the 15 minutes up
 * to its first sample. Those bucket lists are kept per window and zone.
 */
export function localMetricsOracle(
  db: Pick<TestDatabase, 'query'>,
): (q: LocalOracleQuery) => Promise<LocalMetricsAnswer> {
  const startsByWindow = new Map<string, Promise<Map<string, number>>>();
  const bucketStarts = (q: LocalOracleQuery & { groupBy: GroupBy }, tz: string) => {
    const id = JSON.stringify([tz, q.groupBy, q.weekStart, q.from, q.to]);
    let starts = startsByWindow.get(id);
    if (starts === undefined) {
      starts = db
        .query<{ key: string; start: number }>(
          `WITH samples AS (
             SELECT s, ${bucketKeySql(q, 's', '$5')} AS key
             FROM (SELECT generate_series(to_timestamp($1) - $2::interval, to_timestamp($3),
                                          interval '15 minutes') AS s
                   UNION SELECT to_timestamp($4) UNION SELECT to_timestamp($3)) AS grid
           ), overlapping AS (
             SELECT key, min(s) AS first FROM samples GROUP BY key HAVING max(s) >= to_timestamp($4)
           )
           SELECT key,
                  (SELECT extract(epoch FROM min(m))::int
                   FROM generate_series(first - interval '15 minutes', first, interval '1 minute') AS m
                   WHERE ${bucketKeySql(q, 'm', '$5')} = key) AS start
           FROM overlapping ORDER BY start`,
          [Math.floor(q.from / 900) * 900, lookback[q.groupBy], q.to, q.from, tz],
        )
        .then((rows) => new Map(rows.map((r) => [r.key, r.start])));
      startsByWindow.set(id, starts);
    }
    return starts;
  };

  return async (q) => {
    const tz = q.tz ?? 'UTC';
    const { filter, values } = eventFilter(q);
    const [totals] = await db.query<Counts>(
      `SELECT count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
       FROM events WHERE ${filter}`,
      values,
    );
    const answer: LocalMetricsAnswer = { totals: totals! };
    const groupBy = q.groupBy;
    const starts = groupBy === null ? null : await bucketStarts({ ...q, groupBy }, tz);
    const bucketsOf = (rows: KeyedCounts[]): Bucket[] => {
      const counted = new Map(rows.map((r) => [r.key, r]));
      for (const key of counted.keys())
        if (!starts!.has(key)) throw new Error(`oracle: bucket ${key} is not in the window`);
      const buckets: Bucket[] = [];
      for (const [key, start] of starts!) {
        const c = counted.get(key);
        if (c !== undefined || q.fill === 'zero')
          buckets.push({
            bucket_start: start,
            count: c?.count ?? 0,
            unique_users: c?.unique_users ?? 0,
          });
      }
      return buckets;
    };
    if (starts !== null) {
      answer.buckets = bucketsOf(
        await db.query<KeyedCounts>(
          `SELECT ${bucketKeySql(q, 'occurred_at', '$5')} AS key, count(*)::int AS count,
                  count(DISTINCT user_id)::int AS unique_users
           FROM events WHERE ${filter} GROUP BY 1`,
          [...values, tz],
        ),
      );
    }
    if (q.breakdown !== null) {
      const column = q.breakdown;
      const top = await db.query<BreakdownValue>(
        `SELECT ${column} AS value, count(*)::int AS count,
                count(DISTINCT user_id)::int AS unique_users
         FROM events WHERE ${filter} GROUP BY ${column}
         ORDER BY 2 DESC, ${column} COLLATE "C" ASC NULLS LAST LIMIT $5`,
        [...values, q.limit ?? 10],
      );
      const inTop = `EXISTS (SELECT 1 FROM unnest($5::text[]) AS top(value)
                             WHERE top.value IS NOT DISTINCT FROM ${column})`;
      const topValues = top.map((t) => t.value);
      const [other] = await db.query<Counts>(
        `SELECT count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
         FROM events WHERE ${filter} AND NOT ${inTop}`,
        [...values, topValues],
      );
      answer.breakdown = { by: column, values: top, other: other! };
      if (starts !== null) {
        const cells = await db.query<KeyedCounts & { value: string | null }>(
          `SELECT ${column} AS value, ${bucketKeySql(q, 'occurred_at', '$6')} AS key,
                  count(*)::int AS count, count(DISTINCT user_id)::int AS unique_users
           FROM events WHERE ${filter} AND ${inTop} GROUP BY 1, 2`,
          [...values, topValues, tz],
        );
        answer.breakdown.series = topValues.map((value) => ({
          value,
          buckets: bucketsOf(cells.filter((c) => c.value === value)),
        }));
      }
    }
    if (q.tz !== null) answer.tz = q.tz;
    if (q.groupBy !== null) answer.group_by = q.groupBy;
    return { ...answer, from: q.from, to: q.to };
  };
}
