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
  const filter = `${projectId === undefined ? '' : 'project_id = $5 AND '}
    extract(epoch FROM occurred_at) BETWEEN $1 AND $2
    AND ($3::text IS NULL OR event_name = $3) AND ($4::text IS NULL OR channel = $4)`;
  const values = [q.from, q.to, q.eventName, q.channel];
  if (projectId !== undefined) values.push(projectId);
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
