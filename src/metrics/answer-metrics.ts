// GET /metrics behind one call: the route parses the query (metrics-query.ts), then asks for its
// answer, which comes from the answer cache (one database read per key at a time) or from one
// snapshot of the rollup and the raw rows, planned, read and counted once.
import {
  readMetrics,
  type CellSelection,
  type CellStore,
  type MetricsReadRequest,
} from '../sql/read-metrics.js';
import type { QueuedPool } from '../sql/queued-pool.js';
import { rollupGrainFor } from '../sql/rollup-spans.js';
import { BucketMemo } from './bucket-memo.js';
import { countMetrics } from './count-metrics.js';
import type { CachedAnswer, MetricsCache } from './metrics-cache.js';
import { planMetrics, toHourEnd, type MetricsPlan } from './metrics-plan.js';
import type { Recollection } from './tally.js';
import { metricsCacheKey, type MetricsQuery } from './metrics-query.js';

export { parseMetricsQuery } from './metrics-query.js';
/** What a read that found every connection busy for too long, or too many waiting, throws. */
export { PoolBusyError } from '../sql/queued-pool.js';

/** What an answer is made from: the read pool and the two caches. */
export interface MetricsSources {
  readonly pool: QueuedPool;
  readonly cache: MetricsCache;
  readonly cellBitmaps: CellStore & Recollection;
}

/** One project's answer. { answer, cached }: cached is true when no query ran for this call. */
export function answerMetrics(
  sources: MetricsSources,
  projectId: number,
  query: MetricsQuery,
): Promise<{ answer: CachedAnswer; cached: boolean }> {
  return sources.cache.get(metricsCacheKey(query, projectId), async () => {
    const asked = readingOf(sources, projectId, query);
    const toEnd = toHourEnd(query);
    const extended = toEnd && { end: toEnd.to + 1, ...readingOf(sources, projectId, toEnd) };
    const read = await readMetrics(
      sources.pool,
      projectId,
      asked.request,
      sources.cellBitmaps,
      extended
        ? { emptyFrom: query.to + 1, emptyEnd: extended.end, request: extended.request }
        : undefined,
    );
    const { plan, known } = read.toHourEnd ? extended! : asked;
    return {
      data: countMetrics(query, plan, read, sources.cellBitmaps, known),
      asOfMs: read.asOfMs,
    };
  });
}

/** One way to read a question: its plan, the counts already known of it, and the read request. */
function readingOf(
  sources: MetricsSources,
  projectId: number,
  query: MetricsQuery,
): { plan: MetricsPlan; known: BucketMemo; request: MetricsReadRequest } {
  const plan = planMetrics(query);
  const selections = selectionsFor(query);
  const known = new BucketMemo(sources.cellBitmaps, plan, selections, projectId, query);
  const request: MetricsReadRequest = {
    window: query,
    valueColumn: query.breakdown?.by ?? null,
    selections,
    edges: plan.edges,
    middle: plan.middle,
    slivers: plan.slivers,
    bucketDays: known.signatureDays,
    choose: (signatures, raw) => known.choose(signatures, raw),
  };
  return { plan, known, request };
}

/** The cells that answer the question as a whole, then, with a breakdown, per value. */
function selectionsFor(q: MetricsQuery): CellSelection[] {
  const filtered = { eventName: q.eventName !== null, channel: q.channel !== null };
  const whole: CellSelection = {
    grains: [rollupGrainFor(filtered.eventName, filtered.channel).code],
    eventName: q.eventName ?? '',
    channel: q.channel ?? '',
    by: null,
  };
  if (q.breakdown?.by === 'event_name') {
    return [
      whole,
      {
        grains: [rollupGrainFor(true, filtered.channel).code],
        eventName: q.eventName,
        channel: q.channel ?? '',
        by: 'event_name',
      },
    ];
  }
  if (q.breakdown?.by === 'channel') {
    return [
      whole,
      {
        // Events with no channel have grains of their own; a channel filter leaves them out.
        grains: [
          rollupGrainFor(filtered.eventName, true).code,
          ...(filtered.channel ? [] : [rollupGrainFor(filtered.eventName, false, true).code]),
        ],
        eventName: q.eventName ?? '',
        channel: q.channel,
        by: 'channel',
      },
    ];
  }
  return [whole];
}
