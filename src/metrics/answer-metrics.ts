// GET /metrics behind one call: the route parses the query here, then asks for its answer, which
// comes from the answer cache (one database read per key at a time) or from one snapshot of the
// rollup and the raw tail, counted and rendered once.
import type pg from 'pg';
import { defaultProjectId } from '../sql/insert-events.js';
import { readMetrics, type CellBitmapStore } from '../sql/read-metrics.js';
import { countMetrics } from './count-metrics.js';
import type { CachedAnswer, MetricsCache } from './metrics-cache.js';
import { parseTimeWindow, type WindowQuery } from './time-window.js';

/** What an answer is made from: the read pool and the two caches. */
export interface MetricsSources {
  readonly pool: pg.Pool;
  readonly cache: MetricsCache;
  readonly cellBitmaps: CellBitmapStore;
}

const metricsParameters = ['event_name', 'channel', 'from', 'to', 'group_by'];

export function parseMetricsQuery(
  rawQuery: string,
  nowSeconds: number,
  maxWindowDays: number,
): ReturnType<typeof parseTimeWindow> {
  return parseTimeWindow(rawQuery, nowSeconds, maxWindowDays, metricsParameters);
}

/** The cache key: the same window and filters give the same key whatever the parameter order;
 *  without a project, the default project's. */
export function metricsCacheKey(q: WindowQuery, projectId = defaultProjectId): string {
  return JSON.stringify([projectId, q.from, q.to, q.eventName, q.channel, q.groupByDay]);
}

/** One project's answer. { answer, cached }: cached is true when no query ran for this call. */
export function answerMetrics(
  sources: MetricsSources,
  projectId: number,
  query: WindowQuery,
): Promise<{ answer: CachedAnswer; cached: boolean }> {
  return sources.cache.get(metricsCacheKey(query, projectId), async () => {
    const material = await readMetrics(sources.pool, projectId, query, sources.cellBitmaps);
    return { data: countMetrics(query, material), asOfMs: material.asOfMs };
  });
}
